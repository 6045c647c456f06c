"""Pure translation: model -> Envoy v3 resources. No I/O, no clocks, deterministic output.

`build_resources(model, node_cluster)` is the one entry point; each resource kind has its own
module named after the proto it builds.
"""

from __future__ import annotations

from typing import Any

from controlplane.model import Listener, Model
from controlplane.translate.clusters import cluster
from controlplane.translate.common import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from controlplane.translate.endpoints import cluster_load_assignment
from controlplane.translate.listeners import listener
from controlplane.translate.routes import route_configuration

Resources = dict[str, tuple[Any, ...]]
"""type URL -> resources sorted by name, in make-before-break order (CDS, EDS, LDS, RDS)."""

TYPE_ORDER = (CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE)

__all__ = [
    "CLUSTER_TYPE",
    "ENDPOINT_TYPE",
    "LISTENER_TYPE",
    "ROUTE_TYPE",
    "TYPE_ORDER",
    "Resources",
    "build_resources",
    "referenced_services",
]


def build_resources(model: Model, node_cluster: str | None = None) -> Resources:
    """Everything an Envoy of `node_cluster` needs (None: every listener).

    Only services that its listeners route or mirror to become clusters, so an Envoy never
    holds (or health-checks) upstreams it cannot reach.
    """
    listeners = [item for item in model.listeners if item.serves(node_cluster)]
    by_name = {s.name: s for s in model.services}
    used = [by_name[name] for name in sorted(referenced_services(listeners))]
    return {
        CLUSTER_TYPE: tuple(cluster(s) for s in used),
        ENDPOINT_TYPE: tuple(cluster_load_assignment(s) for s in used),
        LISTENER_TYPE: tuple(listener(item) for item in listeners),
        ROUTE_TYPE: tuple(route_configuration(item, by_name) for item in listeners),
    }


def referenced_services(listeners: list[Listener]) -> set[str]:
    """Names of the services that routes of `listeners` send or mirror traffic to."""
    names: set[str] = set()
    for item in listeners:
        for host in item.virtual_hosts:
            for route in host.routes:
                names.update(t.service for t in route.targets)
                names.update(m.service for m in route.mirrors)
    return names
