"""The shipped RBAC (deploy/kubernetes/rbac.yaml) is enough, with RBAC on in a real API server.

The control plane runs as the service account the manifest binds: it lists and watches, holds
the leader Lease and writes RouteTable status. Without the bindings it gets 403s, reports them
and never becomes ready, so the test can fail.
"""

from __future__ import annotations

import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.e2e import ControlPlane, wait_for
from tests.kube.apiserver import SA_NAMESPACE, ApiServer, apply, endpoint_slice, namespace, service
from tests.kube.conftest import require_binaries
from tests.kube.test_route_objects import accepted, install_crd, route_table, table_spec

KINDS = {
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
}


@pytest.fixture(scope="module")
def rbac_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    extra = ("--authorization-mode=RBAC",)
    server = ApiServer(require_binaries(), tmp_path_factory.mktemp("kube-rbac"), extra).start()
    try:
        namespace(server.client, SA_NAMESPACE)
        namespace(server.client, "shop")
        install_crd(server)
        service(server.client, "shop", "users", [{"name": "http", "port": 80}])
        endpoint_slice(
            server.client, "shop", "users-1", "users", [{"addresses": ["127.0.0.1"]}], [{"name": "http", "port": 8080}]
        )
        yield server
    finally:
        server.stop()


def apply_manifest(server: ApiServer, path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        ns = doc["metadata"].get("namespace", "")
        apply(server.client, KINDS[doc["kind"]].format(ns=ns), doc)


def control_plane(server: ApiServer, tmp: Path) -> ControlPlane:
    args = ("--kubernetes", "--kubeconfig", str(server.sa_kubeconfig), "--leader-namespace", SA_NAMESPACE)
    return ControlPlane("", tmp, extra_args=args)


def report(cp: ControlPlane) -> dict[str, Any]:
    result: dict[str, Any] = cp.get("/api/config")["kubernetes"]
    return result


def test_without_the_bindings_the_service_account_is_refused(rbac_apiserver: ApiServer, tmp_path: Path) -> None:
    cp = control_plane(rbac_apiserver, tmp_path).start(ready=False)
    try:
        wait_for(lambda: any("403" in e for e in report(cp)["errors"]), timeout=15, what="403 reported")
        time.sleep(1)
        with pytest.raises(urllib.error.HTTPError):
            cp.get("/readyz")
    finally:
        cp.stop()


def test_shipped_rbac_is_enough(rbac_apiserver: ApiServer, tmp_path: Path) -> None:
    apply_manifest(rbac_apiserver, ROOT / "deploy/kubernetes/rbac.yaml")
    route_table(rbac_apiserver, "users", table_spec("users", 18080, "shop/users:http"))
    cp = control_plane(rbac_apiserver, tmp_path).start()
    try:
        wait_for(lambda: report(cp)["leader"], timeout=15, what="the Lease held")
        condition = wait_for(lambda: accepted(rbac_apiserver, "users"), timeout=15, what="status written")
        assert condition["status"] == "True"
        assert report(cp)["errors"] == []
        assert report(cp)["ports"] >= 1
    finally:
        cp.stop()
