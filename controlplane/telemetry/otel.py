"""Receive the stats Envoys push (OTLP MetricsService/Export) and keep per-service traffic samples.

Only what the status page and alerts need is kept: per cluster, `upstream_rq_total`
(requests), `upstream_rq_xx` with response code class 5 (errors), the `upstream_rq_time`
histogram (latency, milliseconds) and the `membership_healthy` gauge. Which Envoy sent an
export comes from the metadata its bootstrap sets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

from controlplane.telemetry.traffic import Sample, TrafficStore

log = logging.getLogger(__name__)

SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"
NODE_ID_HEADER = "x-controlplane-node-id"
CLUSTER_TAG = "envoy.cluster_name"
CODE_CLASS_TAG = "envoy.response_code_class"


def add_collector(server: grpc.aio.Server, store: TrafficStore, clock: Callable[[], float]) -> None:
    """Serve MetricsService/Export on `server`, filling `store`."""

    async def export(request: Any, context: grpc.aio.ServicerContext) -> Any:
        node_id = dict(context.invocation_metadata() or ()).get(NODE_ID_HEADER, context.peer())
        for service, sample in samples_of(request, clock()).items():
            store.add(str(node_id), service, sample)
        return metrics_service_pb2.ExportMetricsServiceResponse()

    handler = grpc.unary_unary_rpc_method_handler(
        export,
        request_deserializer=metrics_service_pb2.ExportMetricsServiceRequest.FromString,
        response_serializer=metrics_service_pb2.ExportMetricsServiceResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))


def samples_of(request: Any, now: float) -> dict[str, Sample]:
    """One sample per upstream cluster found in an export."""
    found: dict[str, Sample] = {}
    for resource in request.resource_metrics:
        for scope in _scopes(resource):
            for metric in scope.metrics:
                _take(metric, found, now)
    return found


def _scopes(resource: Any) -> Any:
    """`scope_metrics`, called `instrumentation_library_metrics` in older OTLP (same field number 2)."""
    fields = resource.DESCRIPTOR.fields_by_name
    return resource.scope_metrics if "scope_metrics" in fields else resource.instrumentation_library_metrics


def _take(metric: Any, found: dict[str, Sample], now: float) -> None:
    name = metric.name.removeprefix("envoy.")
    if name == "cluster.upstream_rq_total":
        for point in metric.sum.data_points:
            _sample(found, point, now).requests += point.as_int
    elif name == "cluster.upstream_rq_xx":
        for point in metric.sum.data_points:
            if _attributes(point).get(CODE_CLASS_TAG) == "5":
                _sample(found, point, now).errors += point.as_int
    elif name == "cluster.membership_healthy":
        for point in metric.gauge.data_points:
            _sample(found, point, now).healthy = point.as_int
    elif name == "cluster.upstream_rq_time":
        for point in metric.histogram.data_points:
            sample = _sample(found, point, now)
            sample.bounds, sample.buckets = tuple(point.explicit_bounds), tuple(point.bucket_counts)


def _sample(found: dict[str, Sample], point: Any, now: float) -> Sample:
    cluster = _attributes(point).get(CLUSTER_TAG, "")
    return found.setdefault(cluster, Sample(at=now))


def _attributes(point: Any) -> dict[str, str]:
    return {a.key: a.value.string_value for a in point.attributes}
