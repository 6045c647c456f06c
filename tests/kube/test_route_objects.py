"""Routes as Kubernetes objects (RouteTable), status written back by the Lease holder only.

Against a real kube-apiserver: the CRD manifest the project ships is applied as is; an invalid
RouteTable gets the precise errors in its status while the others keep serving through a real
Envoy; two replicas elect one status writer with a real Lease.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.sources.kubernetes.client import KubeError
from tests.conftest import ROOT
from tests.e2e import ControlPlane, Envoy, Load, Upstream, free_port, request, stopping, wait_for
from tests.kube.apiserver import ApiServer, apply, endpoint_slice, namespace, service

NS = "shop"
TABLES = f"/apis/controlplane.dev/v1alpha1/namespaces/{NS}/routetables"


def install_crd(apiserver: ApiServer) -> None:
    crd = yaml.safe_load((ROOT / "deploy/kubernetes/crd-routetables.yaml").read_text())
    apply(apiserver.client, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    wait_for(lambda: _listable(apiserver), timeout=20, what="RouteTable CRD established")


def _listable(apiserver: ApiServer) -> bool:
    try:
        apiserver.client.get(TABLES)
        return True
    except KubeError:
        return False


def route_table(apiserver: ApiServer, name: str, spec: dict[str, Any]) -> None:
    body = {"apiVersion": "controlplane.dev/v1alpha1", "kind": "RouteTable",
            "metadata": {"name": name, "namespace": NS}, "spec": spec}  # fmt: skip
    apply(apiserver.client, TABLES, body)


def table_spec(listener: str, port: int, target: str, timeout: Any = "5s") -> dict[str, Any]:
    route = {"match": {"prefix": "/"}, "to": target, "timeout": timeout}
    return {"listeners": [{"name": listener, "port": port, "address": "127.0.0.1", "routes": [route]}]}


def accepted(apiserver: ApiServer, name: str) -> dict[str, Any] | None:
    """The object's Accepted condition, once written for its current generation."""
    obj = apiserver.client.get(f"{TABLES}/{name}")
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition["type"] == "Accepted" and condition.get("observedGeneration") == obj["metadata"]["generation"]:
            return dict(condition)
    return None


def serve_args(apiserver: ApiServer) -> tuple[str, ...]:
    return ("--kubernetes", "--kubeconfig", str(apiserver.kubeconfig), "--leader-namespace", NS)


@pytest.fixture
def backends(apiserver: ApiServer) -> Iterator[dict[str, Upstream]]:
    upstreams = {name: Upstream(name).start() for name in ("users", "orders")}
    namespace(apiserver.client, NS)
    install_crd(apiserver)
    for name, upstream in upstreams.items():
        service(apiserver.client, NS, name, [{"name": "http", "port": 80}])
        ports = [{"name": "http", "port": upstream.port, "protocol": "TCP"}]
        endpoint_slice(apiserver.client, NS, f"{name}-1", name, [{"addresses": ["127.0.0.1"]}], ports)
    with stopping(*upstreams.values()):
        yield upstreams


def test_invalid_route_table_gets_its_errors_and_the_rest_serves(
    apiserver: ApiServer, backends: dict[str, Upstream], tmp_path: Path
) -> None:
    users_port, orders_port = free_port(), free_port()
    route_table(apiserver, "users", table_spec("users", users_port, "shop/users:http"))
    route_table(apiserver, "orders", table_spec("orders", orders_port, "shop/orders:http", timeout="fast"))
    control_plane = ControlPlane("", tmp_path, extra_args=serve_args(apiserver)).start()
    envoy = Envoy(tmp_path, control_plane.xds_port, "gw-1", "sotw").start()
    with stopping(control_plane, envoy):
        envoy.wait_listening(users_port)
        wait_for(lambda: request(users_port)[1] == "users", what="the valid RouteTable serving")
        rejected = wait_for(lambda: accepted(apiserver, "orders"), timeout=15, what="status on the invalid object")
        assert rejected["status"] == "False" and rejected["reason"] == "Invalid"
        assert rejected["message"].startswith("RouteTable shop/orders:"), rejected["message"]
        assert "listeners[0].routes[0].timeout" in rejected["message"], rejected["message"]
        assert wait_for(lambda: accepted(apiserver, "users"))["status"] == "True"
        with Load(users_port, threads=2, rate=100) as load:
            time.sleep(1.0)
            route_table(apiserver, "orders", table_spec("orders", orders_port, "shop/orders:http"))
            wait_for(lambda: (accepted(apiserver, "orders") or {}).get("status") == "True", what="fixed object")
            envoy.wait_listening(orders_port)
            wait_for(lambda: request(orders_port)[1] == "orders", what="the fixed RouteTable serving")
            time.sleep(1.0)
        assert load.failures() == [] and len(load.results) > 50
        assert "RouteTable shop/orders" in control_plane.get("/api/config")["sources"]


def test_one_replica_writes_status_and_another_takes_over(
    apiserver: ApiServer, backends: dict[str, Upstream], tmp_path: Path
) -> None:
    port = free_port()
    route_table(apiserver, "users", table_spec("users", port, "shop/users:http"))
    replicas = [ControlPlane("", tmp_path, extra_args=serve_args(apiserver), name=name).start() for name in ("a", "b")]
    with stopping(*replicas):

        def leaders() -> list[ControlPlane]:
            return [r for r in replicas if r.process and r.get("/api/config")["kubernetes"]["leader"]]

        first = wait_for(lambda: leaders() if len(leaders()) == 1 else None, what="one leader")[0]
        follower = next(r for r in replicas if r is not first)
        time.sleep(3 * 2.0)  # a few renew periods: the follower must stay a follower
        assert [r.get("/api/config")["kubernetes"]["leader"] for r in (first, follower)] == [True, False]
        wait_for(lambda: accepted(apiserver, "users"), what="status written by the leader")
        assert follower.get("/api/config")["kubernetes"]["status_writes"] == 0
        started = time.monotonic()
        first.stop()  # a graceful stop releases the Lease
        wait_for(lambda: follower.get("/api/config")["kubernetes"]["leader"], timeout=10, what="takeover")
        takeover = time.monotonic() - started
        route_table(apiserver, "users", table_spec("users", port, "shop/users:http", timeout="fast"))
        rejected = wait_for(lambda: accepted(apiserver, "users"), timeout=15, what="status from the new leader")
        assert rejected["status"] == "False"
        assert follower.get("/api/config")["kubernetes"]["status_writes"] >= 1
        print(f"takeover after a graceful stop: {takeover:.2f}s")
