"""Receive the stats Envoys push (OTLP MetricsService/Export) and keep per-service and per-endpoint samples.

Only what the status page and alerts need is kept, per cluster: `upstream_rq_total` (requests),
`upstream_rq_xx` with response code class 5 (errors), the `upstream_rq_time` histogram (latency,
milliseconds), the `membership_healthy`, `outlier_detection.ejections_active` and
`health_check.healthy` gauges; and per endpoint (`cluster.endpoint.*`, tagged with the endpoint's
address): `rq_total`, `rq_error` and `healthy`. Counters may arrive as deltas or as running
totals (what the generated bootstrap asks for; see `counters.py`). Which Envoy sent an export
comes from the metadata its bootstrap sets (node id and node cluster); over mTLS that claim is
checked like an xDS stream's before the export is read.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

from controlplane.telemetry.counters import CounterDeltas
from controlplane.telemetry.traffic import EndpointSample, Sample, TrafficStore

log = logging.getLogger(__name__)

SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"
NODE_ID_HEADER = "x-controlplane-node-id"
NODE_CLUSTER_HEADER = "x-controlplane-node-cluster"
CLUSTER_TAG = "envoy.cluster_name"
CODE_CLASS_TAG = "envoy.response_code_class"
ENDPOINT_TAG = "envoy.endpoint_address"
UPTIME = "server.uptime"
CUMULATIVE = 2
"""OTLP's AGGREGATION_TEMPORALITY_CUMULATIVE."""

SERVICE_COUNTERS = {"cluster.upstream_rq_total": "requests", "cluster.upstream_rq_xx": "errors"}
ENDPOINT_COUNTERS = {"cluster.endpoint.rq_total": "requests", "cluster.endpoint.rq_error": "errors"}
SERVICE_GAUGES = {
    "cluster.membership_healthy": "healthy",
    "cluster.outlier_detection.ejections_active": "ejected",
    "cluster.health_check.healthy": "passing_health_checks",
}
ENDPOINT_HEALTHY = "cluster.endpoint.healthy"
LATENCY = "cluster.upstream_rq_time"


Admit = Callable[[Any, str, str], Awaitable[object]]
"""(context, node id, node cluster) -> returns when the peer may speak for that node, else aborts the call."""


def add_collector(
    server: grpc.aio.Server,
    store: TrafficStore,
    clock: Callable[[], float],
    counters: CounterDeltas,
    admit: Admit | None = None,
) -> None:
    """Serve MetricsService/Export on `server`, filling `store`; `admit` checks who claims to send."""

    async def export(request: Any, context: grpc.aio.ServicerContext) -> Any:
        metadata = dict(context.invocation_metadata() or ())
        node_id = str(metadata.get(NODE_ID_HEADER, context.peer()))
        if admit is not None:
            await admit(context, str(metadata.get(NODE_ID_HEADER, "")), str(metadata.get(NODE_CLUSTER_HEADER, "")))
        now = clock()
        counters.forget_idle(now)
        for service, sample in samples_of(request, now, node_id, counters).items():
            store.add(node_id, service, sample)
        return metrics_service_pb2.ExportMetricsServiceResponse()

    handler = grpc.unary_unary_rpc_method_handler(
        export,
        request_deserializer=metrics_service_pb2.ExportMetricsServiceRequest.FromString,
        response_serializer=metrics_service_pb2.ExportMetricsServiceResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))


def samples_of(request: Any, now: float, node_id: str = "", counters: CounterDeltas | None = None) -> dict[str, Sample]:
    """One sample per upstream cluster found in an export of `node_id`.

    Running totals become increments against `counters` (without them, totals are a baseline).
    """
    counters = counters if counters is not None else CounterDeltas()
    metrics = [m for resource in request.resource_metrics for scope in _scopes(resource) for m in scope.metrics]
    counters.begin(node_id, _uptime(metrics), now)
    found: dict[str, Sample] = {}
    for metric in metrics:
        _take(metric, found, now, functools.partial(_count, metric, node_id=node_id, counters=counters))
    counters.end(node_id)
    return found


def _scopes(resource: Any) -> Any:
    """`scope_metrics`, called `instrumentation_library_metrics` in older OTLP (same field number 2)."""
    fields = resource.DESCRIPTOR.fields_by_name
    return resource.scope_metrics if "scope_metrics" in fields else resource.instrumentation_library_metrics


def _uptime(metrics: list[Any]) -> float | None:
    """Envoy's `server.uptime` gauge (seconds), if the export has it."""
    for metric in metrics:
        if _name(metric) == UPTIME and metric.gauge.data_points:
            return float(metric.gauge.data_points[0].as_int)
    return None


def _count(metric: Any, point: Any, node_id: str, counters: CounterDeltas) -> int:
    """A counter point's increment since the previous export."""
    if metric.sum.aggregation_temporality != CUMULATIVE:
        return int(point.as_int)
    series = (_name(metric), tuple(sorted(_attributes(point).items())))
    return counters.delta(node_id, series, int(point.as_int))


def _take(metric: Any, found: dict[str, Sample], now: float, count: Callable[[Any], int]) -> None:
    name = _name(metric)
    if name in SERVICE_COUNTERS or name in ENDPOINT_COUNTERS:
        _take_counter(name, metric, found, now, count)
    elif name in SERVICE_GAUGES:
        for point in metric.gauge.data_points:
            setattr(_sample(found, point, now), SERVICE_GAUGES[name], int(point.as_int))
    elif name == ENDPOINT_HEALTHY:
        for point, endpoint in _endpoints(metric.gauge.data_points, found, now):
            endpoint.healthy = point.as_int == 1
    elif name == LATENCY:
        for point in metric.histogram.data_points:
            sample = _sample(found, point, now)
            sample.bounds, sample.buckets = tuple(point.explicit_bounds), tuple(point.bucket_counts)


def _take_counter(name: str, metric: Any, found: dict[str, Sample], now: float, count: Callable[[Any], int]) -> None:
    """Every point is counted (totals must be tracked), then added where it belongs."""
    if name in ENDPOINT_COUNTERS:
        for point, endpoint in _endpoints(metric.sum.data_points, found, now):
            field = ENDPOINT_COUNTERS[name]
            setattr(endpoint, field, getattr(endpoint, field) + count(point))
        return
    for point in metric.sum.data_points:
        increment = count(point)
        if name == "cluster.upstream_rq_xx" and _attributes(point).get(CODE_CLASS_TAG) != "5":
            continue
        sample = _sample(found, point, now)
        setattr(sample, SERVICE_COUNTERS[name], getattr(sample, SERVICE_COUNTERS[name]) + increment)


def _endpoints(points: Any, found: dict[str, Sample], now: float) -> Iterator[tuple[Any, EndpointSample]]:
    for point in points:
        address = _attributes(point).get(ENDPOINT_TAG, "")
        yield point, _sample(found, point, now).endpoints.setdefault(address, EndpointSample())


def _name(metric: Any) -> str:
    return str(metric.name).removeprefix("envoy.")


def _sample(found: dict[str, Sample], point: Any, now: float) -> Sample:
    cluster = _attributes(point).get(CLUSTER_TAG, "")
    return found.setdefault(cluster, Sample(at=now))


def _attributes(point: Any) -> dict[str, str]:
    return {a.key: a.value.string_value for a in point.attributes}
