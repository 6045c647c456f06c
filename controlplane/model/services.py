"""Upstream services: endpoints and the policies Envoy applies to them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from controlplane.model.hashing import cached_hash


class LbPolicy(StrEnum):
    """How Envoy picks an endpoint among the healthy ones of a priority."""

    ROUND_ROBIN = "round_robin"
    RANDOM = "random"
    LEAST_REQUEST = "least_request"
    RING_HASH = "ring_hash"
    MAGLEV = "maglev"


class Protocol(StrEnum):
    """The protocol Envoy speaks to the upstream."""

    HTTP1 = "http1"
    HTTP2 = "http2"
    GRPC = "grpc"


_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
KUBERNETES_REFERENCE = re.compile(rf"(?P<namespace>{_LABEL})/(?P<name>{_LABEL}):(?P<port>{_LABEL}|[0-9]{{1,5}})")
"""`NAMESPACE/NAME:PORT`: how a route names a Kubernetes Service port directly."""


@dataclass(frozen=True, order=True)
class KubernetesRef:
    """A Kubernetes Service port: `port` is the port's name or its number (as text)."""

    namespace: str
    name: str
    port: str

    @property
    def cluster_name(self) -> str:
        """The name of the cluster every Service port gets."""
        return f"{self.namespace}/{self.name}:{self.port}"

    @staticmethod
    def parse(text: str) -> KubernetesRef | None:
        """The reference a route target spells, or None when it is a plain service name."""
        found = KUBERNETES_REFERENCE.fullmatch(text)
        return KubernetesRef(found["namespace"], found["name"], found["port"]) if found else None


@dataclass(frozen=True, order=True)
class Endpoint:
    """One upstream address."""

    __hash__ = cached_hash

    host: str
    """IPv4 or IPv6 address (no brackets)."""
    port: int
    weight: int = 1
    """Relative load-balancing weight within its locality and priority."""
    zone: str = ""
    """Locality zone; endpoints are grouped by (priority, region, zone)."""
    region: str = ""
    priority: int = 0
    """0 for primaries; higher priorities take traffic only when lower ones are unhealthy."""
    draining: bool = False
    """Leaving: Envoy finishes the requests it has on it and sends it no new ones."""
    metadata: tuple[tuple[str, str], ...] = ()
    """Labels, sorted by key (from the registry), kept in Envoy's endpoint metadata."""


@dataclass(frozen=True)
class HealthCheck:
    """Active health checking; exactly one of `http_path`, `tcp`, `grpc_service` applies."""

    kind: str
    """`http`, `tcp` or `grpc`."""
    interval_ms: int = 5000
    timeout_ms: int = 1000
    unhealthy_threshold: int = 3
    healthy_threshold: int = 1
    http_path: str = ""
    http_host: str = ""
    expected_statuses: tuple[int, ...] = ()
    """Empty means Envoy's default (200 only)."""
    grpc_service: str = ""
    no_traffic_interval_ms: int = 0
    """0 keeps Envoy's default (60s) for clusters that receive no traffic."""


@dataclass(frozen=True)
class OutlierDetection:
    """Passive health: eject endpoints that fail requests."""

    consecutive_5xx: int = 5
    consecutive_gateway_failure: int = 0
    """0 leaves gateway-failure ejection off."""
    interval_ms: int = 10000
    base_ejection_time_ms: int = 30000
    max_ejection_time_ms: int = 0
    """0 keeps Envoy's default (300s)."""
    max_ejection_percent: int = 10
    split_external_local_origin_errors: bool = False
    consecutive_local_origin_failure: int = 0
    failure_percentage_threshold: int = 0
    """0 leaves failure-percentage ejection off."""
    failure_percentage_minimum_hosts: int = 5
    failure_percentage_request_volume: int = 50


@dataclass(frozen=True)
class CircuitBreaker:
    """Limits on concurrent work towards one service (Envoy's default priority thresholds)."""

    max_connections: int = 1024
    max_pending_requests: int = 1024
    max_requests: int = 1024
    max_retries: int = 3
    retry_budget_percent: float | None = None
    """When set (0 included), a retry budget replaces `max_retries`: active retries may be at most
    this % of active requests, but never fewer than `retry_budget_min_concurrency`."""
    retry_budget_min_concurrency: int = 3


@dataclass(frozen=True)
class HashPolicy:
    """What a hash-based balancer (ring_hash, maglev) hashes on; exactly one kind applies."""

    kind: str
    """`header`, `cookie`, `source_ip` or `query`."""
    name: str = ""
    """Header, cookie or query parameter name."""
    cookie_ttl_ms: int | None = None
    """For cookies: None, Envoy never sets the cookie; otherwise it sets it when absent (sticky
    sessions) with this lifetime, 0 meaning a session cookie."""
    cookie_path: str = ""


@dataclass(frozen=True)
class SlowStart:
    """Ramp traffic to new endpoints over a window (round_robin and least_request only)."""

    window_ms: int
    aggression: float = 1.0


@dataclass(frozen=True)
class Service:
    """An upstream service; becomes one Envoy cluster and one ClusterLoadAssignment."""

    __hash__ = cached_hash

    name: str
    endpoints: tuple[Endpoint, ...] = ()
    discovery: str = "static"
    """`static` (endpoints listed in the config), `registry` (registered over gRPC) or
    `kubernetes` (a Service port's EndpointSlices)."""
    kubernetes: KubernetesRef | None = None
    """For `kubernetes` discovery: the Service port whose endpoints this service takes."""
    dns_name: str = ""
    """Set for a Kubernetes ExternalName Service: Envoy resolves this name (port: `dns_port`)."""
    dns_port: int = 0
    lb: LbPolicy = LbPolicy.ROUND_ROBIN
    hash_on: HashPolicy | None = None
    least_request_choices: int = 0
    """0 keeps Envoy's default (2)."""
    ring_min_size: int = 0
    ring_max_size: int = 0
    maglev_table_size: int = 0
    protocol: Protocol = Protocol.HTTP1
    connect_timeout_ms: int = 2000
    health_check: HealthCheck | None = None
    outlier_detection: OutlierDetection | None = None
    circuit_breaker: CircuitBreaker | None = None
    slow_start: SlowStart | None = None
    panic_threshold_percent: float | None = None
    """None keeps Envoy's default (50%)."""
