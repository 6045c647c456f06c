"""The validated, immutable model every source produces and the translator consumes.

Frozen dataclasses and tuples only: no protobuf, Kubernetes or DSL types. Durations are integer
milliseconds so that equality and hashing are exact and output is deterministic.
"""

from controlplane.model.alerts import AlertRules, Webhook
from controlplane.model.config import Model, Origin
from controlplane.model.kubernetes import DiscoveredPort, KubernetesState
from controlplane.model.routes import (
    Cors,
    DirectResponse,
    Fault,
    HeaderMatch,
    HeaderOps,
    HttpOptions,
    Listener,
    Match,
    Mirror,
    QueryMatch,
    RateLimit,
    Redirect,
    Retries,
    Rewrite,
    Route,
    VirtualHost,
    WeightedTarget,
)
from controlplane.model.services import (
    CircuitBreaker,
    Endpoint,
    HashPolicy,
    HealthCheck,
    KubernetesRef,
    LbPolicy,
    OutlierDetection,
    Protocol,
    Service,
    SlowStart,
)

__all__ = [
    "AlertRules",
    "CircuitBreaker",
    "Cors",
    "DirectResponse",
    "DiscoveredPort",
    "Endpoint",
    "Fault",
    "HashPolicy",
    "HeaderMatch",
    "HeaderOps",
    "HealthCheck",
    "HttpOptions",
    "KubernetesRef",
    "KubernetesState",
    "LbPolicy",
    "Listener",
    "Match",
    "Mirror",
    "Model",
    "Origin",
    "OutlierDetection",
    "Protocol",
    "QueryMatch",
    "RateLimit",
    "Redirect",
    "Retries",
    "Rewrite",
    "Route",
    "Service",
    "SlowStart",
    "VirtualHost",
    "Webhook",
    "WeightedTarget",
]
