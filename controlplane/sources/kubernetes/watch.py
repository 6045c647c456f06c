"""List, then watch, one kind of object: the protocol every Kubernetes controller speaks.

A list gives the objects and a resource version; a watch from that version streams every change
after it. Bookmarks move the version on when nothing changes. The server ends watches now and
then (resume from the last version), and forgets old versions (410 Gone: list again). A
periodic re-list repairs any event lost in between. Each ListWatch runs in its own thread,
because the official client is synchronous; it calls `changed` after each applied batch.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from controlplane.sources.kubernetes.client import JSON, KubeClient, KubeError

log = logging.getLogger(__name__)

GONE = 410
NOT_FOUND = 404
OPTIONAL_RETRY = 10.0
"""Seconds between checks for an optional kind that is not installed (a CRD applied later)."""


@dataclass(frozen=True)
class WatchTiming:
    """How long watches last and how often the whole list is read again."""

    watch_seconds: int = 300
    """Asked of the server per watch (it may end one sooner)."""
    relist_seconds: float = 600.0
    """Re-list this often even when nothing went wrong, to repair a lost event."""
    backoff_min: float = 0.2
    backoff_max: float = 5.0


class ListWatch:
    """The current objects of one kind at `path`, by `namespace/name`, kept in step with the server."""

    def __init__(
        self,
        client: KubeClient,
        path: str,
        changed: Callable[[], None],
        timing: WatchTiming = WatchTiming(),
        label_selector: str = "",
        optional: bool = False,
    ) -> None:
        self.client, self.path, self.changed, self.timing = client, path, changed, timing
        self.label_selector = label_selector
        self.optional = optional
        """A kind that may not exist (a CRD not applied): a 404 counts as an empty, synced list."""
        self.objects: dict[str, JSON] = {}
        """`namespace/name` -> the object as the server sent it. Read under `lock`."""
        self.lock = threading.Lock()
        self.synced = False
        """True once the first list has been read."""
        self.last_contact = 0.0
        """Wall-clock time of the last list, event or bookmark (the sync age on the status page)."""
        self.error = ""
        """Why the last attempt failed, until one succeeds."""
        self.relists = 0
        self.absent = False
        """True while an optional kind is not served: its age says nothing about freshness."""
        self._version = ""
        self._listed_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run in a daemon thread (it holds nothing a process exit must flush)."""
        self._thread = threading.Thread(target=self._run, name=f"watch {self.path}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def snapshot(self) -> list[JSON]:
        """The current objects, copied under the lock."""
        with self.lock:
            return list(self.objects.values())

    def _run(self) -> None:
        backoff = self.timing.backoff_min
        while not self._stop.is_set():
            try:
                if not self._version or time.monotonic() - self._listed_at > self.timing.relist_seconds:
                    self._list()
                if self._watch() == 0:
                    # Ended at once with nothing in it: a server or proxy doing this must not
                    # turn the loop into a tight one.
                    self._stop.wait(self.timing.backoff_min)
                backoff = self.timing.backoff_min
            except KubeError as exc:
                if exc.status == GONE:
                    log.info("watch %s: %s; listing again", self.path, exc)
                    self._version = ""
                    continue
                if exc.status == NOT_FOUND and self.optional:
                    self._absent()
                    continue
                self.error = str(exc)
                log.warning("watch %s failed (retrying in %.1fs): %s", self.path, backoff, exc)
                self._stop.wait(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, self.timing.backoff_max)

    def _absent(self) -> None:
        """An optional kind the server does not serve: nothing of it exists; look again later."""
        with self.lock:
            had, self.objects = bool(self.objects), {}
        if not self.synced or had:
            log.warning("%s is not served (CRD not applied?); checking every %.0fs", self.path, OPTIONAL_RETRY)
        self.synced, self._version, self.absent = True, "", True
        self._contact()
        self.changed()
        self._stop.wait(OPTIONAL_RETRY)

    def _query(self) -> dict[str, str]:
        return {"labelSelector": self.label_selector} if self.label_selector else {}

    def _list(self) -> None:
        """Replace every object with a fresh list (paged, so a large cluster is not one response)."""
        objects: dict[str, JSON] = {}
        query = {**self._query(), "limit": "500"}
        while True:
            page = self.client.get(self.path, query)
            for item in page.get("items", []):
                objects[_key(item)] = item
            token = page.get("metadata", {}).get("continue")
            if not token:
                break
            query["continue"] = token
        with self.lock:
            self.objects = objects
        self._version = page.get("metadata", {}).get("resourceVersion", "")
        self._listed_at = time.monotonic()
        self.relists += 1
        self.absent = False
        self._contact()
        self.synced = True
        self.changed()

    def _watch(self) -> int:
        """Apply events until the server ends the stream, or a re-list is due; returns how many."""
        query = {
            **self._query(),
            "watch": "true",
            "resourceVersion": self._version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self.timing.watch_seconds),
        }
        applied = 0
        for event in self._events(query):
            self._apply(event)
            applied += 1
            if self._stop.is_set() or time.monotonic() - self._listed_at > self.timing.relist_seconds:
                break
        return applied

    def _events(self, query: dict[str, str]) -> Iterator[JSON]:
        # Read timeout: a bookmark or an event comes at least every minute or so; a silent
        # connection beyond the watch's own length is a dead one.
        return self.client.stream(self.path, query, read_timeout=self.timing.watch_seconds + 30)

    def _apply(self, event: JSON) -> None:
        kind, obj = event.get("type"), event.get("object", {})
        if kind == "ERROR":
            raise KubeError(int(obj.get("code", 0)), obj.get("message", "watch error"))
        self._version = obj.get("metadata", {}).get("resourceVersion", self._version)
        self._contact()
        if kind == "BOOKMARK":
            return
        with self.lock:
            if kind == "DELETED":
                self.objects.pop(_key(obj), None)
            else:
                self.objects[_key(obj)] = obj
        self.changed()

    def _contact(self) -> None:
        self.last_contact, self.error = time.time(), ""


def _key(obj: JSON) -> str:
    meta = obj.get("metadata", {})
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"
