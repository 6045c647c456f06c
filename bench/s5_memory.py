"""S5: control plane memory with many ADS clients (synthetic grpcio clients, tests/synthetic.py).

The control plane serves N clusters x 10 endpoints; its RSS is read from /proc before any client
and once every client of a fleet has ACKed CDS, EDS, LDS and RDS. Per connected client:
(RSS with the largest fleet - RSS with none) / clients. Floor: the serialized snapshot, held
once whatever the number of clients.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Sizes, route_file, rss_mb, serve_args
from bench.report import Row
from controlplane.cache import Snapshot
from controlplane.dsl import load_texts
from controlplane.translate import build_resources
from tests.e2e import ControlPlane, free_port, stopping, wait_for
from tests.synthetic import Fleet


def run(sizes: Sizes) -> tuple[dict[str, Any], list[Row]]:
    text = route_file(free_port(), sizes.clusters, 10)
    snapshot = Snapshot.from_resources(build_resources(load_texts([("routes.yaml", text)])))
    snapshot_mb = sum(len(r.serialized) for t in snapshot.types.values() for r in t.resources.values()) / 2**20
    tmp = Path(tempfile.mkdtemp(prefix="bench-s5-"))
    cp = ControlPlane(text, tmp, serve_args(tmp)).start()
    rss: dict[int, float] = {}
    with stopping(cp):
        pid = cp.process.pid if cp.process else 0
        time.sleep(sizes.settle)
        rss[0] = rss_mb(pid)
        for count in sizes.clients:
            fleet = Fleet(cp.xds_port, count).start()
            with stopping(fleet):
                wait_for(lambda f=fleet: len(f.synced) == f.count, 600, f"{count} clients synced", every=0.2)  # type: ignore[misc]
                time.sleep(sizes.settle)
                rss[count] = rss_mb(pid)
    largest, smallest = max(sizes.clients), min(sizes.clients)
    per_client = (rss[largest] - rss[0]) / largest
    rows = [
        Row(
            f"S5 control plane memory per connected client ({largest:,} clients, {sizes.clusters:,} clusters)",
            f"{per_client:.3f} MB",
            f"{snapshot_mb:.2f} MB snapshot, shared",
            "<= 0.25 MB",
            per_client <= 0.25,
        ),
        Row(
            f"S5 control plane RSS with {smallest} clients (none: {rss[0]:.0f} MB)",
            f"{rss[smallest]:.0f} MB",
            "",
            "<= 150 MB",
            rss[smallest] <= 150,
        ),
    ]
    return {"rss_mb": rss, "snapshot_mb": snapshot_mb}, rows
