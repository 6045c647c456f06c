"""Model HealthCheck -> Envoy active health check."""

from __future__ import annotations

from envoy.config.core.v3 import health_check_pb2
from envoy.type.v3 import http_pb2, range_pb2

from controlplane.model import HealthCheck, Protocol
from controlplane.translate.common import duration, uint32


def health_check(spec: HealthCheck, protocol: Protocol) -> health_check_pb2.HealthCheck:
    """An HTTP, TCP or gRPC health check; HTTP checks speak HTTP/2 when the service does."""
    result = health_check_pb2.HealthCheck(
        timeout=duration(spec.timeout_ms),
        interval=duration(spec.interval_ms),
        unhealthy_threshold=uint32(spec.unhealthy_threshold),
        healthy_threshold=uint32(spec.healthy_threshold),
    )
    if spec.no_traffic_interval_ms:
        result.no_traffic_interval.CopyFrom(duration(spec.no_traffic_interval_ms))
    if spec.kind == "http":
        result.http_health_check.CopyFrom(_http(spec, protocol))
    elif spec.kind == "grpc":
        result.grpc_health_check.service_name = spec.grpc_service
    else:
        result.tcp_health_check.SetInParent()
    return result


def _http(spec: HealthCheck, protocol: Protocol) -> health_check_pb2.HealthCheck.HttpHealthCheck:
    check = health_check_pb2.HealthCheck.HttpHealthCheck(
        path=spec.http_path,
        host=spec.http_host,
        expected_statuses=[range_pb2.Int64Range(start=s, end=s + 1) for s in spec.expected_statuses],
    )
    if protocol in (Protocol.HTTP2, Protocol.GRPC):
        check.codec_client_type = http_pb2.CodecClientType.HTTP2
    return check
