"""Kubernetes discovery against a real kube-apiserver with etcd, real Envoy and real upstreams.

The API server is 1.20, so EndpointSlices are `discovery.k8s.io/v1beta1` here (the v1 path is
covered in test_v1.py). No controller-manager runs: the tests write EndpointSlices as the
endpoint-slice controller would.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import (
    ControlPlane,
    Envoy,
    Load,
    Upstream,
    free_port,
    listener,
    metrics_of,
    request,
    settled_hits,
    stopping,
    wait_for,
)
from tests.kube.apiserver import ApiServer, apply, endpoint_slice, namespace, service

NS = "shop"


def routes(port: int) -> str:
    return listener(port, "      - match: {prefix: /}\n        to: shop/users:http\n        retries: {attempts: 2}\n")


def slice_for(apiserver: ApiServer, upstream: Upstream, state: str = "ready") -> None:
    """One EndpointSlice per upstream (each listens on its own port), as the controller would split them."""
    conditions = {
        "ready": {"ready": True, "serving": True, "terminating": False},
        "draining": {"ready": False, "serving": True, "terminating": True},
        "gone": {"ready": False, "serving": False, "terminating": True},
    }[state]
    endpoints = [
        {"addresses": ["127.0.0.1"], "conditions": conditions, "topology": {"topology.kubernetes.io/zone": "a"}}
    ]
    ports = [{"name": "http", "port": upstream.port, "protocol": "TCP"}]
    endpoint_slice(apiserver.client, NS, f"users-{upstream.name}", "users", endpoints, ports)


def remove_slice(apiserver: ApiServer, upstream: Upstream) -> None:
    apiserver.client.delete(f"/apis/discovery.k8s.io/v1beta1/namespaces/{NS}/endpointslices/users-{upstream.name}")


def seen(port: int, count: int = 30) -> set[str]:
    return {request(port)[1] for _ in range(count)}


class Cluster:
    """A control plane watching the API server, one Envoy, and the upstreams."""

    def __init__(self, apiserver: ApiServer, tmp: Path, upstreams: list[Upstream]) -> None:
        self.apiserver, self.upstreams = apiserver, upstreams
        self.port = free_port()
        args = ("--kubernetes", "--kubeconfig", str(apiserver.kubeconfig))
        self.control_plane = ControlPlane(routes(self.port), tmp, extra_args=args)
        self.envoy = Envoy(tmp, self.control_plane.xds_port, "gw-1", "sotw")

    def config(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control_plane.get("/api/config")
        return result


@pytest.fixture
def cluster(apiserver: ApiServer, tmp_path: Path) -> Iterator[Cluster]:
    upstreams = [Upstream(name).start() for name in ("u1", "u2", "u3")]
    namespace(apiserver.client, NS)
    service(apiserver.client, NS, "users", [{"name": "http", "port": 80, "targetPort": 8080}])
    for upstream in upstreams:
        remove_if_present(apiserver, upstream)
    slice_for(apiserver, upstreams[0])
    setup = Cluster(apiserver, tmp_path, upstreams)
    setup.control_plane.start()
    setup.envoy.start()
    with stopping(*upstreams, setup.control_plane, setup.envoy):
        setup.envoy.wait_listening(setup.port)
        wait_for(lambda: request(setup.port)[1] == "u1", what="traffic to the first endpoint")
        yield setup


def remove_if_present(apiserver: ApiServer, upstream: Upstream) -> None:
    try:
        remove_slice(apiserver, upstream)
    except Exception as exc:
        if "404" not in str(exc):
            raise


def test_envoy_follows_scale_up_and_down(cluster: Cluster) -> None:
    _, u2, u3 = cluster.upstreams
    for upstream in (u2, u3):
        slice_for(cluster.apiserver, upstream)
    wait_for(lambda: seen(cluster.port) == {"u1", "u2", "u3"}, what="scale up to three endpoints")
    remove_slice(cluster.apiserver, u3)
    slice_for(cluster.apiserver, u2, "gone")  # not ready, not serving: left out at once
    wait_for(lambda: seen(cluster.port) == {"u1"}, what="scale down to one endpoint")
    report = cluster.config()["kubernetes"]
    assert report["synced"] and report["endpoint_slices"] == "discovery.k8s.io/v1beta1"
    page = urllib.request.urlopen(f"http://127.0.0.1:{cluster.control_plane.status_port}/", timeout=5).read().decode()
    assert "Kubernetes: synced" in page and "discovery.k8s.io/v1beta1" in page
    metrics = metrics_of(cluster.control_plane.status_port)
    assert metrics[("controlplane_source_sync_age_seconds", (("source", "kubernetes"),))] < 60


def test_terminating_endpoint_drains_without_failures(cluster: Cluster) -> None:
    u2 = cluster.upstreams[1]
    slice_for(cluster.apiserver, u2)
    wait_for(lambda: "u2" in seen(cluster.port), what="u2 taking traffic")
    with Load(cluster.port, threads=4, rate=200) as load:
        time.sleep(1.0)
        slice_for(cluster.apiserver, u2, "draining")
        wait_for(lambda: u2.hits == settled_hits(u2), timeout=10, what="u2 drained (no new requests)")
        hits_after_drain = u2.hits
        time.sleep(1.5)
    assert u2.hits == hits_after_drain, "a draining endpoint still got new requests"
    assert load.failures() == [], load.failures()[:5]
    assert len(load.results) > 300


def test_restart_mid_watch_relists_and_converges(cluster: Cluster) -> None:
    """A restarted API server forgets the watch's resource version: 410 Gone, then a re-list."""
    u2 = cluster.upstreams[1]
    relists = cluster.config()["kubernetes"]["relists"]
    # Other writes move etcd's revision past the versions our watches hold (as a busy cluster
    # does); the restarted server's watch cache then starts after them.
    for i in range(3):
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"churn-{i}", "namespace": NS}}
        apply(cluster.apiserver.client, f"/api/v1/namespaces/{NS}/configmaps", body)
    cluster.apiserver.restart_apiserver()
    slice_for(cluster.apiserver, u2)
    wait_for(lambda: seen(cluster.port) == {"u1", "u2"}, timeout=20, what="change after the restart applied")
    assert cluster.config()["kubernetes"]["relists"] > relists
    log = cluster.control_plane.log.read_text()
    assert "listing again" in log, "the source did not see a 410 and re-list"


