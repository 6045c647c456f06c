"""Turn validated `services:` specs into model services."""

from __future__ import annotations

from controlplane import model as m
from controlplane.dsl.schema_services import (
    CircuitBreakerSpec,
    EndpointSpec,
    HashOnSpec,
    HealthCheckSpec,
    KubernetesRefSpec,
    OutlierDetectionSpec,
    ServiceSpec,
)
from controlplane.dsl.types import parse_socket_address


def build_service(name: str, spec: ServiceSpec) -> m.Service:
    """A model service with endpoints sorted, so input order never changes the output."""
    options = spec.lb_options
    return m.Service(
        name=name,
        endpoints=tuple(sorted(_endpoint(e) for e in spec.endpoints)),
        discovery="kubernetes" if spec.kubernetes else spec.discovery,
        kubernetes=_kubernetes(spec.kubernetes),
        lb=m.LbPolicy(spec.lb),
        hash_on=_hash_on(spec.hash_on),
        least_request_choices=(options.choices or 0) if options else 0,
        ring_min_size=(options.min_ring_size or 0) if options else 0,
        ring_max_size=(options.max_ring_size or 0) if options else 0,
        maglev_table_size=(options.table_size or 0) if options else 0,
        protocol=m.Protocol(spec.protocol),
        connect_timeout_ms=spec.connect_timeout,
        health_check=_health_check(spec.health_check),
        outlier_detection=_outlier_detection(spec.outlier_detection),
        circuit_breaker=_circuit_breaker(spec.circuit_breaker),
        slow_start=m.SlowStart(spec.slow_start.window, spec.slow_start.aggression) if spec.slow_start else None,
        panic_threshold_percent=spec.panic_threshold,
    )


def _kubernetes(spec: KubernetesRefSpec | None) -> m.KubernetesRef | None:
    return m.KubernetesRef(spec.namespace, spec.name, str(spec.port)) if spec else None


def _endpoint(spec: EndpointSpec) -> m.Endpoint:
    host, port = parse_socket_address(spec.address)
    priority = 1 if spec.backup else (spec.priority or 0)
    return m.Endpoint(host=host, port=port, weight=spec.weight, zone=spec.zone, region=spec.region, priority=priority)


def _hash_on(spec: HashOnSpec | None) -> m.HashPolicy | None:
    if spec is None:
        return None
    if spec.cookie is not None:
        cookie = spec.cookie
        return m.HashPolicy("cookie", cookie.name, cookie_ttl_ms=cookie.ttl, cookie_path=cookie.path)
    if spec.header is not None:
        return m.HashPolicy("header", spec.header)
    if spec.query is not None:
        return m.HashPolicy("query", spec.query)
    return m.HashPolicy("source_ip")


def _health_check(spec: HealthCheckSpec | None) -> m.HealthCheck | None:
    if spec is None:
        return None
    kind = "http" if spec.http else "grpc" if spec.grpc else "tcp"
    return m.HealthCheck(
        kind=kind,
        interval_ms=spec.interval,
        timeout_ms=spec.timeout,
        unhealthy_threshold=spec.unhealthy,
        healthy_threshold=spec.healthy,
        http_path=spec.http.path if spec.http else "",
        http_host=spec.http.host if spec.http else "",
        expected_statuses=tuple(sorted(set(spec.http.expected_statuses))) if spec.http else (),
        grpc_service=spec.grpc.service if spec.grpc else "",
        no_traffic_interval_ms=spec.no_traffic_interval or 0,
    )


def _outlier_detection(spec: OutlierDetectionSpec | None) -> m.OutlierDetection | None:
    if spec is None:
        return None
    return m.OutlierDetection(
        consecutive_5xx=spec.consecutive_5xx,
        consecutive_gateway_failure=spec.consecutive_gateway_failure,
        interval_ms=spec.interval,
        base_ejection_time_ms=spec.base_ejection_time,
        max_ejection_time_ms=spec.max_ejection_time or 0,
        max_ejection_percent=spec.max_ejection_percent,
        split_external_local_origin_errors=spec.split_external_local_origin_errors,
        consecutive_local_origin_failure=spec.consecutive_local_origin_failure,
        failure_percentage_threshold=spec.failure_percentage or 0,
        failure_percentage_minimum_hosts=spec.failure_percentage_minimum_hosts,
        failure_percentage_request_volume=spec.failure_percentage_request_volume,
    )


def _circuit_breaker(spec: CircuitBreakerSpec | None) -> m.CircuitBreaker | None:
    if spec is None:
        return None
    budget = spec.retry_budget
    return m.CircuitBreaker(
        max_connections=spec.max_connections,
        max_pending_requests=spec.max_pending_requests,
        max_requests=spec.max_requests,
        max_retries=spec.max_retries,
        retry_budget_percent=budget.percent if budget else None,
        retry_budget_min_concurrency=budget.min_concurrency if budget else 3,
    )
