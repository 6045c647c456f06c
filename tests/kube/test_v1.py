"""Kubernetes discovery over `discovery.k8s.io/v1`, against the fake API server, with real Envoy and upstreams.

The real kube-apiserver of test_discovery.py is 1.20 and serves only v1beta1 EndpointSlices, so
the v1 path (zone in `zone`, not `topology`) and the watch protocol's edges that a test must
trigger at will (a watch ended by the server, a 410 after compaction, bookmarks) run against
tests/kube/fake_apiserver.py, which speaks the same list/watch wire protocol.
"""

from __future__ import annotations

import json
import time
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
    request,
    settled_hits,
    stopping,
    wait_for,
)
from tests.kube.fake_apiserver import FakeApiServer

NS = "shop"
CLUSTER = "shop/users:http"
BOOKMARK_INTERVAL = 0.5
FILLER = 600
"""EndpointSlices of a Service that does not exist: more than the source's page of 500, so lists are paged."""

CONDITIONS = {
    "ready": {"ready": True, "serving": True, "terminating": False},
    "draining": {"ready": False, "serving": True, "terminating": True},
    "not ready": {"ready": False, "serving": False, "terminating": False},
}


def endpoint_slice(name: str, service: str, port: int, state: str = "ready", zone: str = "zone-a") -> dict[str, Any]:
    """A v1 EndpointSlice as the endpoint-slice controller writes it: one endpoint on loopback."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": NS, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": CONDITIONS[state], "zone": zone}],
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
    }


def service(namespace: str, name: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"ports": ports}}  # fmt: skip


class Cluster:
    """The fake API server, a control plane watching it, one Envoy, and three upstreams."""

    def __init__(self, fake: FakeApiServer, tmp: Path, upstreams: list[Upstream]) -> None:
        self.fake, self.upstreams = fake, upstreams
        self.port = free_port()
        routes = listener(
            self.port, f"      - match: {{prefix: /}}\n        to: {CLUSTER}\n        retries: {{attempts: 2}}\n"
        )
        args = ("--kubernetes", "--kubeconfig", str(fake.kubeconfig))
        self.control_plane = ControlPlane(routes, tmp, extra_args=args)
        self.envoy = Envoy(tmp, self.control_plane.xds_port, "gw-1", "sotw")

    def put_slice(self, upstream: Upstream, state: str = "ready", zone: str = "zone-a") -> None:
        """One slice per upstream (each listens on its own port), as the controller would split them."""
        self.fake.put(endpoint_slice(f"users-{upstream.name}", "users", upstream.port, state, zone))

    def kubernetes(self) -> dict[str, Any]:
        report: dict[str, Any] = self.control_plane.get("/api/config")["kubernetes"]
        return report

    def hosts(self) -> dict[int, tuple[str, str]]:
        """Port -> (zone, EDS health) of each host Envoy has in the Service port's cluster."""
        clusters = json.loads(self.envoy.admin("/clusters?format=json"))["cluster_statuses"]
        statuses: list[dict[str, Any]] = next(
            (c.get("host_statuses", []) for c in clusters if c["name"] == CLUSTER), []
        )
        return {
            h["address"]["socket_address"]["port_value"]: (
                h.get("locality", {}).get("zone", ""),
                h.get("health_status", {}).get("eds_health_status", ""),
            )
            for h in statuses
        }

    def seen(self, count: int = 30) -> set[str]:
        return {request(self.port)[1] for _ in range(count)}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    fake = FakeApiServer(tmp_path, bookmark_interval=BOOKMARK_INTERVAL).start()
    upstreams = [Upstream(name).start() for name in ("u1", "u2", "u3")]
    fake.put(service(NS, "users", [{"name": "http", "port": 80, "targetPort": 8080}]))
    for i in range(FILLER):
        fake.put(endpoint_slice(f"filler-{i:03}", "nobody", 9, zone="zone-z"))
    setup = Cluster(fake, tmp_path, upstreams)
    setup.put_slice(upstreams[0])
    with stopping(fake, *upstreams, setup.control_plane, setup.envoy):
        setup.control_plane.start()
        setup.envoy.start()
        setup.envoy.wait_listening(setup.port)
        wait_for(lambda: request(setup.port)[1] == "u1", what="traffic to the first endpoint")
        yield setup


