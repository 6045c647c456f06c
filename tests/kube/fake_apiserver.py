"""A small fake Kubernetes API server: the list/watch wire protocol, for the `discovery.k8s.io/v1` path.

The real kube-apiserver of the other tests is 1.20, which serves EndpointSlices only as v1beta1,
and a CRD cannot stand in for a built-in group (the server shadows it: 404). So the v1 path runs
against this server, which speaks what the source relies on and no more: API discovery for the
group; paged lists of Services and EndpointSlices with one global resource version; watches that
replay an in-memory event log from a version, send bookmarks, end when told (as a server ends a
timed-out watch) and answer 410 Expired for a version older than the log. Writes come from the
test, through `put` and `delete`; plain HTTP on loopback, a bearer token checked on every request.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

JSON = dict[str, Any]

GROUP = "discovery.k8s.io"


@dataclass(frozen=True)
class Resource:
    """One kind the fake serves; all are namespaced."""

    kind: str
    plural: str
    prefix: str
    """The group-version path: `/api/v1` or `/apis/GROUP/VERSION`."""
    api_version: str

    def route(self, path: str) -> str | None:
        """The namespace `path` lists or watches ("" for all namespaces), or None when not this kind."""
        found = re.fullmatch(rf"{re.escape(self.prefix)}(?:/namespaces/([^/]+))?/{self.plural}", path)
        return None if found is None else found.group(1) or ""


RESOURCES = (
    Resource("Service", "services", "/api/v1", "v1"),
    Resource("EndpointSlice", "endpointslices", f"/apis/{GROUP}/v1", f"{GROUP}/v1"),
)

API_GROUP = {
    "kind": "APIGroup",
    "apiVersion": "v1",
    "name": GROUP,
    "versions": [{"groupVersion": f"{GROUP}/v1", "version": "v1"}],
    "preferredVersion": {"groupVersion": f"{GROUP}/v1", "version": "v1"},
}


@dataclass(frozen=True)
class Event:
    """One write, as every watch of its kind sees it."""

    version: int
    type: str
    object: JSON


def status(code: int, reason: str, message: str) -> JSON:
    """A Kubernetes `Status`: the body of every error, and the object of a watch's ERROR event."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip


