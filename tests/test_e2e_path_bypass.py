"""Path and header bypasses through real Envoy: a DSL rule that denies /admin holds against every
spelling of /admin a client can send, and header rules hold against duplicated headers.

One control plane, one Envoy and one upstream for the whole module. The upstream keeps the raw
head of every request it receives; requests leave on raw sockets, so no client library tidies a
path before Envoy sees it. Each case asserts both what the client got and what reached the
upstream.
"""

from __future__ import annotations

import contextlib
import posixpath
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest

from tests.e2e import free_port, gateway, stopping

pytestmark = pytest.mark.envoy

ROLE_LIST_ITEM = r"(.*,)?[ \t]*admin[ \t]*(,.*)?"
"""`admin` as one item of a comma-separated list: what RFC 9110 says two header lines equal."""


def routes(upstream_port: int) -> Callable[[int], str]:
    """The route file: /admin denied case-sensitively on strict.test, case-insensitively on
    insensitive.test; header rules on strict.test; everything else proxied to the upstream."""

    def text(port: int) -> str:
        deny = "direct_response: {status: 403, body: denied}"
        return f"""\
listeners:
  - name: public
    port: {port}
    address: 127.0.0.1
    hosts:
      - domains: [strict.test]
        routes:
          - {{match: {{prefix: /admin}}, {deny}}}
          - {{match: {{prefix: /exact-role, headers: {{x-role: admin}}}}, {deny}}}
          - {{match: {{prefix: /list-role, headers: {{x-role: {{regex: '{ROLE_LIST_ITEM}'}}}}}}, {deny}}}
          - {{match: {{prefix: /user-only, headers: {{x-role: user}}}}, to: app}}
          - {{match: {{prefix: /user-only}}, {deny}}}
          - {{match: {{prefix: /}}, to: app}}
      - domains: [insensitive.test]
        routes:
          - {{match: {{prefix: /admin, case_sensitive: false}}, {deny}}}
          - {{match: {{prefix: /}}, to: app}}
services:
  app: {{endpoints: ['127.0.0.1:{upstream_port}']}}
"""

    return text


@dataclass
class RecordingUpstream:
    """An HTTP/1.1 server that answers 200 to every request and keeps each request head as bytes."""

    port: int = field(default_factory=free_port)
    heads: list[bytes] = field(default_factory=list)
    listener: socket.socket | None = None
    connections: list[socket.socket] = field(default_factory=list)

    def start(self) -> RecordingUpstream:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the listener was closed: stop
            while True:
                connection, _ = listener.accept()
                self.connections.append(connection)
                threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        """Requests carry no body (GET only), so a head ends each one; Envoy may reuse the connection."""
        connection.settimeout(30)
        buffer = b""
        with contextlib.suppress(OSError), connection:
            while len(buffer) < 1 << 20 and (chunk := connection.recv(65536)):
                buffer += chunk
                while b"\r\n\r\n" in buffer:
                    head, buffer = buffer.split(b"\r\n\r\n", 1)
                    self.heads.append(head)
                    connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nupstream")

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.close()
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def targets(self) -> list[bytes]:
        """The request target of every head received, in order."""
        return [head.split(b" ", 2)[1] for head in self.heads]


@dataclass(frozen=True)
class Reply:
    status: int
    location: str
    body: bytes


@dataclass
class Edge:
    port: int
    upstream: RecordingUpstream
    envoy_log: Path

    def send(self, target: bytes, host: bytes = b"strict.test", headers: bytes = b"") -> Reply:
        """One request with the target and header lines exactly as given, on its own connection."""
        request = b"GET " + target + b" HTTP/1.1\r\nhost: " + host + b"\r\n" + headers + b"connection: close\r\n\r\n"
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(request)
            return read_reply(conn)

    def fresh(self) -> RecordingUpstream:
        """The upstream with its record emptied, so a case sees only its own requests."""
        self.upstream.heads.clear()
        return self.upstream


