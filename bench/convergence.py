"""Edit -> ACK: time from writing the route file until every one of N real Envoys has ACKed it.

Each edit moves the `/` route between two services (an RDS change). The version each Envoy must
ACK is computed here with the same translator (versions are content hashes), and convergence is
read from the control plane's /api/nodes, which stamps each ACK with the time it arrived (so
polling gently does not disturb what it measures). Loopback only; every loop bounded.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from bench.report import latencies, write
from controlplane.cache import Snapshot
from controlplane.dsl import load_texts
from controlplane.translate import ROUTE_TYPE, build_resources
from tests.e2e import ControlPlane, Envoy, Upstream, free_port, listener, request, stopping, wait_for


def routes(port: int, target: str, one: Upstream, two: Upstream) -> str:
    return listener(port, f"      - match: {{prefix: /}}\n        to: {target}\n") + (
        f"services:\n  one: {{endpoints: ['{one.address}']}}\n  two: {{endpoints: ['{two.address}']}}\n"
    )


def expected_route_version(text: str) -> str:
    return Snapshot.from_resources(build_resources(load_texts([("r.yaml", text)]), "")).get(ROUTE_TYPE).version


def acked_at(cp: ControlPlane, version: str, count: int) -> float | None:
    """When the last of `count` Envoys ACKed `version` of the routes (control plane clock), or None."""
    nodes = cp.get("/api/nodes")
    acked = [(t["acked_version"], t["acked_at"]) for n in nodes for t in n["types"] if t["type_url"] == ROUTE_TYPE]
    if len(acked) != count or any(v != version for v, _ in acked):
        return None
    return max(at for _, at in acked)


def run(envoys: int, edits: int, api: str, poll_interval: str) -> dict[str, object]:
    one, two = Upstream("one").start(), Upstream("two").start()
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="bench-convergence-"))
    cp = ControlPlane(
        routes(port, "one", one, two), tmp, extra_args=("--poll-interval", poll_interval, "--log-level", "info")
    ).start()
    fleet = [Envoy(tmp, cp.xds_port, f"envoy-{i}", api).start() for i in range(envoys)]
    samples: list[float] = []
    with stopping(one, two, cp, *fleet):
        wait_for(lambda: acked_at(cp, expected_route_version(routes(port, "one", one, two)), envoys), 60)
        for n in range(edits):
            text = routes(port, "two" if n % 2 == 0 else "one", one, two)
            version = expected_route_version(text)
            time.sleep(random.uniform(0.05, 0.15))
            start = time.time()  # the control plane stamps ACKs with the same wall clock
            cp.edit(text)
            done = wait_for(lambda v=version: acked_at(cp, v, envoys), 10, f"edit {n} acked", every=0.02)  # type: ignore[misc]
            samples.append((done - start) * 1000)
        assert request(port)[1] in ("one", "two")
    return {
        "envoys": envoys,
        "edits": edits,
        "api": api,
        "poll_interval": poll_interval,
        **latencies(samples),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--envoys", type=int, default=10)
    parser.add_argument("--edits", type=int, default=50)
    parser.add_argument("--poll-interval", default="20ms")
    args = parser.parse_args(argv)
    rows: list[tuple[str, str]] = []
    results = {}
    for api in ("sotw", "delta"):
        result = run(args.envoys, args.edits, api, args.poll_interval)
        results[api] = result
        rows.append((f"{api}: edit -> all {args.envoys} Envoys ACK, p50", f"{result['p50_ms']:.1f} ms"))
        rows.append((f"{api}: p99", f"{result['p99_ms']:.1f} ms"))
        rows.append((f"{api}: max", f"{result['max_ms']:.1f} ms"))
    path = write("convergence", {"results": results}, rows)
    sys.stdout.write(path.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
