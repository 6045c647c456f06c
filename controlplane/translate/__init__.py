"""Pure translation: model -> Envoy v3 resources. No I/O, no clocks, deterministic output.

`build_resources(model, node_cluster)` is the one entry point; each resource kind has its own
module named after the proto it builds.
"""

from __future__ import annotations

from controlplane.model import Model
from controlplane.translate.common import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from controlplane.translate.incremental import IncrementalTranslator, Resources

TYPE_ORDER = (CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE)
"""Make-before-break order: clusters, their endpoints, listeners, then routes."""

__all__ = [
    "CLUSTER_TYPE",
    "ENDPOINT_TYPE",
    "LISTENER_TYPE",
    "ROUTE_TYPE",
    "TYPE_ORDER",
    "IncrementalTranslator",
    "Resources",
    "build_resources",
]


def build_resources(model: Model, node_cluster: str | None = None) -> Resources:
    """Everything an Envoy of `node_cluster` needs (None: every listener).

    Resources are sorted by name within each type. Only services that its listeners route or
    mirror to become clusters, so an Envoy never holds (or health-checks) upstreams it cannot
    reach.
    """
    return IncrementalTranslator().build(model, [node_cluster])[node_cluster]