def read_reply(conn: socket.socket) -> Reply:
    """Read one response by its content-length: waiting for Envoy to close would cost its
    `delayed_close_timeout` (1 s) on every answer it makes itself."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 1 << 16 and (chunk := conn.recv(65536)):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    while len(body) < int(fields.get("content-length", "0")) and (chunk := conn.recv(65536)):
        body += chunk
    return Reply(int(lines[0].split()[1]), fields.get("location", ""), body)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    upstream = RecordingUpstream().start()
    tmp = tmp_path_factory.mktemp("path-bypass")
    with stopping(upstream), gateway(tmp, "sotw", routes(upstream.port)) as gw:
        yield Edge(gw.port, upstream, gw.envoy.log)


def lenient_path(target: bytes) -> bytes:
    """What the most forgiving upstream makes of a request target: every escape decoded (`%2F`
    included), backslashes as slashes, `;params` dropped from each segment (as servlet containers
    do), dot segments resolved and repeated slashes merged. Case is kept: rules are case-sensitive."""
    path = unquote_to_bytes(target.split(b"?", 1)[0].split(b"#", 1)[0]).replace(b"\\", b"/")
    segments = [segment.split(b";", 1)[0] for segment in path.split(b"/")]
    return posixpath.normpath(b"/" + b"/".join(s for s in segments if s))


def reaches_admin(target: bytes) -> bool:
    return re.fullmatch(rb"/admin(/.*)?", lenient_path(target)) is not None


@pytest.mark.parametrize(
    ("target", "statuses", "location"),
    [
        pytest.param(b"/admin", (403,), "", id="plain"),
        pytest.param(b"//admin", (403,), "", id="double-slash"),
        pytest.param(b"/a/../admin", (403,), "", id="dot-dot"),
        pytest.param(b"/%2Fadmin", (307, 403), "/admin", id="escaped-slash"),
        pytest.param(b"/%2fadmin", (307, 403), "/admin", id="escaped-slash-lower"),
        pytest.param(b"/%5Cadmin", (307, 403), "/admin", id="escaped-backslash"),
        pytest.param(b"/%2e%2e/admin", (403,), "", id="escaped-dot-dot"),
        pytest.param(b"/.%2e/admin", (403,), "", id="half-escaped-dot-dot"),
        pytest.param(b"/./admin", (403,), "", id="dot"),
        pytest.param(b"/admin;x", (403,), "", id="path-parameter"),
        pytest.param(b"/admin%3Bx", (403,), "", id="escaped-path-parameter"),
        pytest.param(b"/x/..;/admin", (403,), "", id="dot-dot-with-parameter"),
        pytest.param(b"/admin/", (403,), "", id="trailing-slash"),
        pytest.param(b"/admin/.", (403,), "", id="trailing-dot"),
        pytest.param(b"/admin%2F", (307, 403), "/admin/", id="escaped-trailing-slash"),
        # `/admin/..` is `/`: redirected there and served, and `/` is not under /admin.
        pytest.param(b"/admin%2F..", (307, 200), "/", id="escaped-slash-then-dot-dot"),
        pytest.param(b"/%61dmin", (403,), "", id="escaped-unreserved"),
        pytest.param(b"/ad%6Din", (403,), "", id="escaped-unreserved-inside"),
        pytest.param(b"/admin?x", (403,), "", id="query"),
        pytest.param(b"/admin#x", (400,), "", id="fragment"),
        pytest.param(b"/\\admin", (403,), "", id="backslash"),
        pytest.param(b"http://strict.test/admin", (403,), "", id="absolute-form"),
        pytest.param(b"/admin%00", (400,), "", id="escaped-nul"),
    ],
)
def test_every_spelling_of_admin_is_denied(edge: Edge, target: bytes, statuses: tuple[int, ...], location: str) -> None:
    upstream = edge.fresh()
    first = edge.send(target)
    got = [first.status]
    if first.status == 307:
        assert first.location == location
        got.append(edge.send(location.encode()).status)
    assert tuple(got) == statuses
    assert not [t for t in upstream.targets() if reaches_admin(t)], upstream.targets()


def test_the_lenient_reading_sees_admin_in_every_bypass_attempt() -> None:
    """The check on what the upstream receives would catch each attempt, had Envoy let it through."""
    attempts = [b"//admin", b"/a/../admin", b"/%2Fadmin", b"/%2e%2e/admin", b"/admin;x", b"/%61dmin", b"/\\admin"]
    assert all(reaches_admin(target) for target in attempts)
    assert not any(reaches_admin(target) for target in [b"/", b"/administrator", b"/ADMIN", b"/x/admin"])


def test_a_case_sensitive_rule_lets_other_cases_through_by_design(edge: Edge) -> None:
    """Prefixes are case-sensitive unless `case_sensitive: false`, as in Envoy and Gateway API."""
    upstream = edge.fresh()
    assert edge.send(b"/ADMIN").status == 200
    assert upstream.targets() == [b"/ADMIN"]


@pytest.mark.parametrize("target", [b"/ADMIN", b"/Admin/x", b"/aDmIn?x", b"/%41DMIN", b"//ADMIN", b"/ADMIN;x"])
def test_a_case_insensitive_rule_denies_every_case(edge: Edge, target: bytes) -> None:
    upstream = edge.fresh()
    assert edge.send(target, host=b"insensitive.test").status == 403
    assert upstream.heads == []


def test_a_header_with_an_underscore_is_refused(edge: Edge) -> None:
    """Upstreams that read `x_user` and `x-user` as one header cannot be fed the underscore form."""
    upstream = edge.fresh()
    assert edge.send(b"/public", headers=b"x_user: admin\r\n").status == 400
    assert upstream.heads == []


@pytest.mark.parametrize(
    ("path", "lines", "status"),
    [
        pytest.param(b"/exact-role", [b"user", b"admin"], 403, id="exact-admin-second"),
        pytest.param(b"/exact-role", [b"admin", b"user"], 403, id="exact-admin-first"),
        pytest.param(b"/exact-role", [b"user"], 200, id="exact-user"),
        pytest.param(b"/list-role", [b"user", b"admin"], 403, id="list-two-lines"),
        pytest.param(b"/list-role", [b"user, admin"], 403, id="list-one-line"),
        pytest.param(b"/list-role", [b"admin,user"], 403, id="list-one-line-first"),
        pytest.param(b"/list-role", [b"superadmin"], 200, id="list-other-value"),
    ],
)
def test_a_deny_rule_holds_against_duplicated_headers(edge: Edge, path: bytes, lines: list[bytes], status: int) -> None:
    """Envoy 1.40 matches each header line on its own and a matcher holds if any line matches, so
    a deny rule on a value sees it whichever line carries it."""
    upstream = edge.fresh()
    assert edge.send(path, headers=b"".join(b"x-role: " + line + b"\r\n" for line in lines)).status == status
    assert len(upstream.heads) == (status == 200)


def test_an_exact_rule_does_not_split_one_line_at_commas(edge: Edge) -> None:
    """The limitation the list-item regex closes: `x-role: user, admin` in one line is not `admin`
    to an exact match, yet an upstream may read it as the two values it stands for."""
    upstream = edge.fresh()
    assert edge.send(b"/exact-role", headers=b"x-role: user, admin\r\n").status == 200
    assert b"x-role: user, admin" in upstream.heads[0].split(b"\r\n")


def test_an_allow_rule_on_a_value_lets_a_second_value_through(edge: Edge) -> None:
    """The other side of any-line matching: a route taken when `x-role: user` is also taken when
    `x-role: admin` comes along, and the upstream receives both lines. Deny, do not allow, by value."""
    upstream = edge.fresh()
    assert edge.send(b"/user-only", headers=b"x-role: user\r\nx-role: admin\r\n").status == 200
    received = upstream.heads[0].split(b"\r\n")
    assert b"x-role: user" in received and b"x-role: admin" in received
    assert edge.send(b"/user-only", headers=b"x-role: admin\r\n").status == 403


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"x-a: a\x00b\r\n", id="nul"),
        pytest.param(b"x-a: a\nb\r\n", id="bare-lf"),
        pytest.param(b"x-a: a\x01b\r\n", id="control-character"),
        pytest.param(b"x-a : b\r\n", id="space-before-colon"),
    ],
)
def test_the_codec_refuses_malformed_header_lines(edge: Edge, line: bytes) -> None:
    upstream = edge.fresh()
    assert edge.send(b"/public", headers=line).status == 400
    assert upstream.heads == []


def test_a_bare_cr_in_a_header_value_never_reaches_the_upstream(edge: Edge) -> None:
    """Envoy 1.40's HTTP/1 codec drops a lone CR from a value (`a\\rb` arrives as `ab`), so no
    upstream that ends lines at CR can be handed a second, smuggled header line."""
    upstream = edge.fresh()
    status = edge.send(b"/public", headers=b"x-a: a\rx-injected: 1\r\n").status
    assert status in (200, 400)
    for head in upstream.heads:
        assert b"\r" not in head.replace(b"\r\n", b""), head
        assert not any(line.startswith(b"x-injected") for line in head.split(b"\r\n"))
