"""Service -> Cluster (CDS): an EDS cluster with its balancer, health checks and limits."""

from __future__ import annotations

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import base_pb2, protocol_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from envoy.type.v3 import percent_pb2

from controlplane.model import CircuitBreaker, LbPolicy, OutlierDetection, Protocol, Service
from controlplane.translate.common import (
    EDGE_BUFFER_LIMIT_BYTES,
    H2_INITIAL_CONNECTION_WINDOW,
    H2_INITIAL_STREAM_WINDOW,
    ads_config_source,
    duration,
    socket_address,
    uint32,
)
from controlplane.translate.health_checks import health_check

HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
UPDATE_MERGE_WINDOW_MS = 100

_LB_POLICY = {
    LbPolicy.ROUND_ROBIN: cluster_pb2.Cluster.ROUND_ROBIN,
    LbPolicy.RANDOM: cluster_pb2.Cluster.RANDOM,
    LbPolicy.LEAST_REQUEST: cluster_pb2.Cluster.LEAST_REQUEST,
    LbPolicy.RING_HASH: cluster_pb2.Cluster.RING_HASH,
    LbPolicy.MAGLEV: cluster_pb2.Cluster.MAGLEV,
}


def cluster(service: Service) -> cluster_pb2.Cluster:
    """The cluster for `service`; its endpoints arrive separately over EDS."""
    result = cluster_pb2.Cluster(
        name=service.name,
        type=cluster_pb2.Cluster.EDS,
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=ads_config_source()),
        connect_timeout=duration(service.connect_timeout_ms),
        lb_policy=_LB_POLICY[service.lb],
        per_connection_buffer_limit_bytes=uint32(EDGE_BUFFER_LIMIT_BYTES),
        # Our sources are authoritative (route files, leases, readiness): an endpoint they drop
        # must leave, not linger while it still passes health checks (Envoy's default).
        ignore_health_on_host_removal=True,
        health_checks=[health_check(service.health_check, service.protocol)] if service.health_check else [],
        outlier_detection=outlier_detection(service.outlier_detection) if service.outlier_detection else None,
        circuit_breakers=circuit_breakers(service.circuit_breaker) if service.circuit_breaker else None,
        # Per-endpoint requests, 5xx and health (`cluster.endpoint.*`) for the stats sink: the only
        # way Envoy pushes per-host health. Envoy refuses it together with LRS (`load_stats_config`).
        track_cluster_stats=cluster_pb2.TrackClusterStats(per_endpoint_stats=True),
    )
    if service.dns_name:
        _resolve_by_dns(result, service)
    _set_lb_config(result, service)
    # Envoy merges health changes for 1s by default before load balancers see them: a dead
    # primary would keep taking traffic that long. 100ms still batches flapping at scale.
    result.common_lb_config.update_merge_window.CopyFrom(duration(UPDATE_MERGE_WINDOW_MS))
    if service.panic_threshold_percent is not None:
        result.common_lb_config.healthy_panic_threshold.value = service.panic_threshold_percent
    if service.protocol in (Protocol.HTTP2, Protocol.GRPC):
        result.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS].Pack(http2_options(), deterministic=True)
    return result


def _resolve_by_dns(result: cluster_pb2.Cluster, service: Service) -> None:
    """An ExternalName Service: Envoy resolves the name itself and balances over its addresses."""
    result.type = cluster_pb2.Cluster.STRICT_DNS
    result.ClearField("eds_cluster_config")
    result.dns_lookup_family = cluster_pb2.Cluster.V4_PREFERRED
    result.load_assignment.CopyFrom(
        endpoint_pb2.ClusterLoadAssignment(
            cluster_name=service.name,
            endpoints=[
                endpoint_components_pb2.LocalityLbEndpoints(
                    lb_endpoints=[
                        endpoint_components_pb2.LbEndpoint(
                            endpoint=endpoint_components_pb2.Endpoint(
                                address=socket_address(service.dns_name, service.dns_port)
                            )
                        )
                    ]
                )
            ],
        )
    )


