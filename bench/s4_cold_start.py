"""S4: cold start, N clusters x 10 endpoints to E Envoys started at once; floor: pre-serialized.

The clock starts before the Envoy processes are spawned and stops at the last Envoy's ACK of the
routes (RDS comes last: CDS, EDS, LDS, RDS), stamped by the server. The floor starts the same
Envoys against a bare ADS server holding the same responses serialized in advance, so what
Envoy itself needs to start and apply the config is in both. Median of a few rounds each.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Sizes, expected_version, route_file, serve_args, start_fleet, wait_all
from bench.report import Row
from bench.xds_floor import FloorServer, responses
from controlplane.cache import Snapshot
from controlplane.dsl import load_texts
from controlplane.translate import ROUTE_TYPE, build_resources
from tests.e2e import ControlPlane, free_port, stopping, wait_for


def with_control_plane(text: str, envoys: int) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="bench-s4-"))
    cp = ControlPlane(text, tmp, serve_args(tmp)).start()
    version = expected_version(text, ROUTE_TYPE, "edge")
    with stopping(cp):
        started = time.time()
        fleet = start_fleet(tmp, cp.xds_port, envoys)
        with stopping(*fleet):
            return wait_all(cp, ROUTE_TYPE, version, envoys, 300, "cold start") - started


def with_floor(text: str, envoys: int) -> float:
    snapshot = Snapshot.from_resources(build_resources(load_texts([("routes.yaml", text)]), "edge"))
    version = snapshot.get(ROUTE_TYPE).version
    server = FloorServer(responses(snapshot)).start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-s4-floor-"))
    with stopping(server):
        started = time.time()
        fleet = start_fleet(tmp, server.port, envoys)
        with stopping(*fleet):
            done: float = wait_for(lambda: server.all_acked(ROUTE_TYPE, version, envoys), 300, "floor cold start")
            return done - started


def run(sizes: Sizes) -> tuple[dict[str, Any], list[Row]]:
    text = route_file(free_port(), sizes.clusters, 10)
    rounds = 1 if sizes.smoke else 3
    cp_s, floor_s = [], []
    for _ in range(rounds):
        floor_s.append(with_floor(text, sizes.cold_envoys))
        cp_s.append(with_control_plane(text, sizes.cold_envoys))
    value, base = statistics.median(cp_s), statistics.median(floor_s)
    ratio = value / base
    rows = [
        Row(
            f"S4 cold start: {sizes.clusters:,} clusters x 10 endpoints, all {sizes.cold_envoys} Envoys ACKed",
            f"{value * 1000:.0f} ms ({ratio:.2f}x)",
            f"{base * 1000:.0f} ms",
            "<= 2x floor",
            ratio <= 2,
        )
    ]
    return {"control_plane_s": cp_s, "floor_s": floor_s, "ratio": ratio}, rows
