"""S1: one endpoint change -> ACKed by all of N real Envoys; floor: the same change pre-serialized.

Two ways an endpoint changes, each measured: a route file edit, and a registration through the
registry API (where endpoints of `discovery: registry` services come from; Kubernetes
EndpointSlices take the same path through the pipeline, see bench/kubernetes.py). The route file
has 10 services x 10 endpoints; each edit removes or restores one endpoint of s0 (so only EDS
changes); each registration adds one endpoint to service `r`. The clock starts before the file is
written and stops at the last Envoy's ACK as stamped by the control plane (same wall clock); the
file watch (inotify) is included. Changes come 150-250 ms apart: each is a change after a quiet
spell, which the pipeline sends at once (pipeline.Debounce; S2 measures changes in a stream).
Polling for the ACKs starts POLL_AFTER after the change: each poll of /api/nodes costs the control
plane ~1.4 ms of CPU with 50 Envoys, so polls during the push would load the system they measure
(the ACK times are the control plane's own stamps, so when the poll comes changes no sample).
Floor: the same N Envoys on a bare ADS server that pushes the same EDS response (the changed
ClusterLoadAssignment only, as the control plane sends it), serialized in advance, and stamps the
ACKs the same way.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from bench.common import (
    Sizes,
    acks,
    expected_version,
    listener_yaml,
    route_file,
    rss_mb,
    serve_args,
    services_yaml,
    start_fleet,
    wait_all,
)
from bench.report import Row, percentile
from bench.xds_floor import FloorServer, response_bytes, responses
from controlplane.cache import Snapshot
from controlplane.dsl import load_texts
from controlplane.registry.v1 import registry_pb2, registry_pb2_grpc
from controlplane.translate import ENDPOINT_TYPE, ROUTE_TYPE, build_resources
from tests.e2e import ControlPlane, free_port, stopping, wait_for

SERVICES = 10
POLL_AFTER = 0.03
"""Seconds after a change before the first poll for its ACKs."""


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
    cp = ControlPlane(states[0], tmp, serve_args(tmp)).start()
    fleet = start_fleet(tmp, cp.xds_port, envoys)
    samples: list[float] = []
    with stopping(cp, *fleet):
        wait_all(cp, ROUTE_TYPE, expected_version(states[0], ROUTE_TYPE, "edge"), envoys, 180, "fleet in sync")
        for n in range(sizes.edits):
            time.sleep(random.uniform(0.15, 0.25))  # one change at a time: past the gathering window
            started = time.time()
            cp.edit(states[(n + 1) % 2])
            time.sleep(POLL_AFTER)
            samples.append(
                (wait_all(cp, ENDPOINT_TYPE, versions[(n + 1) % 2], envoys, 20, f"edit {n}", 0.02) - started) * 1000
            )
        memory = rss_mb(fleet[0].process.pid) if fleet[0].process else 0.0
    return samples, memory


def registry_file(port: int) -> str:
    """The S1 route file plus service `r`, whose endpoints come from the registry API."""
    names = [f"s{i}" for i in range(SERVICES)] + ["r"]
    return "listeners:\n" + listener_yaml(port, names) + services_yaml(SERVICES, 10) + "  r: {discovery: registry}\n"


def settled_version(cp: ControlPlane, type_url: str, envoys: int, other_than: str) -> float | None:
    """When every Envoy ACKed one same version of `type_url` other than `other_than`, else None."""
    found = acks(cp, type_url)
    versions = {v for _, v, _ in found}
    if len(found) != envoys or len(versions) != 1 or other_than in versions:
        return None
    return max(at for _, _, at in found)


def registry(sizes: Sizes, envoys: int) -> list[float]:
    """Register -> all ACK samples (ms): each registration adds one endpoint to service `r`."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-s1-registry-"))
    cp = ControlPlane(registry_file(free_port()), tmp, serve_args(tmp)).start()
    fleet = start_fleet(tmp, cp.xds_port, envoys)
    stub = registry_pb2_grpc.RegistryStub(grpc.insecure_channel(f"127.0.0.1:{cp.xds_port}"))
    samples: list[float] = []
    with stopping(cp, *fleet):
        wait_for(lambda: settled_version(cp, ENDPOINT_TYPE, envoys, ""), 180, "fleet in sync")
        for n in range(sizes.edits):
            before = acks(cp, ENDPOINT_TYPE)[0][1]  # read before the pause: no poll just before the change
            time.sleep(random.uniform(0.15, 0.25))  # one change at a time: past the gathering window
            request = registry_pb2.RegisterRequest(service="r", address="127.0.200.1", port=30_000 + n, ttl_ms=300_000)
            started = time.time()
            stub.Register(request, timeout=10)
            time.sleep(POLL_AFTER)
            done = wait_for(
                lambda v=before: settled_version(cp, ENDPOINT_TYPE, envoys, v),  # type: ignore[misc]
                20,
                f"registration {n}",
                0.02,
            )
            samples.append((done - started) * 1000)
    return samples


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
            time.sleep(random.uniform(0.15, 0.25))
            started = time.time()
            server.push(ENDPOINT_TYPE, prepared[(n + 1) % 2])
            version = versions[(n + 1) % 2]
            done = wait_for(lambda v=version: server.all_acked(ENDPOINT_TYPE, v, envoys), 20, "push", 0.005)  # type: ignore[misc]
            samples.append((done - started) * 1000)
    return samples


def run(sizes: Sizes) -> tuple[dict[str, Any], list[Row]]:
    envoys = sizes.envoys
    samples, memory = control_plane(sizes, envoys)
    registered = registry(sizes, envoys)
    floors = floor(sizes, envoys)
    f50, f99 = percentile(floors, 50), percentile(floors, 99)
    rows: list[Row] = []
    for how, found in (("file edit", samples), ("registry API", registered)):
        p50, p99 = percentile(found, 50), percentile(found, 99)
        rows += [
            Row(
                f"S1 endpoint change ({how}) -> all {envoys} Envoys ACK, p50",
                f"{p50:.1f} ms",
                f"{f50:.1f} ms",
                "<= 20 ms",
                p50 <= 20,
            ),
            Row(f"S1 ({how}) p99", f"{p99:.1f} ms", f"{f99:.1f} ms", "<= 100 ms", p99 <= 100),
        ]
    rows.append(Row("S1 memory of one Envoy (RSS)", f"{memory:.0f} MB", "", "", None))
    result = {
        "envoys": envoys,
        "samples_ms": samples,
        "registry_samples_ms": registered,
        "floor_samples_ms": floors,
        "envoy_rss_mb": memory,
    }
    return result, rows
