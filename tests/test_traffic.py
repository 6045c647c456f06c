"""Traffic figures from pushed Envoy stats: parsing OTLP exports, merging, percentiles, windows."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

from controlplane.history import History, Published
from controlplane.model import AlertRules
from controlplane.telemetry.alerts import FORGET_AFTER, AlertEngine, Facts, NodeFacts
from controlplane.telemetry.counters import CounterDeltas
from controlplane.telemetry.metrics import Metrics, Readings
from controlplane.telemetry.otel import samples_of
from controlplane.telemetry.traffic import EndpointFigures, EndpointSample, Sample, TrafficStore


def export(
    cluster: str, requests: int, errors: int, buckets: list[int]
) -> metrics_service_pb2.ExportMetricsServiceRequest:
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    scope = request.resource_metrics.add().instrumentation_library_metrics.add()
    tag = common_pb2.KeyValue(key="envoy.cluster_name", value=common_pb2.AnyValue(string_value=cluster))
    total = scope.metrics.add(name="cluster.upstream_rq_total")
    total.sum.data_points.add(as_int=requests).attributes.append(tag)
    for code_class, count in (("2", requests - errors), ("5", errors)):
        point = scope.metrics.add(name="cluster.upstream_rq_xx").sum.data_points.add(as_int=count)
        point.attributes.extend(
            [
                tag,
                common_pb2.KeyValue(
                    key="envoy.response_code_class", value=common_pb2.AnyValue(string_value=code_class)
                ),
            ]
        )
    histogram = scope.metrics.add(name="cluster.upstream_rq_time").histogram.data_points.add(
        count=sum(buckets), explicit_bounds=[1, 5, 10, 50], bucket_counts=buckets
    )
    histogram.attributes.append(tag)
    return request


def test_an_export_becomes_one_sample_per_cluster() -> None:
    samples = samples_of(export("api", requests=20, errors=3, buckets=[5, 10, 4, 1, 0]), now=100.0)
    assert samples == {"api": Sample(at=100.0, requests=20, errors=3, bounds=(1, 5, 10, 50), buckets=(5, 10, 4, 1, 0))}


def test_figures_merge_envoys_and_respect_the_window() -> None:
    store = TrafficStore()
    store.add("gw-1", "api", Sample(at=100.0, requests=80, errors=8, bounds=(1, 5, 10), buckets=(40, 39, 1, 0)))
    store.add("gw-2", "api", Sample(at=100.0, requests=20, errors=2, bounds=(1, 5, 10), buckets=(10, 9, 0, 1)))
    store.add("gw-1", "api", Sample(at=10.0, requests=999, errors=999))  # outside the window
    figures = store.figures("api", now=110.0, window=60.0)
    assert (figures.requests, figures.errors, figures.error_rate) == (100, 10, 0.1)
    assert figures.rate == pytest.approx(100 / 60)
    assert (figures.p50_ms, figures.p99_ms) == (1, 10)  # half of the 100 took at most 1ms


def test_no_traffic_has_no_latency() -> None:
    figures = TrafficStore().figures("idle", now=0.0, window=60.0)
    assert (figures.requests, figures.p50_ms, figures.p99_ms, figures.error_rate) == (0, None, None, 0.0)


def test_series_has_one_point_per_step() -> None:
    store = TrafficStore()
    store.add("gw-1", "api", Sample(at=95.0, requests=10))
    points = store.series("api", now=100.0, window=30.0, step=10.0)
    assert [p["rate"] for p in points] == [0.0, 0.0, 1.0]


def test_a_firing_alert_keeps_its_start_and_refreshes_its_summary() -> None:

    store, engine = TrafficStore(), AlertEngine()
    rules = AlertRules(error_rate_percent=10.0)
    store.add("gw-1", "api", Sample(at=100.0, requests=10, errors=10))
    fired, _ = engine.evaluate(Facts(100.0, (), {}, store, ("api",)), rules)
    assert [a.summary for a in fired] == ["100% of 10 requests failed (5xx)"]
    store.add("gw-1", "api", Sample(at=101.0, requests=30, errors=10))
    fired, resolved = engine.evaluate(Facts(101.0, (), {}, store, ("api",)), rules)
    (alert,) = engine.active.values()
    assert (fired, resolved, alert.since, alert.summary) == ([], [], 100.0, "50% of 40 requests failed (5xx)")
    store.add("gw-1", "api", Sample(at=102.0, requests=400, errors=0))
    _, resolved = engine.evaluate(Facts(102.0, (), {}, store, ("api",)), rules)
    assert [a.name for a in resolved] == ["ServiceErrorRate"]


def cumulative_export(uptime: int, endpoints: dict[str, tuple[int, int, int]], ejected: int) -> object:
    """An export as the generated bootstrap makes Envoy send it: running totals, per-endpoint series.

    `endpoints`: address -> (requests total, 5xx total, healthy 0/1).
    """
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    scope = request.resource_metrics.add().instrumentation_library_metrics.add()
    scope.metrics.add(name="server.uptime").gauge.data_points.add(as_int=uptime)

    def tags(**values: str) -> list[common_pb2.KeyValue]:
        return [common_pb2.KeyValue(key=k, value=common_pb2.AnyValue(string_value=v)) for k, v in values.items()]

    cluster = {"envoy.cluster_name": "api"}
    for name, index in (("cluster.endpoint.rq_total", 0), ("cluster.endpoint.rq_error", 1)):
        metric = scope.metrics.add(name=name)
        metric.sum.aggregation_temporality = 2  # cumulative
        for address, values in endpoints.items():
            point = metric.sum.data_points.add(as_int=values[index])
            point.attributes.extend(tags(**cluster, **{"envoy.endpoint_address": address}))
    healthy = scope.metrics.add(name="cluster.endpoint.healthy")
    for address, values in endpoints.items():
        healthy.gauge.data_points.add(as_int=values[2]).attributes.extend(
            tags(**cluster, **{"envoy.endpoint_address": address})
        )
    gauge = scope.metrics.add(name="cluster.outlier_detection.ejections_active").gauge.data_points.add(as_int=ejected)
    gauge.attributes.extend(tags(**cluster))
    return request


def test_per_endpoint_totals_become_requests_errors_and_health() -> None:
    counters, store = CounterDeltas(), TrafficStore()
    first = {"127.0.0.1:1": (10, 0, 1), "127.0.0.1:2": (10, 0, 1), "127.0.0.1:3": (10, 10, 0)}
    samples = samples_of(cumulative_export(2, first, ejected=1), 100.0, "gw-1", counters)
    assert samples["api"].ejected == 1
    assert samples["api"].endpoints == {
        "127.0.0.1:1": EndpointSample(requests=10, errors=0, healthy=True),
        "127.0.0.1:2": EndpointSample(requests=10, errors=0, healthy=True),
        "127.0.0.1:3": EndpointSample(requests=10, errors=10, healthy=False),
    }
    store.add("gw-1", "api", samples["api"])
    second = {"127.0.0.1:1": (25, 0, 1), "127.0.0.1:2": (24, 1, 1), "127.0.0.1:3": (10, 10, 0)}
    later = samples_of(cumulative_export(7, second, ejected=1), 105.0, "gw-1", counters)["api"]
    assert {a: (e.requests, e.errors) for a, e in later.endpoints.items()} == {
        "127.0.0.1:1": (15, 0),
        "127.0.0.1:2": (14, 1),
        "127.0.0.1:3": (0, 0),  # ejected: no new traffic
    }
    store.add("gw-1", "api", later)
    figures = store.endpoint_figures("api", now=110.0, window=60.0)
    assert figures["127.0.0.1:1"] == EndpointFigures(requests=25, errors=0, rate=25 / 60, error_rate=0.0)
    assert (figures["127.0.0.1:3"].requests, figures["127.0.0.1:3"].error_rate) == (10, 1.0)
    assert store.endpoint_figures("api", now=110.0, window=7.0)["127.0.0.1:3"].requests == 0
    assert store.latest("api", now=110.0, window=60.0) == {"gw-1": later}


def test_per_endpoint_counts_are_kept_for_two_minutes_only() -> None:
    store = TrafficStore()
    for at in (0.0, 100.0, 200.0):
        store.add("gw-1", "api", Sample(at=at, requests=1, endpoints={"10.0.0.1:80": EndpointSample(requests=1)}))
    assert [len(s.endpoints) for s in store.samples[("gw-1", "api")]] == [0, 1, 1]
    assert store.endpoint_figures("api", now=200.0, window=150.0)["10.0.0.1:80"].requests == 2
    assert store.figures("api", now=200.0, window=300.0).requests == 3  # the service's own counts stay


def test_source_stale_fires_per_source() -> None:
    """Each source ages on its own: a silent Kubernetes API fires, fresh files do not, never-heard stays quiet."""
    engine, now = AlertEngine(), 1000.0
    contacts = {"files": now - 1, "kubernetes": now - 120, "never": 0.0}
    fired, _ = engine.evaluate(Facts(now, (), contacts, TrafficStore(), ()), AlertRules())
    assert [(a.name, dict(a.labels)) for a in fired] == [("SourceStale", {"source": "kubernetes"})]


def test_a_vanished_envoy_alerts_then_is_forgotten() -> None:
    """Disconnected after `disconnected_for`; forgotten (resolved) FORGET_AFTER later, not firing for ever."""
    engine, rules = AlertEngine(), AlertRules(disconnected_ms=30_000)
    engine.evaluate(Facts(0.0, (NodeFacts("gw-1", (), None),), {}, TrafficStore(), ()), rules)
    fired, _ = engine.evaluate(Facts(31.0, (), {}, TrafficStore(), ()), rules)
    assert [a.name for a in fired] == ["EnvoyDisconnected"]
    _, resolved = engine.evaluate(Facts(31.0 + FORGET_AFTER, (), {}, TrafficStore(), ()), rules)
    assert [a.name for a in resolved] == ["EnvoyDisconnected"] and engine.last_seen == {}


def test_every_type_has_a_nack_series_from_the_start() -> None:
    metrics = Metrics(Readings(lambda: 0, lambda: 0, lambda: True, lambda: {}, lambda: 0, lambda: 0))
    text = metrics.render().decode()
    for name in ("Cluster", "ClusterLoadAssignment", "Listener", "RouteConfiguration"):
        assert f'controlplane_xds_nacks_total{{type="{name}"}} 0.0' in text


def test_pushes_and_acks_are_counted_per_type() -> None:
    metrics = Metrics(Readings(lambda: 0, lambda: 0, lambda: True, lambda: {}, lambda: 0, lambda: 0))
    endpoints, routes = (
        f"type.googleapis.com/envoy.config.{t}"
        for t in ("endpoint.v3.ClusterLoadAssignment", "route.v3.RouteConfiguration")
    )
    for _ in range(3):
        metrics.pushed(endpoints)
    metrics.pushed(routes)
    metrics.acked(endpoints, 0.002, 0.004)
    metrics.acked(endpoints, 0.003, 0.2)
    text = metrics.render().decode()
    assert 'controlplane_xds_pushes_total{type="ClusterLoadAssignment"} 3.0' in text
    assert 'controlplane_xds_pushes_total{type="RouteConfiguration"} 1.0' in text
    assert 'controlplane_xds_push_round_trip_seconds_count{type="ClusterLoadAssignment"} 2.0' in text
    assert 'controlplane_xds_convergence_seconds_bucket{le="0.005",type="ClusterLoadAssignment"} 1.0' in text
    assert 'controlplane_xds_convergence_seconds_count{type="RouteConfiguration"} 0.0' in text  # pushed, not ACKed


def test_an_ambiguous_version_prefix_names_nothing() -> None:
    history = History()
    for version in ("abcdef111111", "abcdef222222", "abcdef111111"):
        history.add(Published(version, 0.0, {}))
    assert history.find("abcdef1") is not None and history.find("abcdef1").version == "abcdef111111"  # type: ignore[union-attr]
    assert history.find("abcdef") is None
