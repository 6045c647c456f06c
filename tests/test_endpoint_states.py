"""Per-endpoint state from pushed samples: figures, health per Envoy, and the cause when the facts tell it."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from controlplane.model import Endpoint, HealthCheck, OutlierDetection, Service
from controlplane.status.page import render
from controlplane.telemetry import metrics as metrics_module
from controlplane.telemetry.endpoints import (
    DRAINING,
    EITHER,
    EJECTED,
    FAILING_HEALTH_CHECKS,
    UNKNOWN_CAUSE,
    cause,
    endpoint_states,
    envoy_address,
)
from controlplane.telemetry.metrics import Metrics, Readings
from controlplane.telemetry.traffic import EndpointSample, Sample, TrafficStore

A, B = Endpoint("10.0.0.1", 80), Endpoint("10.0.0.2", 80)
CHECK, DETECT = HealthCheck(kind="http", http_path="/healthz"), OutlierDetection()


def sample(ejected: int | None, passing: int | None) -> Sample:
    """gw-1's view: A healthy, B not."""
    endpoints = {"10.0.0.1:80": EndpointSample(healthy=True), "10.0.0.2:80": EndpointSample(healthy=False)}
    return Sample(at=100.0, ejected=ejected, passing_health_checks=passing, endpoints=endpoints)


@pytest.mark.parametrize(
    ("service", "endpoint", "given", "expected"),
    [
        pytest.param(Service("s", health_check=CHECK), B, sample(None, 1), FAILING_HEALTH_CHECKS, id="only-hc"),
        pytest.param(Service("s", outlier_detection=DETECT), B, sample(1, None), EJECTED, id="only-outlier"),
        pytest.param(
            Service("s", health_check=CHECK, outlier_detection=DETECT), B, sample(1, 2), EJECTED, id="all-pass-hc"
        ),
        pytest.param(
            Service("s", health_check=CHECK, outlier_detection=DETECT),
            B,
            sample(0, 1),
            FAILING_HEALTH_CHECKS,
            id="none-ejected",
        ),
        pytest.param(
            Service("s", health_check=CHECK, outlier_detection=DETECT), B, sample(1, 1), EITHER, id="both-happen"
        ),
        pytest.param(Service("s"), Endpoint("10.0.0.2", 80, draining=True), sample(0, None), DRAINING, id="draining"),
        pytest.param(Service("s"), B, sample(None, None), UNKNOWN_CAUSE, id="nothing-configured"),
    ],
)
def test_cause(service: Service, endpoint: Endpoint, given: Sample, expected: str) -> None:
    assert cause(service, endpoint, given) == expected


def test_ipv6_endpoints_are_named_as_envoy_tags_them() -> None:
    assert (envoy_address(Endpoint("::1", 8080)), envoy_address(A)) == ("[::1]:8080", "10.0.0.1:80")


def test_states_merge_envoys_and_keep_config_order() -> None:
    store = TrafficStore()
    service = Service("api", endpoints=(B, A), outlier_detection=DETECT)
    store.add("gw-1", "api", Sample(at=90.0, endpoints={"10.0.0.2:80": EndpointSample(requests=5, errors=5)}))
    store.add("gw-1", "api", sample(ejected=1, passing=None))
    store.add("gw-2", "api", Sample(at=95.0, endpoints={"10.0.0.2:80": EndpointSample(4, 1, healthy=True)}))
    b, a = endpoint_states(service, store, now=100.0, window=60.0)
    assert (b.address, b.figures.requests, b.figures.errors, b.health) == ("10.0.0.2:80", 9, 6, "unhealthy")
    assert (b.unhealthy_in, b.healthy_in, b.causes) == (("gw-1",), ("gw-2",), (EJECTED,))
    assert (a.health, a.figures.requests, a.causes) == ("healthy", 0, ())
    assert endpoint_states(service, TrafficStore(), now=100.0, window=60.0)[0].health == "unknown"


def endpoint_row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "address": "10.0.0.2:80",
        "priority": 0,
        "draining": False,
        "requests": 30,
        "errors": 30,
        "rate": 0.5,
        "error_rate": 1.0,
        "health": "unhealthy",
        "healthy_in": [],
        "unhealthy_in": ["gw-1"],
        "causes": ["<b>ejected</b>"],
    }
    return {**row, **overrides}


def test_the_page_shows_each_endpoint_under_its_service() -> None:
    service = {
        "name": "api",
        "lb": "round_robin",
        "endpoints": [endpoint_row(), endpoint_row(address="10.0.0.1:80", health="unknown", errors=0)],
        "traffic": {"rate": 1.0, "error_rate": 0.5, "p50_ms": 1.0, "p99_ms": 2.0},
        "series": [],
    }
    page = render({"problems": []}, [], [service], [], now=100.0)
    rows = page[page.index("data-endpoints-of=api") :]
    assert "<td>30</td><td class=bad>30 (100.0%)</td>" in rows
    assert "unhealthy in gw-1: &lt;b&gt;ejected&lt;/b&gt;" in rows
    assert "not reported yet" in rows[rows.index("data-endpoint=10.0.0.1:80") :]


def test_endpoint_gauges_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "MAX_ENDPOINT_SERIES", 2)
    metrics = Metrics(
        Readings(lambda: 1, lambda: 0, lambda: True, lambda: {"files": 0.0, "kubernetes": 0.0}, lambda: 0, lambda: 0)
    )
    metrics.endpoint_figures = lambda: {("api", f"10.0.0.{i}:80"): (1.0, 0.25, i % 2) for i in range(3)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }
    assert samples[("controlplane_endpoint_error_ratio", (("endpoint", "10.0.0.1:80"), ("service", "api")))] == 0.25
    assert samples[("controlplane_endpoint_unhealthy_envoys", (("endpoint", "10.0.0.1:80"), ("service", "api")))] == 1
    assert ("controlplane_endpoint_request_rate", (("endpoint", "10.0.0.2:80"), ("service", "api"))) not in samples
    assert samples[("controlplane_endpoint_series_omitted", ())] == 1
