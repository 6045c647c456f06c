"""Running totals pushed by Envoys become increments: baselines, resets, restarts, new series."""

from __future__ import annotations

import pytest

from controlplane.telemetry.counters import FORGET_AFTER_SECONDS, CounterDeltas, Series

RQ = ("cluster.upstream_rq_total", (("envoy.cluster_name", "api"),))
EP = ("cluster.endpoint.rq_total", (("envoy.endpoint_address", "127.0.0.1:1"),))


def push(counters: CounterDeltas, totals: dict[Series, int], uptime: float) -> list[int]:
    """One export of gw-1 with `totals`; the increments in the same order."""
    counters.begin("gw-1", uptime, now=uptime)
    result = [counters.delta("gw-1", series, total) for series, total in totals.items()]
    counters.end("gw-1")
    return result


@pytest.mark.parametrize(
    ("uptime", "expected"),
    [
        pytest.param(3.0, [40], id="envoy-just-started-counts-everything"),
        pytest.param(7200.0, [0], id="control-plane-restarted-under-a-running-envoy-baseline-only"),
    ],
)
def test_first_totals_of_an_envoy(uptime: float, expected: list[int]) -> None:
    assert push(CounterDeltas(), {RQ: 40}, uptime) == expected


def test_increments_resets_and_new_series() -> None:
    counters = CounterDeltas()
    assert push(counters, {RQ: 1000}, uptime=7200) == [0]
    assert push(counters, {RQ: 1030}, uptime=7205) == [30]
    # A counter Envoy did not send before (a new endpoint, or one first used) started at zero.
    assert push(counters, {RQ: 1030, EP: 12}, uptime=7210) == [0, 12]
    # A total that went back was reset (the host was re-created): all of it is new.
    assert push(counters, {RQ: 1031, EP: 5}, uptime=7215) == [1, 5]


def test_a_series_that_vanished_starts_again_from_zero() -> None:
    counters = CounterDeltas()
    push(counters, {RQ: 10, EP: 50}, uptime=5)
    push(counters, {RQ: 10}, uptime=10)  # the endpoint left
    assert push(counters, {RQ: 10, EP: 70}, uptime=15) == [0, 70]  # and came back with a new host


def test_a_restarted_envoy_counts_from_zero() -> None:
    counters = CounterDeltas()
    push(counters, {RQ: 5000}, uptime=7200)
    assert push(counters, {RQ: 20}, uptime=2) == [20]  # uptime went back: a new process


def test_idle_envoys_are_forgotten() -> None:
    counters = CounterDeltas()
    push(counters, {RQ: 10}, uptime=5)
    counters.forget_idle(now=5 + FORGET_AFTER_SECONDS + 1)
    assert counters.nodes == {}
