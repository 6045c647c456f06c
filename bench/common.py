"""Shared pieces of the scenarios: sizes, generated route files, Envoy fleets, process memory.

Every scenario takes a `Sizes` (full for `make bench`, tiny for `make bench-smoke`) so the smoke
run executes the same code paths with seconds of work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlplane.cache import Snapshot
from controlplane.dsl import load_texts
from controlplane.translate import build_resources
from tests.e2e import ControlPlane, Envoy, wait_for


@dataclass(frozen=True)
class Sizes:
    """How big each scenario runs; `smoke` shrinks everything to seconds."""

    smoke: bool
    envoys: int  # S1, S2
    edits: int  # S1 samples
    churn_rate: float  # S2 changes per second
    churn_seconds: float  # S2
    translate_services: int  # S3 (routes: one per service)
    translate_endpoints: int
    translate_repeats: int
    clusters: int  # S4, S5, S6: clusters of 10 endpoints
    cold_envoys: int  # S4
    clients: tuple[int, ...]  # S5 synthetic client counts
    bytes_envoys: int  # S6 per API (half subscribed, half not)
    restart_envoys: int  # S7
    settle: float = 1.0  # seconds to let counters and memory settle before a reading (S5-S7)


FULL = Sizes(
    smoke=False,
    envoys=50,
    edits=50,
    churn_rate=100.0,
    churn_seconds=30.0,
    translate_services=10_000,
    translate_endpoints=10,
    translate_repeats=3,
    clusters=1_000,
    cold_envoys=10,
    clients=(100, 1_000),
    bytes_envoys=4,
    restart_envoys=4,
)
SMOKE = Sizes(
    smoke=True,
    envoys=2,
    edits=3,
    churn_rate=20.0,
    churn_seconds=1.0,
    translate_services=50,
    translate_endpoints=3,
    translate_repeats=1,
    clusters=20,
    cold_envoys=2,
    clients=(3, 6),
    bytes_envoys=2,
    restart_envoys=1,
    settle=0.25,
)


def serve_args(tmp: Path) -> tuple[str, ...]:
    """`serve` arguments of every benchmark control plane: as deployed (deploy/kubernetes), with
    checkpoints and registry leases written to a state directory."""
    return ("--log-level", "info", "--state-dir", str(tmp / "state"))


def endpoint(service: int, index: int) -> str:
    """A loopback address nobody listens on (Envoy connects only when traffic comes)."""
    return f"127.0.{1 + service // 250}.{1 + service % 250}:{20_000 + index}"


def services_yaml(
    count: int, endpoints: int, prefix: str = "s", extra: dict[int, int] | None = None, offset: int = 0
) -> str:
    """`count` services named PREFIX0.. with `endpoints` each; `extra` gives some a different count."""
    extra = extra or {}
    lines = ["services:"]
    for i in range(count):
        addresses = ", ".join(f"'{endpoint(offset + i, e)}'" for e in range(extra.get(i, endpoints)))
        lines.append(f"  {prefix}{i}: {{endpoints: [{addresses}]}}")
    return "\n".join(lines) + "\n"


def listener_yaml(port: int, services: Iterable[str], name: str = "public", nodes: str = "") -> str:
    """One loopback listener routing /NAME/ to each service (segment-wise prefix routes)."""
    head = f"  - name: {name}\n    port: {port}\n    address: 127.0.0.1\n"
    if nodes:
        head += f"    nodes: [{nodes}]\n"
    routes = "".join(f"      - match: {{prefix: /{s}}}\n        to: {s}\n" for s in services)
    return head + "    routes:\n" + routes


def route_file(port: int, count: int, endpoints: int, extra: dict[int, int] | None = None) -> str:
    """A listener with one route per service, and `count` services of `endpoints` each."""
    names = [f"s{i}" for i in range(count)]
    return "listeners:\n" + listener_yaml(port, names) + services_yaml(count, endpoints, extra=extra)


def expected_version(text: str, type_url: str, node_cluster: str = "") -> str:
    """The version of `type_url` the control plane will serve for `text` (versions are hashes)."""
    model = load_texts([("routes.yaml", text)])
    return Snapshot.from_resources(build_resources(model, node_cluster)).get(type_url).version


def acks(cp: ControlPlane, type_url: str) -> list[tuple[str, str, float]]:
    """(node id, ACKed version, when) for `type_url` of every connected Envoy."""
    return [
        (n["node_id"], t["acked_version"], t["acked_at"])
        for n in cp.get("/api/nodes")
        for t in n["types"]
        if t["type_url"] == type_url
    ]


def all_acked(cp: ControlPlane, type_url: str, version: str, count: int) -> float | None:
    """When the last of `count` Envoys ACKed `version` (control plane wall clock), or None."""
    found = acks(cp, type_url)
    if len(found) != count or any(v != version for _, v, _ in found):
        return None
    return max(at for _, _, at in found)


def start_fleet(
    tmp: Path,
    xds_port: int,
    count: int,
    api: str = "sotw",
    prefix: str = "envoy",
    node_cluster: str = "edge",
    extra: tuple[str, ...] = (),
) -> list[Envoy]:
    """`count` real Envoys (--concurrency 1, no stats sink) on the control plane at `xds_port`."""
    args = ("--stats-interval", "0s", *extra)
    return [
        Envoy(tmp, xds_port, f"{prefix}-{i}", api, node_cluster=node_cluster, bootstrap_args=args).start()
        for i in range(count)
    ]


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def best_of(repeats: int, work: Callable[[], Any]) -> float:
    """The fastest of `repeats` runs of `work`, in seconds (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def envoy_stats(envoy: Envoy, prefix: str) -> dict[str, int]:
    """Envoy's counters and gauges whose names start with `prefix`."""
    found: dict[str, int] = {}
    for line in envoy.admin(f"/stats?filter=^{prefix}").splitlines():
        key, _, value = line.partition(": ")
        if value.strip().lstrip("-").isdigit():
            found[key] = int(value)
    return found


def wait_all(
    cp: ControlPlane, type_url: str, version: str, count: int, timeout: float, what: str, every: float = 0.01
) -> float:
    """Wait until `count` Envoys ACK `version` of `type_url`; the time of the last ACK (as stamped
    by the control plane, so `every` only sets how much the polling itself loads the machine)."""
    result: float = wait_for(lambda: all_acked(cp, type_url, version, count), timeout, what, every=every)
    return result
