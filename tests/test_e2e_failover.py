"""Losing most endpoints of a service, as docs/failover.md describes it, with real Envoy under load.

Every request's outcome is recorded; each claim is checked over a window of about one second
of steady traffic taken after Envoy's health checks have marked the change.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e import Envoy, Gateway, Load, Upstream, gateway, listener, stopping, wait_for

pytestmark = pytest.mark.envoy

RATE = 200
OUTLIER = "cluster.app.outlier_detection."
WINDOW = 1.0
SETTLE = 0.3
"""Health changes reach the load balancer within the cluster's update_merge_window (100ms)."""


def five_endpoints(ups: list[Upstream], port: int, panic_threshold: int | None = None) -> str:
    """One service over `ups`, health-checked every 100ms, no retries (every failure shows)."""
    endpoints = ", ".join(f"'{u.address}'" for u in ups)
    panic = f"    panic_threshold: {panic_threshold}\n" if panic_threshold is not None else ""
    return listener(port, "      - match: {prefix: /}\n        to: app\n") + (
        f"services:\n  app:\n    endpoints: [{endpoints}]\n{panic}"
        "    health_check: {http: /healthz, interval: 100ms, timeout: 100ms, unhealthy: 1, healthy: 1,"
        " no_traffic_interval: 100ms}\n"
    )


def window(load: Load, envoy: Envoy) -> tuple[list[tuple[int, str]], int]:
    """The outcomes of the next WINDOW seconds of load, and how many requests Envoy balanced in panic."""
    start, panicked = len(load.results), envoy.stat("cluster.app.lb_healthy_panic")
    time.sleep(WINDOW)
    return load.results[start:], envoy.stat("cluster.app.lb_healthy_panic") - panicked


def kill(gw: Gateway, ups: list[Upstream], healthy_left: int) -> None:
    for upstream in ups:
        upstream.stop()
    wait_for(lambda: gw.envoy.stat("cluster.app.membership_healthy") == healthy_left, what="health checks caught up")
    time.sleep(SETTLE)


def test_losing_most_endpoints_panics_below_the_threshold_and_not_above(tmp_path: Path) -> None:
    ups = [Upstream(f"u{i}").start() for i in range(5)]
    with stopping(*ups), gateway(tmp_path, "sotw", lambda p: five_endpoints(ups, p)) as gw:
        wait_for(lambda: gw.envoy.stat("cluster.app.membership_healthy") == 5, what="all healthy")
        with Load(gw.port, rate=RATE) as load:
            kill(gw, ups[:2], healthy_left=3)  # 60% healthy: above Envoy's default threshold of 50%
            above, above_panic = window(load, gw.envoy)
            kill(gw, ups[2:3], healthy_left=2)  # 40% healthy: below it
            below, below_panic = window(load, gw.envoy)
            edited = time.monotonic()
            gw.control_plane.edit(five_endpoints(ups, gw.port, panic_threshold=0))  # panic off
            wait_for(lambda: {gw.get()[0] for _ in range(20)} == {200}, what="panic_threshold: 0 applied")
            applied_s = time.monotonic() - edited
            kill(gw, ups[3:4], healthy_left=1)  # 20% healthy: one endpoint left, no panic
            off, off_panic = window(load, gw.envoy)
        print(
            f"{len(load.results)} requests, {failed(load.results)} failed:"
            f" above {len(above)} (failed {failed(above)}), below {len(below)}"
            f" (failed {failed(below)}, in panic {below_panic}), panic off {len(off)} (failed {failed(off)});"
            f" panic_threshold: 0 applied {applied_s:.2f}s after the edit"
        )
        assert (above_panic, failed(above), upstreams(above)) == (0, 0, {"u2", "u3", "u4"})
        # In panic Envoy balances over all five again: round robin sends 3 in 5 to dead endpoints.
        assert below_panic >= len(below) * 0.9
        assert 0.45 <= failed(below) / len(below) <= 0.75, Counter(below)
        assert upstreams(below) == {"u3", "u4"}
        assert (off_panic, failed(off), upstreams(off)) == (0, 0, {"u4"})
        assert min(len(above), len(below), len(off)) >= RATE * WINDOW * 0.7  # the load kept its rate