class Rejected(Exception):
    """A request the fake answers with an error `Status`."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status(code, reason, message)


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Equality-based label selectors only (`a=b`, `a==b`, `a!=b`, `a`, `!a`): all the source uses."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        match = re.fullmatch(r"(!?[^=!]+)(?:(==|=|!=)(.*))?", term)
        if match is None:
            raise ValueError(f"unsupported label selector {term!r}")
        key, op, value = match.groups()
        if op is None:
            wanted = not key.startswith("!")
            if (key.lstrip("!") in labels) != wanted:
                return False
        elif (labels.get(key) == value) != (op != "!="):
            return False
    return True


class FakeApiServer:
    """The objects, the event log and the HTTP server; the state watches read is guarded by `changed`."""

    def __init__(self, tmp: Path, bookmark_interval: float = 0.5) -> None:
        self.token = secrets.token_hex(16)
        self.kubeconfig = tmp / "fake-kubeconfig"
        self.bookmark_interval = bookmark_interval
        self.changed = threading.Condition()
        """Notified on every write and by `end_watches`/`stop`: open watches wait on it."""
        self.version = 1
        """The global resource version, one more on every write (as etcd's revision)."""
        self.oldest = 1
        """The oldest version a watch may start from: the event log holds every write after it."""
        self.objects: dict[tuple[str, str, str], JSON] = {}
        self.events: list[Event] = []
        self.ended = 0
        """Bumped by `end_watches`: a watch opened before the bump ends."""
        self.compactions = 0
        """Bumped by `compact`: a watch opened before the bump sends no more bookmarks."""
        self.requests: list[tuple[str, dict[str, str]]] = []
        """(path, query) of every authorised request, for tests to assert on (append-only, no lock)."""
        self.stopped = False
        self.server: _Server | None = None

    # --- driving it from a test ------------------------------------------------------------------

    def start(self) -> FakeApiServer:
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.fake, self.server.daemon_threads = self, True
        threading.Thread(target=self.server.serve_forever, name="fake apiserver", daemon=True).start()
        self.kubeconfig.write_text(_kubeconfig(self.port, self.token))
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def stop(self) -> None:
        with self.changed:
            self.stopped = True
            self.changed.notify_all()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def put(self, obj: JSON) -> JSON:
        """Create or replace `obj` (its `kind` picks the resource); returns it as stored."""
        resource = _resource(obj["kind"])
        meta = obj["metadata"]
        key = (resource.kind, meta["namespace"], meta["name"])
        with self.changed:
            self.version += 1
            before = self.objects.get(key)
            uid = before["metadata"]["uid"] if before else str(uuid.uuid4())
            stored = {**copy.deepcopy(obj), "apiVersion": resource.api_version}
            stored["metadata"] = {**stored["metadata"], "uid": uid, "resourceVersion": str(self.version)}
            self.objects[key] = stored
            self._record("MODIFIED" if before else "ADDED", stored)
        return stored

    def delete(self, kind: str, namespace: str, name: str) -> None:
        with self.changed:
            gone = self.objects.pop((kind, namespace, name))
            self.version += 1
            self._record("DELETED", {**gone, "metadata": {**gone["metadata"], "resourceVersion": str(self.version)}})

    def compact(self) -> None:
        """Forget the event log, as etcd compaction or a restarted server's empty watch cache does.

        The version moves on by one (as writes to kinds nobody watches do on a busy server), so
        every watcher holds a version older than the log: its next watch gets 410 and it must
        list again. Watches already open carry on but send no more bookmarks, so they cannot
        learn the new version before the test ends them.
        """
        with self.changed:
            self.version += 1
            self.oldest = self.version
            self.events.clear()
            self.compactions += 1
            self.changed.notify_all()

    def end_watches(self) -> None:
        """Close every open watch stream cleanly, as a server does when a watch's timeout runs out."""
        with self.changed:
            self.ended += 1
            self.changed.notify_all()

    def watches(self, plural: str) -> list[dict[str, str]]:
        """The queries of the watch requests made so far for `plural`, oldest first."""
        return [q for path, q in self.requests if path.endswith(f"/{plural}") and q.get("watch") == "true"]

    def lists(self, plural: str) -> list[dict[str, str]]:
        """The queries of the list requests made so far for `plural`, oldest first."""
        return [q for path, q in self.requests if path.endswith(f"/{plural}") and q.get("watch") != "true"]

    # --- serving ---------------------------------------------------------------------------------

    def _record(self, kind: str, obj: JSON) -> None:
        self.events.append(Event(self.version, kind, obj))
        self.changed.notify_all()

    def list_page(self, resource: Resource, namespace: str, query: dict[str, str]) -> JSON:
        """One page, sorted by namespace/name; `continue` carries the first page's version and the last key.

        Later pages show the objects as they are now, not as at that version (a real server reads
        a snapshot); a watch from the version replays every change in between, so a lister still
        converges.
        """
        with self.changed:
            version, after = self.version, ""
            if query.get("continue"):
                version, after = json.loads(base64.urlsafe_b64decode(query["continue"]))
                if version < self.oldest:
                    raise Rejected(410, "Expired", "the continue token is too old: list again")
            items = [
                obj
                for (kind, ns, name), obj in sorted(self.objects.items())
                if kind == resource.kind and f"{ns}/{name}" > after and self._wanted(obj, namespace, query)
            ]
        limit = int(query.get("limit") or 0)
        metadata: JSON = {"resourceVersion": str(version)}
        if 0 < limit < len(items):
            items = items[:limit]
            last = items[-1]["metadata"]
            token = json.dumps([version, f"{last['namespace']}/{last['name']}"]).encode()
            metadata["continue"] = base64.urlsafe_b64encode(token).decode()
        return {"kind": f"{resource.kind}List", "apiVersion": resource.api_version, "metadata": metadata,
                "items": copy.deepcopy(items)}  # fmt: skip

    def watch(self, resource: Resource, namespace: str, query: dict[str, str]) -> Iterator[JSON]:
        """The events after `resourceVersion`, then live ones, until ended, timed out or stopped.

        Version "" or "0" starts with the current objects as ADDED (what the API calls "any
        version"). A version older than the log gets one ERROR event (410 Expired) and the end.
        A bad query raises here, before the stream starts.
        """
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        since = query.get("resourceVersion", "")
        selector_matches(query.get("labelSelector", ""), {})
        with self.changed:
            if since in ("", "0"):
                objects = [o for (k, _, _), o in sorted(self.objects.items()) if k == resource.kind]
                first = [
                    {"type": "ADDED", "object": copy.deepcopy(o)} for o in objects if self._wanted(o, namespace, query)
                ]
                since = str(self.version)
            elif int(since) < self.oldest:
                message = f"too old resource version: {since} ({self.oldest})"
                return iter([{"type": "ERROR", "object": status(410, "Expired", message)}])
            else:
                first = []
            opened = (self.ended, self.compactions)
        return self._follow(resource, namespace, query, first, int(since), opened, deadline)

    def _follow(
        self,
        resource: Resource,
        namespace: str,
        query: dict[str, str],
        batch: list[JSON],
        sent: int,
        opened: tuple[int, int],
        deadline: float,
    ) -> Iterator[JSON]:
        """Send each matching write after version `sent` as it comes, and a bookmark every interval when asked."""
        bookmarks = query.get("allowWatchBookmarks") == "true"
        ended, compactions = opened
        next_bookmark = time.monotonic() + self.bookmark_interval
        while True:
            yield from batch
            with self.changed:
                self.changed.wait_for(
                    functools.partial(self._woken, ended, sent),
                    timeout=max(0.0, min(deadline, next_bookmark) - time.monotonic()),
                )
                if self.stopped or self.ended != ended or time.monotonic() >= deadline:
                    return
                batch = [
                    {"type": e.type, "object": copy.deepcopy(e.object)}
                    for e in self.events
                    if e.version > sent
                    and e.object["kind"] == resource.kind
                    and self._wanted(e.object, namespace, query)
                ]
                sent = self.version
                if time.monotonic() >= next_bookmark:
                    next_bookmark = time.monotonic() + self.bookmark_interval
                    if bookmarks and compactions == self.compactions:
                        meta = {"resourceVersion": str(sent)}
                        batch.append({"type": "BOOKMARK", "object": {**self._kind(resource), "metadata": meta}})

    def _woken(self, ended: int, sent: int) -> bool:
        """Whether a watch that has sent every write up to `sent` has something to do (lock held)."""
        return self.stopped or self.ended != ended or self.version != sent

    @staticmethod
    def _kind(resource: Resource) -> JSON:
        return {"kind": resource.kind, "apiVersion": resource.api_version}

    @staticmethod
    def _wanted(obj: JSON, namespace: str, query: dict[str, str]) -> bool:
        meta = obj["metadata"]
        in_namespace = not namespace or meta["namespace"] == namespace
        return in_namespace and selector_matches(query.get("labelSelector", ""), meta.get("labels") or {})


def _resource(kind: str) -> Resource:
    for resource in RESOURCES:
        if resource.kind == kind:
            return resource
    raise ValueError(f"the fake API server does not serve {kind}")


class _Server(ThreadingHTTPServer):
    fake: FakeApiServer


class _Handler(BaseHTTPRequestHandler):
    """GET only: discovery, list and watch. Watches stream one JSON event per line, chunked."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        fake = cast(_Server, self.server).fake
        if self.headers.get("Authorization") != f"Bearer {fake.token}":
            self._reply(401, status(401, "Unauthorized", "Unauthorized"))
            return
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        fake.requests.append((url.path, query))
        try:
            if url.path == f"/apis/{GROUP}":
                self._reply(200, API_GROUP)
                return
            for resource in RESOURCES:
                namespace = resource.route(url.path)
                if namespace is None:
                    continue
                if query.get("watch") in ("true", "1"):
                    self._stream(fake.watch(resource, namespace, query))
                else:
                    self._reply(200, fake.list_page(resource, namespace, query))
                return
            raise Rejected(404, "NotFound", f"the server could not find the requested resource ({url.path})")
        except Rejected as exc:
            self._reply(exc.status["code"], exc.status)
        except (ValueError, TypeError, AttributeError) as exc:  # a bad selector, limit or version
            self._reply(400, status(400, "BadRequest", str(exc)))

    def _read_only(self) -> None:
        """Writes go through `put` and `delete`; over HTTP they get a Status, as a real server's refusal."""
        self.rfile.read(int(self.headers.get("Content-Length") or 0))  # keeps the connection usable
        self._reply(405, status(405, "MethodNotAllowed", f"{self.command} is not supported by the fake API server"))

    do_POST = do_PUT = do_PATCH = do_DELETE = _read_only

    def _reply(self, code: int, body: JSON) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, events: Iterator[JSON]) -> None:
        """200 at once, then each event as its own chunk; the empty chunk ends the watch cleanly."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in events:
                self._chunk(json.dumps(event).encode() + b"\n")
            self._chunk(b"")
        except OSError:  # the client went away
            self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def log_message(self, *args: Any) -> None:
        pass


def _kubeconfig(port: int, token: str) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: {{server: "http://127.0.0.1:{port}"}}
users:
- name: fake
  user: {{token: {token}}}
contexts:
- name: fake
  context: {{cluster: fake, user: fake}}
current-context: fake
"""
