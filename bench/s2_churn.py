"""S2: sustained churn, R endpoint changes per second for T seconds, with N real Envoys.

Each change moves one endpoint of one of 10 services to a new port, so every state of the
route file is distinct and has its own EDS version (computed afterwards with the translator).
/api/nodes is polled every 20 ms and every (version, ACK time) seen is kept. A change is
delivered when every Envoy has ACKed its state or a later one; its latency runs from the write.
Final state exact: every Envoy ACKs the last state's version. Pushes: EDS versions each Envoy
ACKed, against the number of changes.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import Sizes, acks, endpoint, expected_version, listener_yaml, serve_args, start_fleet, wait_all
from bench.report import Row, percentile
from controlplane.translate import ENDPOINT_TYPE, ROUTE_TYPE
from tests.e2e import ControlPlane, free_port, stopping

SERVICES = 10


def state(port: int, moved: dict[int, int]) -> str:
    """The route file with endpoint 0 of service k on port `moved[k]` (when moved)."""
    lines = ["services:"]
    for k in range(SERVICES):
        addresses = [endpoint(k, e) for e in range(10)]
        if k in moved:
            addresses[0] = f"127.0.{1 + k // 250}.{1 + k % 250}:{moved[k]}"
        lines.append(f"  s{k}: {{endpoints: [{', '.join(repr(a) for a in addresses)}]}}")
    return "listeners:\n" + listener_yaml(port, [f"s{k}" for k in range(SERVICES)]) + "\n".join(lines) + "\n"


class Watcher:
    """Polls EDS ACKs every 20 ms in a thread; keeps the first time each node ACKed each version."""

    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp
        self.seen: dict[tuple[str, str], float] = {}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop_event.wait(0.02):
            try:
                for node, version, at in acks(self.cp, ENDPOINT_TYPE):
                    self.seen.setdefault((node, version), at)
            except OSError:
                pass

    def __enter__(self) -> Watcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join(timeout=5)


def run(sizes: Sizes) -> tuple[dict[str, Any], list[Row]]:
    port = free_port()
    moved: dict[int, int] = {}
    texts = [state(port, moved)]
    tmp = Path(tempfile.mkdtemp(prefix="bench-s2-"))
    cp = ControlPlane(texts[0], tmp, serve_args(tmp)).start()
    envoys = sizes.envoys
    fleet = start_fleet(tmp, cp.xds_port, envoys)
    writes: list[float] = []
    changes = int(sizes.churn_rate * sizes.churn_seconds)
    with stopping(cp, *fleet):
        wait_all(cp, ROUTE_TYPE, expected_version(texts[0], ROUTE_TYPE, "edge"), envoys, 180, "fleet in sync")
        with Watcher(cp) as watcher:
            started = time.monotonic()
            for i in range(changes):
                time.sleep(max(0.0, started + i / sizes.churn_rate - time.monotonic()))
                moved[i % SERVICES] = 30_000 + i
                texts.append(state(port, moved))
                writes.append(time.time())
                cp.edit(texts[-1])
            last = expected_version(texts[-1], ENDPOINT_TYPE, "edge")
            final = wait_all(cp, ENDPOINT_TYPE, last, envoys, 30, "final state")
            time.sleep(0.1)
        seen = dict(watcher.seen)
    index = {expected_version(t, ENDPOINT_TYPE, "edge"): i for i, t in enumerate(texts)}
    nodes = sorted({node for node, _ in seen})
    latencies = []
    for i, written in enumerate(writes, start=1):
        per_node = [
            min((at for (n, v), at in seen.items() if n == node and index.get(v, -1) >= i), default=final)
            for node in nodes
        ]
        latencies.append((max(per_node) - written) * 1000)
    pushes = max(sum(1 for (n, v) in seen if n == node and index.get(v, 0) > 0) for node in nodes)
    p99 = percentile(latencies, 99)
    rows = [
        Row(
            f"S2 churn {sizes.churn_rate:.0f} changes/s for {sizes.churn_seconds:.0f} s, {envoys} Envoys: "
            "change -> all ACK p99",
            f"{p99:.0f} ms (p50 {percentile(latencies, 50):.0f} ms)",
            "",
            "<= 250 ms",
            p99 <= 250,
        ),
        Row("S2 final state exact (every Envoy ACKed the last version)", "yes", "", "exact", True),
        Row("S2 EDS pushes per Envoy / changes", f"{pushes} / {changes}", "", "bounded", pushes <= changes),
    ]
    result = {"envoys": envoys, "changes": changes, "latencies_ms": latencies, "pushes_per_envoy": pushes}
    return result, rows