def four_endpoints(ups: list[Upstream], port: int, max_ejection_percent: int | None = None) -> str:
    """One service over `ups` with outlier detection after 2 consecutive 5xx, no retries."""
    endpoints = ", ".join(f"'{u.address}'" for u in ups)
    cap = f", max_ejection_percent: {max_ejection_percent}" if max_ejection_percent is not None else ""
    return listener(port, "      - match: {prefix: /}\n        to: app\n") + (
        f"services:\n  app:\n    endpoints: [{endpoints}]\n"
        f"    outlier_detection: {{consecutive_5xx: 2, interval: 100ms, base_ejection_time: 30s{cap}}}\n"
    )


def test_the_ejection_cap_counts_the_ejection_it_would_make(tmp_path: Path) -> None:
    """Envoy ejects only while (ejected + 1) / endpoints stays within max_ejection_percent."""
    good = [Upstream("good-1").start(), Upstream("good-2").start()]
    bad = [Upstream("bad-1", failing=True).start(), Upstream("bad-2", failing=True).start()]
    ups = good + bad
    with (
        stopping(*ups),
        gateway(tmp_path, "sotw", lambda p: four_endpoints(ups, p), ready_status=lambda s: s > 0) as gw,
    ):
        with Load(gw.port, rate=RATE) as load:
            wait_for(lambda: gw.envoy.stat(OUTLIER + "ejections_overflow") > 0, what="an ejection refused")
            default = ejection_window(gw, load)  # 10%: 1 of 4 would be 25%, so none
            gw.control_plane.edit(four_endpoints(ups, gw.port, max_ejection_percent=25))
            wait_for(lambda: gw.envoy.stat(OUTLIER + "ejections_active") == 1, what="one ejection")
            one = ejection_window(gw, load)  # 25%: one, and a second would make 50%
            gw.control_plane.edit(four_endpoints(ups, gw.port, max_ejection_percent=50))
            wait_for(lambda: gw.envoy.stat(OUTLIER + "ejections_active") == 2, what="two ejections")
            two = ejection_window(gw, load)
        print(
            f"{len(load.results)} requests, {failed(load.results)} failed;"
            f" ejected / failed / sent per window: 10% {default[:3]},"
            f" 25% {one[:3]}, 50% {two[:3]}"
        )
        # (ejected, failed, sent, in panic, upstreams answering 200)
        assert (default[0], default[3], default[4]) == (0, 0, {"good-1", "good-2"})
        assert 0.35 <= default[1] / default[2] <= 0.65  # two bad of four stay in rotation
        assert (one[0], one[3], one[4]) == (1, 0, {"good-1", "good-2"})
        assert 0.2 <= one[1] / one[2] <= 0.45  # one bad of the three left
        # Two of four ejected leaves 50% healthy: not below the panic threshold, so no panic.
        assert (two[0], two[1], two[3], two[4]) == (2, 0, 0, {"good-1", "good-2"})


def ejection_window(gw: Gateway, load: Load) -> tuple[int, int, int, int, set[str]]:
    """(endpoints ejected at its end, failed, sent, balanced in panic, upstreams answering) over a window."""
    time.sleep(SETTLE)
    results, panicked = window(load, gw.envoy)
    return gw.envoy.stat(OUTLIER + "ejections_active"), failed(results), len(results), panicked, upstreams(results)


def failed(results: list[tuple[int, str]]) -> int:
    return sum(status != 200 for status, _ in results)


def upstreams(results: list[tuple[int, str]]) -> set[str]:
    return {upstream for status, upstream in results if status == 200}
