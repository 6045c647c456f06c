"""S1: one endpoint change -> ACKed by all of N real Envoys; floor: the same change pre-serialized.

The route file has 10 services x 10 endpoints; each edit removes or restores one endpoint of s0
(so only EDS changes). The clock starts before the file is written and stops at the last
Envoy's ACK as stamped by the control plane (same wall clock); the file watch (inotify) and the
10 ms debounce are included. Floor: the same N Envoys on a bare ADS server that pushes the same
EDS response (the changed ClusterLoadAssignment only, as the control plane sends it),
serialized in advance, and stamps the ACKs the same way.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Sizes, expected_version, route_file, rss_mb, start_fleet, wait_all
from bench.report import Row, percentile
from bench.xds_floor import FloorServer, response_bytes, responses
from controlplane.cache import Snapshot
from controlplane.dsl import load_texts
from controlplane.translate import ENDPOINT_TYPE, ROUTE_TYPE, build_resources
from tests.e2e import ControlPlane, free_port, stopping, wait_for

SERVICES = 10


def snapshot(text: str) -> Snapshot:
    return Snapshot.from_resources(build_resources(load_texts([("routes.yaml", text)]), "edge"))


def texts(port: int) -> tuple[str, str]:
    return route_file(port, SERVICES, 10), route_file(port, SERVICES, 10, extra={0: 9})


def control_plane(sizes: Sizes, envoys: int) -> tuple[list[float], float]:
    """Edit -> all ACK samples (ms) with the control plane; and one Envoy's memory (MB)."""
    port = free_port()
    states = texts(port)
    versions = [expected_version(t, ENDPOINT_TYPE, "edge") for t in states]
    tmp = Path(tempfile.mkdtemp(prefix="bench-s1-"))
    cp = ControlPlane(states[0], tmp, ("--log-level", "info")).start()
    fleet = start_fleet(tmp, cp.xds_port, envoys)
    samples: list[float] = []
    with stopping(cp, *fleet):
        wait_all(cp, ROUTE_TYPE, expected_version(states[0], ROUTE_TYPE, "edge"), envoys, 180, "fleet in sync")
        for n in range(sizes.edits):
            time.sleep(random.uniform(0.05, 0.15))
            started = time.time()
            cp.edit(states[(n + 1) % 2])
            samples.append(
                (wait_all(cp, ENDPOINT_TYPE, versions[(n + 1) % 2], envoys, 20, f"edit {n}") - started) * 1000
            )
        memory = rss_mb(fleet[0].process.pid) if fleet[0].process else 0.0
    return samples, memory


def floor(sizes: Sizes, envoys: int) -> list[float]:
    """The same change pushed pre-serialized by the bare server: push -> all ACK (ms)."""
    port = free_port()
    states = [snapshot(t) for t in texts(port)]
    prepared = [response_bytes(s, ENDPOINT_TYPE, held=states[1 - n]) for n, s in enumerate(states)]
    versions = [s.get(ENDPOINT_TYPE).version for s in states]
    server = FloorServer(responses(states[0])).start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-s1-floor-"))
    fleet = start_fleet(tmp, server.port, envoys)
    samples: list[float] = []
    with stopping(server, *fleet):
        wait_for(lambda: server.all_acked(ROUTE_TYPE, states[0].get(ROUTE_TYPE).version, envoys), 180, "floor sync")
        for n in range(sizes.edits):
            time.sleep(random.uniform(0.05, 0.15))
            started = time.time()
            server.push(ENDPOINT_TYPE, prepared[(n + 1) % 2])
            version = versions[(n + 1) % 2]
            done = wait_for(lambda v=version: server.all_acked(ENDPOINT_TYPE, v, envoys), 20, "push", 0.005)  # type: ignore[misc]
            samples.append((done - started) * 1000)
    return samples


def run(sizes: Sizes) -> tuple[dict[str, Any], list[Row]]:
    envoys = sizes.envoys
    samples, memory = control_plane(sizes, envoys)
    floors = floor(sizes, envoys)
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    f50, f99 = percentile(floors, 50), percentile(floors, 99)
    rows = [
        Row(
            f"S1 endpoint change -> all {envoys} Envoys ACK, p50",
            f"{p50:.1f} ms",
            f"{f50:.1f} ms",
            "<= 20 ms",
            p50 <= 20,
        ),
        Row("S1 p99", f"{p99:.1f} ms", f"{f99:.1f} ms", "<= 100 ms", p99 <= 100),
        Row("S1 memory of one Envoy (RSS)", f"{memory:.0f} MB", "", "", None),
    ]
    result = {"envoys": envoys, "samples_ms": samples, "floor_samples_ms": floors, "envoy_rss_mb": memory}
    return result, rows
