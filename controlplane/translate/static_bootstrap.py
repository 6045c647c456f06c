"""Resources -> a static Envoy bootstrap: the same config inlined, runnable without xDS.

Used to prove with `envoy --mode validate` that Envoy accepts what the translator builds, and
by `controlplane render --static` for running one Envoy from a route file alone.
"""

from __future__ import annotations

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm

from controlplane.translate import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, Resources
from controlplane.translate.common import pack, socket_address


def static_bootstrap(
    resources: Resources, *, node_id: str = "static", node_cluster: str = "static", admin_port: int = 9901
) -> bootstrap_pb2.Bootstrap:
    """A bootstrap with every listener's routes and every cluster's endpoints inlined."""
    routes = {r.name: r for r in resources[ROUTE_TYPE]}
    assignments = {a.cluster_name: a for a in resources[ENDPOINT_TYPE]}
    bootstrap = bootstrap_pb2.Bootstrap()
    bootstrap.node.id = node_id
    bootstrap.node.cluster = node_cluster
    bootstrap.admin.address.CopyFrom(socket_address("127.0.0.1", admin_port))
    bootstrap.static_resources.listeners.extend(_inline_routes(item, routes) for item in resources[LISTENER_TYPE])
    bootstrap.static_resources.clusters.extend(_inline_endpoints(c, assignments) for c in resources[CLUSTER_TYPE])
    return bootstrap


def _inline_routes(source: listener_pb2.Listener, routes: dict[str, object]) -> listener_pb2.Listener:
    result = listener_pb2.Listener()
    result.CopyFrom(source)
    for chain in result.filter_chains:
        for network_filter in chain.filters:
            manager = hcm.HttpConnectionManager()
            if not network_filter.typed_config.Unpack(manager) or not manager.HasField("rds"):
                continue
            manager.route_config.CopyFrom(routes[manager.rds.route_config_name])
            network_filter.typed_config.CopyFrom(pack(manager))
    return result


def _inline_endpoints(source: cluster_pb2.Cluster, assignments: dict[str, object]) -> cluster_pb2.Cluster:
    result = cluster_pb2.Cluster()
    result.CopyFrom(source)
    if source.type != cluster_pb2.Cluster.EDS:
        return result  # a DNS cluster carries its own load assignment
    result.ClearField("eds_cluster_config")
    result.type = cluster_pb2.Cluster.STATIC
    result.load_assignment.CopyFrom(assignments[source.name])
    return result