def test_v1_slices_route_traffic_and_carry_zones(cluster: Cluster) -> None:
    u1, u2, _ = cluster.upstreams
    report = cluster.kubernetes()
    assert report["synced"] and report["endpoint_slices"] == "discovery.k8s.io/v1", report
    cluster.put_slice(u2, zone="zone-b")
    wait_for(lambda: cluster.seen() == {"u1", "u2"}, what="traffic to both v1 endpoints")
    expected = {u1.port: ("zone-a", "HEALTHY"), u2.port: ("zone-b", "HEALTHY")}
    wait_for(lambda: cluster.hosts() == expected, what=f"Envoy hosts {expected}")
    paths = {path for path, _ in cluster.fake.requests}
    assert "/apis/discovery.k8s.io/v1/endpointslices" in paths and not any("v1beta1" in p for p in paths), paths
    assert any("continue" in q for q in cluster.fake.lists("endpointslices")), "the list of 601 slices was not paged"


def test_terminating_endpoint_drains_and_not_ready_is_removed(cluster: Cluster) -> None:
    u1, u2, u3 = cluster.upstreams
    cluster.put_slice(u2)
    cluster.put_slice(u3)
    wait_for(lambda: cluster.seen() == {"u1", "u2", "u3"}, what="traffic to three endpoints")
    with Load(cluster.port, threads=4, rate=200) as load:
        time.sleep(1.0)
        cluster.put_slice(u2, "draining")
        wait_for(lambda: cluster.hosts().get(u2.port) == ("zone-a", "DRAINING"), what="u2 DRAINING in Envoy")
        wait_for(lambda: u2.hits == settled_hits(u2), timeout=10, what="u2 drained (no new requests)")
        u2_hits = u2.hits
        cluster.put_slice(u3, "not ready")
        wait_for(lambda: u3.port not in cluster.hosts(), what="not-ready u3 removed from Envoy")
        wait_for(lambda: u3.hits == settled_hits(u3), timeout=10, what="u3 without new requests")
        u3_hits = u3.hits
        time.sleep(1.5)
    assert u2.hits == u2_hits, "a draining endpoint still got new requests"
    assert u3.hits == u3_hits, "a not-ready endpoint still got requests"
    assert set(cluster.hosts()) == {u1.port, u2.port}
    assert load.failures() == [], load.failures()[:5]
    assert len(load.results) > 300


def test_watch_resumes_relists_after_410_and_follows_bookmarks(cluster: Cluster) -> None:
    fake = cluster.fake
    _, u2, u3 = cluster.upstreams
    relists, listed = cluster.kubernetes()["relists"], _lists(fake)
    known = int(fake.objects[("EndpointSlice", NS, "users-u1")]["metadata"]["resourceVersion"])

    # The server ends every watch (as on timeout): the source resumes from its version, no list.
    watches = len(fake.watches("endpointslices"))
    fake.end_watches()
    cluster.put_slice(u2)
    wait_for(lambda: cluster.seen() == {"u1", "u2"}, what="a change after the watches ended")
    resumed = fake.watches("endpointslices")[watches:]
    assert resumed and int(resumed[0]["resourceVersion"]) >= known, f"not resumed from the version held: {resumed}"
    assert cluster.kubernetes()["relists"] == relists and _lists(fake) == listed, "resumed with a list"

    # The server forgets its event log: the resumed watch gets 410 Expired, the source lists again.
    fake.compact()
    fake.end_watches()
    cluster.put_slice(u3)
    wait_for(lambda: cluster.seen() == {"u1", "u2", "u3"}, timeout=20, what="a change after the 410")
    # Both kinds re-list (each after its own 410), not necessarily by the time traffic moved.
    wait_for(lambda: cluster.kubernetes()["relists"] >= relists + 2, what="services and slices re-listed")
    assert _lists(fake) > listed
    assert "listing again" in cluster.control_plane.log.read_text(), "the source did not see a 410 and re-list"

    # Bookmarks move a watch's version on without a change of its kind: after a Service write the
    # EndpointSlice watch resumes from that write's version, which only a bookmark can have told it.
    relists, listed = cluster.kubernetes()["relists"], _lists(fake)
    fake.put(service("other", "unrelated", []))
    written = fake.version
    time.sleep(3 * BOOKMARK_INTERVAL)
    watches = len(fake.watches("endpointslices"))
    fake.end_watches()
    wait_for(lambda: len(fake.watches("endpointslices")) > watches, what="the EndpointSlice watch resumed")
    resumed_at = int(fake.watches("endpointslices")[watches]["resourceVersion"])
    assert resumed_at >= written, f"the EndpointSlice watch resumed from {resumed_at}, before the bookmark's {written}"
    assert cluster.kubernetes()["relists"] == relists and _lists(fake) == listed
    assert cluster.seen() == {"u1", "u2", "u3"}


def _lists(fake: FakeApiServer) -> int:
    """Full lists made (first pages only: a paged list is one list)."""
    return sum(1 for plural in ("services", "endpointslices") for q in fake.lists(plural) if "continue" not in q)
