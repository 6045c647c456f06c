"""End-to-end harness: `controlplane serve` and real Envoy processes, real HTTP upstreams, loopback only.

Every process is started by the test and stopped by PID; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import itertools
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, find_envoy

_base_ids = itertools.count(os.getpid() % 10_000 * 10)


def _ephemeral_low() -> int:
    """The first port of the kernel's range for outgoing connections' local ports."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


EPHEMERAL_LOW = _ephemeral_low()
_handed_out: set[int] = set()


def free_port() -> int:
    """A port free now on 127.0.0.1, below the ephemeral range, never handed out twice.

    Binding port 0 picks from the ephemeral range, where every connect() also takes its local
    port: between picking and binding, an outgoing connection could take it (seen: an Envoy
    listener NACKed with "Address already in use").
    """
    low = max(1024, EPHEMERAL_LOW - 20_000)
    for _ in range(1_000):
        port = random.randrange(low, EPHEMERAL_LOW) if EPHEMERAL_LOW - low > 1_000 else 0
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = int(s.getsockname()[1])
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port on 127.0.0.1 below {EPHEMERAL_LOW}")


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition", every: float = 0.02) -> Any:
    """Poll `condition` every `every` seconds until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except (OSError, http.client.HTTPException, ValueError):
            pass
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def settled_hits(upstream: Upstream) -> int:
    """The upstream's hit count once it has stopped moving for half a second (-1 while moving)."""
    before = upstream.hits
    time.sleep(0.5)
    return before if upstream.hits == before else -1


@dataclass
class Upstream:
    """An HTTP server answering `name` (or 500 when failing; slowly when `delay` is set)."""

    name: str
    port: int = field(default_factory=free_port)
    failing: bool = False
    delay: float = 0.0
    hits: int = 0
    server: ThreadingHTTPServer | None = None
    connections: set[socket.socket] = field(default_factory=set)

    def start(self) -> Upstream:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One write per response and no Nagle: otherwise headers and body leave in two
            # small packets and the second waits ~40ms for a delayed ACK.
            wbufsize = 64 * 1024
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                upstream.connections.add(self.connection)

            def finish(self) -> None:
                upstream.connections.discard(self.connection)
                super().finish()

            def do_GET(self) -> None:
                if self.path != "/healthz":
                    upstream.hits += 1
                    if upstream.delay:
                        time.sleep(upstream.delay)
                status = 500 if upstream.failing else 200
                body = f"{upstream.name} {self.path} {self.headers.get('x-seen', '')}".encode()
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.send_header("x-upstream", upstream.name)
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default backlog of 5 drops connects under load

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Die like a crashed process: stop listening and reset every open connection."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        for connection in list(self.connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.connections.clear()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class ControlPlane:
    """`controlplane serve` in a subprocess, watching one route file."""

    def __init__(self, routes: str, tmp: Path, extra_args: tuple[str, ...] = (), name: str = "") -> None:
        """`name` gives the replica its own folder (route file, log) under `tmp`."""
        if name:
            tmp = tmp / name
            tmp.mkdir(parents=True, exist_ok=True)
        self.extra_args = extra_args
        self.routes_file = tmp / "routes.yaml"
        self.routes_file.write_text(routes, encoding="utf-8")
        self.xds_port, self.status_port = free_port(), free_port()
        self.log = tmp / "controlplane.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready: bool = True) -> ControlPlane:
        """Start; with `ready`, wait until it serves a config (else until the status API answers)."""
        cmd = [
            sys.executable,
            "-m",
            "controlplane",
            "serve",
            "--config",
            str(self.routes_file),
            "--xds-address",
            f"127.0.0.1:{self.xds_port}",
            "--status-address",
            f"127.0.0.1:{self.status_port}",
            "--poll-interval",
            "10ms",
            "--log-level",
            "debug",
            *self.extra_args,  # later flags win: may override the two above
        ]
        self.process = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        if ready:
            wait_for(lambda: self.get("/readyz").get("ready"), what="control plane ready")
        else:
            wait_for(lambda: self.get("/healthz"), what="control plane up")
        return self

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.status_port}{path}", timeout=2) as response:
            return json.loads(response.read())

    def edit(self, routes: str) -> None:
        self.routes_file.write_text(routes, encoding="utf-8")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def kill(self) -> None:
        """SIGKILL: no goodbye to any Envoy, as in a crash."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def nodes(self) -> list[dict[str, Any]]:
        """Connected Envoys, or [] when this replica does not answer."""
        try:
            result: list[dict[str, Any]] = self.get("/api/nodes")
        except OSError:
            return []
        return result


class Envoy:
    """A real Envoy bootstrapped by `controlplane bootstrap`."""

    def __init__(
        self,
        tmp: Path,
        xds_port: int | list[int],
        node_id: str,
        api: str,
        node_cluster: str = "edge",
        bootstrap_args: tuple[str, ...] = (),
        runtime: dict[str, int] | None = None,
    ) -> None:
        """`runtime` adds a static runtime layer, as an operator may set for one Envoy."""
        ports = xds_port if isinstance(xds_port, list) else [xds_port]
        self.admin_port = free_port()
        self.node_id = node_id
        self.bootstrap = tmp / f"{node_id}.yaml"
        self.log = tmp / f"{node_id}.log"
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "controlplane",
                "bootstrap",
                "--node-id",
                node_id,
                "--node-cluster",
                node_cluster,
                "--xds",
                ",".join(f"127.0.0.1:{port}" for port in ports),
                "--admin-port",
                str(self.admin_port),
                "--api",
                api,
                *bootstrap_args,
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        if runtime:
            layer = "".join(f"      {key}: {value}\n" for key, value in runtime.items())
            out += f"layered_runtime:\n  layers:\n  - name: operator\n    static_layer:\n{layer}"
        self.bootstrap.write_text(out, encoding="utf-8")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Envoy:
        cmd = [
            find_envoy(),
            "-c",
            str(self.bootstrap),
            "--concurrency",
            "1",
            "--base-id",
            str(next(_base_ids)),
            "--log-level",
            "warn",
            "--drain-time-s",
            "1",
            "--parent-shutdown-time-s",
            "2",
        ]
        self.process = subprocess.Popen(cmd, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        return self

    def admin(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=2) as response:
            return str(response.read().decode())

    def stat(self, name: str) -> int:
        for line in self.admin(f"/stats?filter=^{name}$").splitlines():
            key, _, value = line.partition(": ")
            if key == name:
                return int(value)
        return 0

    def wait_listening(self, port: int) -> None:
        wait_for(lambda: _connectable(port), what=f"Envoy listening on {port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def _connectable(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def request(
    port: int, path: str = "/", headers: dict[str, str] | None = None, method: str = "GET", timeout: float = 5.0
) -> tuple[int, str, str]:
    """(status, x-upstream header, body) of one request through Envoy."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("x-upstream", ""), response.read().decode()
    finally:
        conn.close()