def _set_lb_config(result: cluster_pb2.Cluster, service: Service) -> None:
    """Fill the per-policy config block; absent options keep Envoy's defaults."""
    slow_start = _slow_start(service)
    if service.lb == LbPolicy.ROUND_ROBIN and slow_start:
        result.round_robin_lb_config.slow_start_config.CopyFrom(slow_start)
    elif service.lb == LbPolicy.LEAST_REQUEST and (slow_start or service.least_request_choices):
        if service.least_request_choices:
            result.least_request_lb_config.choice_count.value = service.least_request_choices
        if slow_start:
            result.least_request_lb_config.slow_start_config.CopyFrom(slow_start)
    elif service.lb == LbPolicy.RING_HASH and (service.ring_min_size or service.ring_max_size):
        if service.ring_min_size:
            result.ring_hash_lb_config.minimum_ring_size.value = service.ring_min_size
        if service.ring_max_size:
            result.ring_hash_lb_config.maximum_ring_size.value = service.ring_max_size
    elif service.lb == LbPolicy.MAGLEV and service.maglev_table_size:
        result.maglev_lb_config.table_size.value = service.maglev_table_size


def _slow_start(service: Service) -> cluster_pb2.Cluster.SlowStartConfig | None:
    if service.slow_start is None:
        return None
    return cluster_pb2.Cluster.SlowStartConfig(
        slow_start_window=duration(service.slow_start.window_ms),
        aggression=base_pb2.RuntimeDouble(
            default_value=service.slow_start.aggression, runtime_key=f"upstream.{service.name}.slow_start"
        ),
    )


def outlier_detection(spec: OutlierDetection) -> outlier_detection_pb2.OutlierDetection:
    """Outlier detection that enforces exactly what the model asks for.

    Envoy enables success-rate ejection by default and gateway-failure ejection only when its
    `enforcing_*` knob is raised; both are set explicitly so the DSL means what it says.
    """
    result = outlier_detection_pb2.OutlierDetection(
        consecutive_5xx=uint32(spec.consecutive_5xx),
        enforcing_consecutive_5xx=uint32(100 if spec.consecutive_5xx else 0),
        interval=duration(spec.interval_ms),
        base_ejection_time=duration(spec.base_ejection_time_ms),
        max_ejection_percent=uint32(spec.max_ejection_percent),
        enforcing_success_rate=uint32(0),
        split_external_local_origin_errors=spec.split_external_local_origin_errors,
    )
    if spec.max_ejection_time_ms:
        result.max_ejection_time.CopyFrom(duration(spec.max_ejection_time_ms))
    if spec.consecutive_gateway_failure:
        result.consecutive_gateway_failure.value = spec.consecutive_gateway_failure
        result.enforcing_consecutive_gateway_failure.value = 100
    if spec.consecutive_local_origin_failure:
        result.consecutive_local_origin_failure.value = spec.consecutive_local_origin_failure
        result.enforcing_consecutive_local_origin_failure.value = 100
    if spec.failure_percentage_threshold:
        result.failure_percentage_threshold.value = spec.failure_percentage_threshold
        result.enforcing_failure_percentage.value = 100
        result.failure_percentage_minimum_hosts.value = spec.failure_percentage_minimum_hosts
        result.failure_percentage_request_volume.value = spec.failure_percentage_request_volume
    return result


def circuit_breakers(spec: CircuitBreaker) -> circuit_breaker_pb2.CircuitBreakers:
    """Default-priority thresholds; a retry budget, when set, replaces the fixed max_retries.

    A budget of 0% is written too: it limits retries to `min_retry_concurrency`.
    """
    thresholds = circuit_breaker_pb2.CircuitBreakers.Thresholds(
        max_connections=uint32(spec.max_connections),
        max_pending_requests=uint32(spec.max_pending_requests),
        max_requests=uint32(spec.max_requests),
        max_retries=uint32(spec.max_retries),
    )
    if spec.retry_budget_percent is not None:
        thresholds.retry_budget.budget_percent.CopyFrom(percent_pb2.Percent(value=spec.retry_budget_percent))
        thresholds.retry_budget.min_retry_concurrency.value = spec.retry_budget_min_concurrency
    return circuit_breaker_pb2.CircuitBreakers(thresholds=[thresholds])


def http2_options() -> http_protocol_options_pb2.HttpProtocolOptions:
    """Speak HTTP/2 to the upstream (for `protocol: http2` and `grpc`), with the edge page's windows.

    Envoy's 256 MiB default stream window would let an upstream push far more into Envoy's buffers
    per stream than a slow client drains; 64 KiB per stream and 1 MiB per connection bound that.
    """
    options = http_protocol_options_pb2.HttpProtocolOptions()
    options.explicit_http_config.http2_protocol_options.CopyFrom(
        protocol_pb2.Http2ProtocolOptions(
            initial_stream_window_size=uint32(H2_INITIAL_STREAM_WINDOW),
            initial_connection_window_size=uint32(H2_INITIAL_CONNECTION_WINDOW),
        )
    )
    return options
