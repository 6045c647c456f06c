"""S6: bytes on the wire when one cluster's endpoints change among N, delta against SotW.

Two node groups: `edge` Envoys route to the N services s0..; `other` Envoys to 10 other
services. One endpoint of s0 is removed. Bytes are what each real Envoy's xDS connection
received (`cluster.xds_cluster.upstream_cx_rx_bytes_total`: gRPC and HTTP/2 framing included)
from just before the edit until a second after every `edge` Envoy ACKed the new endpoints
(keepalive pings are set apart so their acknowledgements do not count).
Floor: the serialized size of the one changed ClusterLoadAssignment, which any protocol must
carry. SotW may carry only it too (an EDS response need not repeat unchanged assignments);
beside the SotW figure, the size of every assignment, which it carried before that.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Sizes, acks, expected_version, listener_yaml, serve_args, services_yaml, start_fleet
from bench.report import Row
from controlplane.cache import Snapshot
from controlplane.dsl import load_texts
from controlplane.translate import ENDPOINT_TYPE, build_resources
from tests.e2e import ControlPlane, Envoy, free_port, stopping, wait_for

RX = "cluster.xds_cluster.upstream_cx_rx_bytes_total"
QUIET = ("--keepalive-interval", "300s", "--keepalive-timeout", "10s")
"""No keepalive pings during the measurement: their 17-byte acknowledgements are not xDS."""


def config(port: int, other_port: int, clusters: int, extra: dict[int, int] | None = None) -> str:
    edge = [f"s{i}" for i in range(clusters)]
    other = [f"o{i}" for i in range(10)]
    others = services_yaml(10, 10, prefix="o", offset=clusters).removeprefix("services:\n")
    return (
        "listeners:\n"
        + listener_yaml(port, edge, "public", "edge")
        + listener_yaml(other_port, other, "other", "other")
        + services_yaml(clusters, 10, extra=extra)
        + others
    )


def eds_sizes(text: str) -> tuple[int, int]:
    """(bytes of s0's assignment, bytes of every assignment) for the edge group."""
    snapshot = Snapshot.from_resources(build_resources(load_texts([("routes.yaml", text)]), "edge"))
    resources = snapshot.get(ENDPOINT_TYPE).resources
    return len(resources["s0"].serialized), sum(len(r.serialized) for r in resources.values())


def run(sizes: Sizes) -> tuple[dict[str, Any], list[Row]]:
    port, other_port = free_port(), free_port()
    before_text, after_text = config(port, other_port, sizes.clusters), config(port, other_port, sizes.clusters, {0: 9})
    tmp = Path(tempfile.mkdtemp(prefix="bench-s6-"))
    cp = ControlPlane(before_text, tmp, serve_args(tmp)).start()
    half = max(1, sizes.bytes_envoys // 2)
    fleets: dict[tuple[str, str], list[Envoy]] = {
        (api, group): start_fleet(tmp, cp.xds_port, half, api, f"{api}-{group}", group, QUIET)
        for api in ("sotw", "delta")
        for group in ("edge", "other")
    }
    everyone = [e for fleet in fleets.values() for e in fleet]
    edge_count = 2 * half
    with stopping(cp, *everyone):
        eds = expected_version(before_text, ENDPOINT_TYPE, "edge")
        _wait_edge(cp, eds, edge_count, len(everyone))
        time.sleep(sizes.settle)
        before = {e.node_id: e.stat(RX) for e in everyone}
        cp.edit(after_text)
        _wait_edge(cp, expected_version(after_text, ENDPOINT_TYPE, "edge"), edge_count, len(everyone))
        time.sleep(sizes.settle)
        received = {key: [e.stat(RX) - before[e.node_id] for e in fleet] for key, fleet in fleets.items()}
    one, full = eds_sizes(after_text)
    worst = {key: max(values) for key, values in received.items()}
    rows = [
        Row(
            f"S6 delta: bytes per subscribed Envoy, 1 of {sizes.clusters:,} clusters changed",
            f"{worst['delta', 'edge']:,} B",
            f"{one} B (the changed assignment)",
            "<= 2 KB",
            worst["delta", "edge"] <= 2048,
        ),
        Row(
            "S6 SotW: bytes per subscribed Envoy, same change",
            f"{worst['sotw', 'edge']:,} B",
            f"{one} B (every assignment: {full:,} B)",
            "<= 2 KB",
            worst["sotw", "edge"] <= 2048,
        ),
        Row(
            "S6 Envoys not subscribed to the cluster (delta, SotW): bytes received",
            f"{worst['delta', 'other']} B, {worst['sotw', 'other']} B",
            "0 B",
            "nothing",
            worst["delta", "other"] == 0 and worst["sotw", "other"] == 0,
        ),
    ]
    result = {
        "clusters": sizes.clusters,
        "received": {f"{api}/{group}": values for (api, group), values in received.items()},
        "changed_assignment_bytes": one,
        "all_assignments_bytes": full,
    }
    return result, rows


def _wait_edge(cp: ControlPlane, version: str, edge_count: int, total: int) -> None:
    """Until every edge Envoy ACKed EDS `version` and every Envoy is connected with EDS ACKed."""

    def done() -> bool:
        found = acks(cp, ENDPOINT_TYPE)
        edge = [v for node, v, _ in found if "-edge-" in node]
        return len(found) == total and len(edge) == edge_count and all(v == version for v in edge)

    wait_for(done, 120, "edge Envoys ACK the endpoints", every=0.02)