class TcpProxy:
    """Forwards a local port to `target`; `blackhole()` then drops every byte, closing nothing,
    like a network that silently stops delivering (new connections are swallowed too)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self.forwarding = True
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> TcpProxy:
        self.thread.start()
        server = asyncio.start_server(self._handle, "127.0.0.1", self.port)
        asyncio.run_coroutine_threadsafe(server, self.loop).result(timeout=5)
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if self.forwarding:
                    writer.write(data)
                    await writer.drain()
            if self.forwarding:
                writer.close()

    def blackhole(self) -> None:
        self.forwarding = False

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._cancel_connections(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)

    async def _cancel_connections(self) -> None:
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


@dataclass
class Gateway:
    """One control plane and one Envoy, with the port of the Envoy listener the routes use."""

    control_plane: ControlPlane
    envoy: Envoy
    port: int

    def get(self, path: str = "/", headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, str, str]:
        return request(self.port, path, headers, method)

    def upstreams_of(self, count: int, path: str = "/", headers: dict[str, str] | None = None) -> list[str]:
        return [self.get(path, headers)[1] for _ in range(count)]


@contextmanager
def gateway(
    tmp: Path,
    api: str,
    routes: Callable[[int], str],
    ready_path: str = "/",
    ready_status: Callable[[int], bool] = lambda s: s < 500,
) -> Iterator[Gateway]:
    """Start a control plane serving `routes(port)` and an Envoy; wait until `ready_path` answers."""
    port = free_port()
    control_plane = ControlPlane(routes(port), tmp).start()
    envoy = Envoy(tmp, control_plane.xds_port, "gw-1", api).start()
    with stopping(control_plane, envoy):
        envoy.wait_listening(port)
        wait_for(lambda: ready_status(request(port, ready_path)[0]), what="routes applied")
        yield Gateway(control_plane, envoy, port)


def listener(port: int, routes: str) -> str:
    """A route file head: one listener on loopback `port` with `routes` (YAML list items, 6 spaces)."""
    return f"listeners:\n  - name: public\n    port: {port}\n    address: 127.0.0.1\n    routes:\n{routes}"


@contextmanager
def stopping(*things: Any) -> Iterator[None]:
    """Stop every started process or server when the block ends, whatever happens."""
    try:
        yield
    finally:
        for thing in reversed(things):
            thing.stop()


class Load:
    """Steady traffic from a few threads (at most `rate` requests/s); records every outcome."""

    def __init__(self, port: int, threads: int = 3, rate: float = 0.0, path: str = "/") -> None:
        self.port, self.path = port, path
        self.pause = threads / rate if rate else 0.0
        self.results: list[tuple[int, str]] = []
        self.stop = threading.Event()
        self.workers = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            try:
                status, upstream, _ = request(self.port, self.path)
            except OSError as exc:
                status, upstream = 0, type(exc).__name__
            self.results.append((status, upstream))
            if self.pause:  # keep to a schedule, so the rate holds whatever a request takes
                next_at += self.pause
                self.stop.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> Load:
        for worker in self.workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for worker in self.workers:
            worker.join(timeout=10)

    def failures(self) -> list[tuple[int, str]]:
        return [r for r in self.results if r[0] != 200]


def metrics_of(status_port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, parsed by prometheus_client's own parser."""
    url = f"http://127.0.0.1:{status_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
