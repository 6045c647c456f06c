"""A demo upstream: answers every request with its name, and fails on demand. Standard library only.

Configured by environment variables:

    UPSTREAM_NAME        the name it answers with (default: the host name)
    UPSTREAM_HOST        address to listen on (default: 0.0.0.0)
    UPSTREAM_PORT        port to listen on (default: 8080; 0 picks a free one)
    UPSTREAM_FAIL_AFTER  seconds after start from which it answers 503 (default: never)
    UPSTREAM_FAIL_FOR    seconds it keeps failing before it answers 200 again (default: for ever)

Every path, /healthz included, answers `NAME\\n` with status 200 and the header `x-upstream: NAME`,
or `NAME failing\\n` with status 503 while failing, so Envoy's health checks and outlier
detection both see the failure. It prints `listening on HOST:PORT` once it accepts connections.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Behaviour:
    """Who this upstream is and when it fails, measured from its start."""

    def __init__(self, name: str, fail_after: float | None, fail_for: float | None) -> None:
        self.name = name
        self.fail_after = fail_after
        self.fail_for = fail_for
        self.started = time.monotonic()

    def failing(self) -> bool:
        """True between fail_after and fail_after + fail_for seconds after the start."""
        if self.fail_after is None:
            return False
        elapsed = time.monotonic() - self.started - self.fail_after
        return elapsed >= 0 and (self.fail_for is None or elapsed < self.fail_for)


class Handler(BaseHTTPRequestHandler):
    """Answers any method on any path; HTTP/1.1 with keep-alive, as Envoy pools connections."""

    protocol_version = "HTTP/1.1"
    server: Server

    def answer(self) -> None:
        behaviour = self.server.behaviour
        failing = behaviour.failing()
        body = f"{behaviour.name}{' failing' if failing else ''}\n".encode()
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(503 if failing else 200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.send_header("x-upstream", behaviour.name)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = answer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a demo under load would otherwise print a line per request."""


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        super().__init__(address, Handler)


def seconds(variable: str) -> float | None:
    """An optional non-negative number of seconds from the environment."""
    text = os.environ.get(variable, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise SystemExit(f"upstream: {variable}={text!r} is not a number of seconds")
    return value


def main() -> None:
    port_text = os.environ.get("UPSTREAM_PORT", "8080")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise SystemExit(f"upstream: UPSTREAM_PORT={port_text!r} is not a port")
    behaviour = Behaviour(
        os.environ.get("UPSTREAM_NAME") or socket.gethostname(),
        seconds("UPSTREAM_FAIL_AFTER"),
        seconds("UPSTREAM_FAIL_FOR"),
    )
    # As PID 1 in a container a signal without a handler is ignored: stop on SIGTERM.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with Server((os.environ.get("UPSTREAM_HOST", "0.0.0.0"), int(port_text)), behaviour) as server:
        host, port = server.server_address[:2]
        print(f"listening on {host!s}:{port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