def test_api_server_down_60s_loses_nothing(cluster: Cluster) -> None:
    u2 = cluster.upstreams[1]
    with Load(cluster.port, threads=4, rate=200) as load:
        cluster.apiserver.stop_apiserver()
        time.sleep(60)
        stale = cluster.config()["kubernetes"]
        cluster.apiserver.start_apiserver()
        started = time.monotonic()
        slice_for(cluster.apiserver, u2)
        wait_for(lambda: "u2" in seen(cluster.port, 20), timeout=10, what="a change after the outage converged")
        converged = time.monotonic() - started
    assert stale["errors"], "the outage was not reported"
    assert stale["sync_age"] >= 55
    assert load.failures() == [], load.failures()[:5]
    assert len(load.results) > 8000
    print(f"outage: {len(load.results)} requests, 0 failed; change converged {converged:.2f}s after the restart")


def test_no_config_before_first_sync(apiserver: ApiServer, tmp_path: Path) -> None:
    """Until the first full list the control plane is not ready and serves nothing."""
    apiserver.stop_apiserver()
    try:
        args = ("--kubernetes", "--kubeconfig", str(apiserver.kubeconfig))
        control_plane = ControlPlane(routes(free_port()), tmp_path, extra_args=args).start(ready=False)
        with stopping(control_plane):
            time.sleep(2)
            with pytest.raises(urllib.error.HTTPError) as refused:
                control_plane.get("/readyz")
            assert refused.value.code == 503
            assert control_plane.get("/api/config")["version"] == ""
            apiserver.start_apiserver()
            wait_for(lambda: control_plane.get("/readyz").get("ready"), timeout=15, what="ready after the sync")
    finally:
        if apiserver.apiserver is None:
            apiserver.start_apiserver()


@pytest.mark.parametrize(
    "args", [("--namespace", NS), ("--namespace-selector", "gateway=on")], ids=["namespace", "selector"]
)
def test_namespace_filters(apiserver: ApiServer, tmp_path: Path, args: tuple[str, ...]) -> None:
    """Only Services of the chosen namespaces become ports: by name, or by the namespace's labels."""
    labelled = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {"gateway": "on"}}}
    apply(apiserver.client, "/api/v1/namespaces", labelled)
    namespace(apiserver.client, "other")
    service(apiserver.client, NS, "users", [{"name": "http", "port": 80}])
    service(apiserver.client, "other", "hidden", [{"name": "http", "port": 80}, {"name": "admin", "port": 81}])
    everything = ("--kubernetes", "--kubeconfig", str(apiserver.kubeconfig))
    control_plane = ControlPlane(routes(free_port()), tmp_path, extra_args=(*everything, *args)).start()
    with stopping(control_plane):
        report = control_plane.get("/api/config")["kubernetes"]
        assert report["synced"] and report["ports"] == 1, report


def test_declared_service_takes_a_service_ports_endpoints(apiserver: ApiServer, tmp_path: Path) -> None:
    """`services: {users: {kubernetes: ...}}` is a cluster with that entry's policy over the port's endpoints."""
    upstream = Upstream("k1").start()
    namespace(apiserver.client, NS)
    service(apiserver.client, NS, "users", [{"name": "http", "port": 80}])
    slice_for(apiserver, upstream)
    port = free_port()
    text = listener(port, "      - match: {prefix: /}\n        to: users\n") + (
        "services:\n  users:\n    kubernetes: {namespace: shop, name: users, port: 80}\n    lb: least_request\n"
        "    health_check: {http: /, interval: 1s}\n"
    )
    args = ("--kubernetes", "--kubeconfig", str(apiserver.kubeconfig))
    control_plane = ControlPlane(text, tmp_path, extra_args=args).start()
    envoy = Envoy(tmp_path, control_plane.xds_port, "gw-1", "sotw").start()
    with stopping(upstream, control_plane, envoy):
        envoy.wait_listening(port)
        wait_for(lambda: request(port)[1] == "k1", what="traffic through the declared service")
        clusters = envoy.admin("/clusters")
        assert "users::default_priority::max_requests" in clusters
        assert f"users::127.0.0.1:{upstream.port}::health_flags::healthy" in clusters
    remove_slice(apiserver, upstream)
