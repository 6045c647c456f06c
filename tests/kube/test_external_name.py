"""An ExternalName Service becomes a DNS cluster that real Envoy accepts."""

from __future__ import annotations

from pathlib import Path

from envoy.config.cluster.v3 import cluster_pb2

from controlplane.dsl import load_texts
from controlplane.model import DiscoveredPort, KubernetesState
from controlplane.render import dump, message_to_data
from controlplane.translate import build_resources
from controlplane.translate.common import CLUSTER_TYPE, ENDPOINT_TYPE
from controlplane.translate.static_bootstrap import static_bootstrap
from tests.test_envoy_accepts import envoy_validate

ROUTES = """
listeners:
  - name: public
    port: 8080
    routes:
      - match: {prefix: /db}
        to: shop/db:sql
      - match: {prefix: /}
        to: shop/users:http
"""


def test_external_name_is_a_strict_dns_cluster_envoy_accepts(envoy_binary: str, tmp_path: Path) -> None:
    state = KubernetesState(ports=(DiscoveredPort("shop", "db", 5432, "sql", dns_name="db.example.internal"),))
    model = load_texts([("routes.yaml", ROUTES)]).with_kubernetes(state)
    resources = build_resources(model)
    clusters = {c.name: c for c in resources[CLUSTER_TYPE]}
    db = clusters["shop/db:sql"]
    assert db.type == cluster_pb2.Cluster.STRICT_DNS
    address = db.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    assert (address.address, address.port_value) == ("db.example.internal", 5432)
    # Not in EDS; a target naming a Service that does not exist yet is an empty EDS cluster.
    assert [a.cluster_name for a in resources[ENDPOINT_TYPE]] == ["shop/users:http"]
    bootstrap = static_bootstrap(resources, node_cluster="edge")
    result = envoy_validate(envoy_binary, dump(message_to_data(bootstrap), "yaml"), tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
