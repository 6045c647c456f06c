"""The overload manager of `controlplane bootstrap` at work in a real Envoy: the global connection
cap refuses the connection over it, the admin interface stays reachable, and Envoy no longer
warns that its connections are unlimited."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest

from tests.e2e import ControlPlane, Envoy, Upstream, free_port, listener, request, stopping, wait_for

pytestmark = pytest.mark.envoy

UNLIMITED_WARNING = "no configured limit to the number of allowed active downstream connections"


def held_connection(port: int) -> socket.socket:
    """A connection Envoy has accepted and answered on, left open."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    assert conn.recv(12) == b"HTTP/1.1 200"
    return conn


def refused(port: int) -> bool:
    """Whether Envoy closes a new connection instead of answering on it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        try:
            conn.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            return conn.recv(12) == b""
        except ConnectionResetError:
            return True


def test_the_global_connection_cap_refuses_the_connection_over_it(tmp_path: Path) -> None:
    app = Upstream("app").start()
    port = free_port()
    routes = (
        listener(port, "      - match: {prefix: /}\n        to: app\n")
        + f"services:\n  app: {{endpoints: ['{app.address}']}}\n"
    )
    control_plane = ControlPlane(routes, tmp_path).start()
    envoy = Envoy(tmp_path, control_plane.xds_port, "capped", "sotw", bootstrap_args=("--max-connections", "2"))
    with stopping(app, control_plane, envoy.start()), contextlib.ExitStack() as held:
        envoy.wait_listening(port)
        wait_for(lambda: request(port)[0] == 200, what="routes applied")
        wait_for(lambda: envoy.stat("server.total_connections") == 0, what="the readiness probe's connection to close")
        for _ in range(2):
            held.enter_context(held_connection(port))
        assert refused(port)
        listener_stat = f"listener.127.0.0.1_{port}.downstream_global_cx_overflow"
        assert envoy.stat(listener_stat) == 1  # the admin call itself proves admin is outside the cap
        held.close()
        wait_for(lambda: request(port)[0] == 200, what="room under the cap again")
    assert UNLIMITED_WARNING not in envoy.log.read_text(encoding="utf-8", errors="replace")
