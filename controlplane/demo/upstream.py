"""A demo upstream: answers its name; can start failing after a while, as a sick pod does.

`python -m controlplane.demo.upstream --name shop-v1 --port 18011 [--fail-after 60]`

Every request gets `NAME` (and an `x-upstream: NAME` header) with status 200, or 500 once
`--fail-after` seconds have passed. `/healthz` keeps answering 200 even then: the process is
alive but its answers are bad, which only passive health checking (outlier detection) catches.
Standard library only, so the compose file can run it from the control plane's image.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType


def handler_for(name: str, fail_at: float | None) -> type[BaseHTTPRequestHandler]:
    """A request handler answering as `name`, failing from monotonic time `fail_at` on."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            failing = fail_at is not None and time.monotonic() >= fail_at and self.path != "/healthz"
            body = f"{name}{' failing' if failing else ''}\n".encode()
            self.send_response(500 if failing else 200)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(body)))
            self.send_header("x-upstream", name)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            """Quiet: the demo's own output is the guide."""

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--fail-after", type=float, help="answer 500 (except /healthz) after this many seconds")
    args = parser.parse_args(argv)
    fail_at = time.monotonic() + args.fail_after if args.fail_after is not None else None
    server = ThreadingHTTPServer((args.host, args.port), handler_for(args.name, fail_at))
    server.daemon_threads = True

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
