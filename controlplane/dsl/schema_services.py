"""DSL schema of `services:` entries."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from controlplane.dsl.limits import MAX_UINT32
from controlplane.dsl.schema_common import Spec, exactly_one
from controlplane.dsl.types import (
    CookieName,
    CookiePath,
    Duration,
    HeaderName,
    HeaderValue,
    PathText,
    Percent,
    QueryName,
    parse_socket_address,
)


def _endpoint_shorthand(value: Any) -> Any:
    return {"address": value} if isinstance(value, str) else value


def _http_check_shorthand(value: Any) -> Any:
    return {"path": value} if isinstance(value, str) else value


def _grpc_check_shorthand(value: Any) -> Any:
    if value is True:
        return {}
    return {"service": value} if isinstance(value, str) else value


def _cookie_shorthand(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class EndpointSpec(Spec):
    """One endpoint: `HOST:PORT`, or an object with weight, zone and failover priority."""

    address: str
    weight: int = Field(1, ge=1, le=1_000_000)
    zone: str = ""
    region: str = ""
    backup: bool = False
    priority: int | None = Field(None, ge=0, le=10)

    @model_validator(mode="after")
    def _backup_or_priority(self) -> EndpointSpec:
        parse_socket_address(self.address)
        if self.backup and self.priority is not None:
            raise ValueError("backup and priority cannot be combined (backup means priority 1)")
        return self


class HttpCheckSpec(Spec):
    """HTTP health check: GET `path`, healthy when the status is expected."""

    path: PathText
    host: HeaderValue = ""
    expected_statuses: list[Annotated[int, Field(ge=100, le=599)]] = []


class GrpcCheckSpec(Spec):
    """gRPC health check (grpc.health.v1); `service` empty checks the whole server."""

    service: str = ""


class HealthCheckSpec(Spec):
    """Active health check; exactly one of http, tcp, grpc."""

    http: Annotated[HttpCheckSpec | None, BeforeValidator(_http_check_shorthand)] = None
    tcp: Literal[True] | None = None
    grpc: Annotated[GrpcCheckSpec | None, BeforeValidator(_grpc_check_shorthand)] = None
    interval: Duration = 5000
    timeout: Duration = 1000
    unhealthy: int = Field(3, ge=1, le=100)
    healthy: int = Field(1, ge=1, le=100)
    no_traffic_interval: Duration | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> HealthCheckSpec:
        exactly_one(self, "http", "tcp", "grpc")
        if self.interval < 1 or self.timeout < 1:
            raise ValueError("interval and timeout must be at least 1ms")
        return self


class OutlierDetectionSpec(Spec):
    """Passive health: eject endpoints that fail (see Envoy's outlier detection)."""

    consecutive_5xx: int = Field(5, ge=0, le=MAX_UINT32)
    consecutive_gateway_failure: int = Field(0, ge=0, le=MAX_UINT32)
    consecutive_local_origin_failure: int = Field(0, ge=0, le=MAX_UINT32)
    split_external_local_origin_errors: bool = False
    interval: Duration = 10_000
    base_ejection_time: Duration = 30_000
    max_ejection_time: Duration | None = None
    max_ejection_percent: int = Field(10, ge=0, le=100)
    failure_percentage: int | None = Field(None, ge=1, le=100)
    failure_percentage_minimum_hosts: int = Field(5, ge=1, le=MAX_UINT32)
    failure_percentage_request_volume: int = Field(50, ge=1, le=MAX_UINT32)

    @field_validator("interval", "base_ejection_time")
    @classmethod
    def _positive(cls, value: int, info: ValidationInfo) -> int:
        if value < 1:
            raise ValueError(f"{info.field_name} must be at least 1ms")
        return value

    @field_validator("max_ejection_time")
    @classmethod
    def _max_not_below_base(cls, value: int | None, info: ValidationInfo) -> int | None:
        base = info.data.get("base_ejection_time")
        if value is not None and base is not None and value < base:
            raise ValueError(f"max_ejection_time ({value}ms) must not be below base_ejection_time ({base}ms)")
        return value


class RetryBudgetSpec(Spec):
    """Retries allowed as a share of active requests (replaces max_retries)."""

    percent: Percent
    min_concurrency: int = Field(3, ge=0, le=MAX_UINT32)


class CircuitBreakerSpec(Spec):
    """Concurrency limits towards the service."""

    max_connections: int = Field(1024, ge=1, le=MAX_UINT32)
    max_pending_requests: int = Field(1024, ge=1, le=MAX_UINT32)
    max_requests: int = Field(1024, ge=1, le=MAX_UINT32)
    max_retries: int = Field(3, ge=0, le=MAX_UINT32)
    retry_budget: RetryBudgetSpec | None = None


class CookieSpec(Spec):
    """Hash on a cookie; with `ttl` Envoy sets it when absent (sticky sessions, `0s`: session cookie)."""

    name: CookieName
    ttl: Duration | None = None
    path: CookiePath = ""


class HashOnSpec(Spec):
    """What ring_hash and maglev hash on; exactly one."""

    header: HeaderName | None = None
    cookie: Annotated[CookieSpec | None, BeforeValidator(_cookie_shorthand)] = None
    source_ip: Literal[True] | None = None
    query: QueryName | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> HashOnSpec:
        exactly_one(self, "header", "cookie", "source_ip", "query")
        return self


class LbOptionsSpec(Spec):
    """Per-policy balancer options; each applies only to its policy."""

    choices: int | None = Field(None, ge=2, le=100)
    """least_request: endpoints sampled per pick (power of N choices)."""
    min_ring_size: int | None = Field(None, ge=1, le=8_388_608)
    max_ring_size: int | None = Field(None, ge=1, le=8_388_608)
    table_size: int | None = Field(None, ge=2, le=5_000_011)
    """maglev: a prime number."""


class SlowStartSpec(Spec):
    """Ramp traffic to a new endpoint over `window`."""

    window: Duration
    aggression: float = Field(1.0, gt=0, le=100)


LbName = Literal["round_robin", "random", "least_request", "ring_hash", "maglev"]


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_PORT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?")


class KubernetesRefSpec(Spec):
    """A Kubernetes Service port whose EndpointSlices give this service its endpoints."""

    namespace: str
    name: str
    port: str | int
    """The Service port's name, or its number."""

    @field_validator("namespace", "name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not _DNS_LABEL.fullmatch(value):
            raise ValueError(f"{value!r} is not a Kubernetes name (an RFC 1123 label: lower-case, digits, '-')")
        return value

    @field_validator("port")
    @classmethod
    def _port(cls, value: str | int) -> str | int:
        if isinstance(value, int):
            if not 1 <= value <= 65535:
                raise ValueError(f"port {value} is out of range 1-65535")
        elif not _PORT_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a port name (at most 15 lower-case letters, digits or '-')")
        return value


class ServiceSpec(Spec):
    """An upstream service: its endpoints and the policies Envoy applies to them."""

    endpoints: list[Annotated[EndpointSpec, BeforeValidator(_endpoint_shorthand)]] = []
    discovery: Literal["static", "registry"] = "static"
    """`registry`: endpoints join over the Registry gRPC API with a lease, instead of being listed."""
    kubernetes: KubernetesRefSpec | None = None
    """Endpoints from this Kubernetes Service port (its EndpointSlices), instead of being listed."""
    lb: LbName = "round_robin"
    lb_options: LbOptionsSpec | None = None
    hash_on: HashOnSpec | None = None
    protocol: Literal["http1", "http2", "grpc"] = "http1"
    connect_timeout: Duration = 2000
    health_check: HealthCheckSpec | None = None
    outlier_detection: OutlierDetectionSpec | None = None
    circuit_breaker: CircuitBreakerSpec | None = None
    slow_start: SlowStartSpec | None = None
    panic_threshold: Percent | None = None

    @field_validator("connect_timeout")
    @classmethod
    def _positive_connect_timeout(cls, value: int) -> int:
        if value < 1:
            raise ValueError("connect_timeout must be at least 1ms")
        return value
