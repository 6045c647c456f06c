"""S7: restart the control plane with unchanged inputs; no Envoy may re-apply anything.

Envoys (half SotW, half delta) hold N clusters x 10 endpoints; the control plane is stopped and
started again on the same port with the same route file, once without and once with a
checkpoint (--state-dir). Read from each Envoy's admin port before and after (once every Envoy
is connected and in sync again, plus a settle): listener and cluster added/modified/removed and
the CDS/LDS/RDS update_success counters. Any increase is a resource re-applied.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Sizes, envoy_stats, expected_version, route_file, start_fleet, wait_all
from bench.report import Row
from controlplane.translate import CLUSTER_TYPE, LISTENER_TYPE
from tests.e2e import ControlPlane, Envoy, free_port, stopping, wait_for

WATCHED = (
    "cluster_manager.cluster_added",
    "cluster_manager.cluster_modified",
    "cluster_manager.cluster_removed",
    "cluster_manager.cds.update_success",
    "listener_manager.listener_added",
    "listener_manager.listener_modified",
    "listener_manager.listener_removed",
    "listener_manager.lds.update_success",
    "http.public.rds.public.update_success",
    "cluster.s0.update_success",
)


def applied(envoy: Envoy) -> dict[str, int]:
    stats = {**envoy_stats(envoy, "cluster_manager."), **envoy_stats(envoy, "listener_manager.")}
    stats.update(envoy_stats(envoy, "http."))
    stats.update(envoy_stats(envoy, "cluster.s0.update_success"))
    return {name: stats.get(name, 0) for name in WATCHED}


def reconnected(cp: ControlPlane, count: int) -> bool:
    nodes = cp.nodes()
    return len(nodes) == count and all(len(n["types"]) == 4 for n in nodes)


def run(sizes: Sizes) -> tuple[dict[str, Any], list[Row]]:
    port = free_port()
    text = route_file(port, sizes.clusters, 10)
    versions = {t: expected_version(text, t, "edge") for t in (CLUSTER_TYPE, LISTENER_TYPE)}
    tmp = Path(tempfile.mkdtemp(prefix="bench-s7-"))
    state = tmp / "state"
    cp = ControlPlane(text, tmp, ("--log-level", "info", "--state-dir", str(state))).start()
    count = max(2, sizes.restart_envoys)
    fleet = start_fleet(tmp, cp.xds_port, count // 2, "sotw", "sotw") + start_fleet(
        tmp, cp.xds_port, count - count // 2, "delta", "delta"
    )
    results: dict[str, Any] = {"envoys": count, "clusters": sizes.clusters}
    with stopping(cp, *fleet):
        for t, v in versions.items():
            wait_all(cp, t, v, count, 120, f"{t} ACKed")
        for variant, args in (("no checkpoint", ("--log-level", "info")), ("checkpoint", cp.extra_args)):
            time.sleep(sizes.settle)
            before = [applied(e) for e in fleet]
            cp.stop()
            cp.extra_args = args
            started = time.monotonic()
            cp.start()
            # A delta stream that reconnects names what it holds (no version to ACK): wait until
            # every Envoy is back with all four types subscribed, then let anything sent arrive.
            wait_for(lambda: reconnected(cp, count), 60, f"all Envoys back ({variant})")
            resynced = time.monotonic() - started
            time.sleep(2 * sizes.settle)
            after = [applied(e) for e in fleet]
            diffs = {k: sum(a[k] - b[k] for a, b in zip(after, before, strict=True)) for k in WATCHED}
            results[variant] = {"reapplied": diffs, "resynced_s": resynced, "first_envoy_before": before[0]}
    rows = []
    for variant in ("no checkpoint", "checkpoint"):
        diffs = results[variant]["reapplied"]
        total = sum(diffs.values())
        detail = ", ".join(f"{k.split('.')[-1]} {v}" for k, v in diffs.items() if v) or "all counters unchanged"
        rows.append(
            Row(
                f"S7 restart, {variant}: resources re-applied by {count} Envoys ({sizes.clusters:,} clusters)",
                f"{total} ({detail})",
                "0",
                "0",
                total == 0,
            )
        )
    return results, rows
