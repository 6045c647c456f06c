"""The consistency rule a snapshot must meet before it is published (as go-control-plane's).

Every EDS cluster has its ClusterLoadAssignment and every RDS name a listener uses exists, so a
cluster never waits for endpoints that will not come, and a listener never for routes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm

from controlplane.translate import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE


def consistency_problems(resources: Mapping[str, Iterable[Any]]) -> list[str]:
    """Dangling references between types, as readable sentences."""
    eds_names = {c.eds_cluster_config.service_name or c.name for c in eds_clusters(resources.get(CLUSTER_TYPE, ()))}
    assignments = {a.cluster_name for a in resources.get(ENDPOINT_TYPE, ())}
    route_names = {r.name for r in resources.get(ROUTE_TYPE, ())}
    used_routes = {n for item in resources.get(LISTENER_TYPE, ()) for n in rds_names(item)}
    problems = [f"cluster {n} has no endpoint assignment" for n in sorted(eds_names - assignments)]
    problems += [
        f"route configuration {n} is used by a listener but missing" for n in sorted(used_routes - route_names)
    ]
    return problems


def eds_clusters(clusters: Iterable[Any]) -> list[Any]:
    """The clusters whose endpoints come over EDS."""
    return [c for c in clusters if c.type == cluster_pb2.Cluster.EDS]


def rds_names(listener: Any) -> list[str]:
    """Names of the RouteConfigurations a listener's HTTP connection managers fetch over RDS."""
    names: list[str] = []
    for chain in listener.filter_chains:
        for network_filter in chain.filters:
            manager = hcm.HttpConnectionManager()
            if network_filter.typed_config.Unpack(manager) and manager.HasField("rds"):
                names.append(manager.rds.route_config_name)
    return names
