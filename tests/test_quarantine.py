"""NACK quarantine without I/O: overlay per node group, fallback or withhold, lift on change."""

from __future__ import annotations

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.type.matcher.v3 import regex_pb2

from controlplane.alerting import node_facts
from controlplane.cache import SnapshotCache
from controlplane.cache.quarantine import QuarantineEntry, mentions, rejected_names
from controlplane.cache.snapshot import Resource
from controlplane.dsl import load_texts
from controlplane.translate import CLUSTER_TYPE, ROUTE_TYPE
from controlplane.xds.registry import NodeRegistry
from controlplane.xds.server import DiscoveryServer
from controlplane.xds.session import Session
from controlplane.xds.sotw import SotwState
from controlplane.xds.types import Nack
from tests.xds_harness import services_yaml, snapshot_of


def entry(group: str, name: str, rejected: str, fallback: object = None) -> QuarantineEntry:
    return QuarantineEntry(
        group=group,
        type_url=CLUSTER_TYPE,
        name=name,
        rejected_version=rejected,
        fallback=fallback,
        message=f"cluster {name}: bad",
        node_id="n",
        at=0.0,
    )  # type: ignore[arg-type]


def test_a_new_rejected_resource_is_withheld_for_its_group_only() -> None:
    cache = SnapshotCache()
    snapshot = snapshot_of(services_yaml("a", "b"))
    cache.publish(snapshot, {})
    bad = snapshot.get(CLUSTER_TYPE).resources["b"]
    cache.hold_back([entry("edge", "b", bad.version)])
    assert list(cache.get("edge").get(CLUSTER_TYPE).resources) == ["a"]  # type: ignore[union-attr]
    assert list(cache.get("other").get(CLUSTER_TYPE).resources) == ["a", "b"]  # type: ignore[union-attr]


def test_a_changed_resource_falls_back_to_the_accepted_version_until_the_source_changes() -> None:
    cache = SnapshotCache()
    good = snapshot_of(services_yaml("a"))
    cache.publish(good, {})
    changed = snapshot_of(services_yaml("a", connect_timeout="3s"))
    cache.publish(changed, {})
    rejected = changed.get(CLUSTER_TYPE).resources["a"]
    cache.hold_back([entry("edge", "a", rejected.version, good.get(CLUSTER_TYPE).resources["a"])])
    assert cache.get("edge").get(CLUSTER_TYPE).resources["a"] is good.get(CLUSTER_TYPE).resources["a"]  # type: ignore[union-attr]
    cache.publish(snapshot_of(services_yaml("a", connect_timeout="4s")), {})  # the fix
    assert cache.quarantine.entries == {}
    assert cache.get("edge").get(CLUSTER_TYPE).resources["a"].version != rejected.version  # type: ignore[union-attr]


def test_holding_back_notifies_streams() -> None:
    cache = SnapshotCache()
    cache.publish(snapshot_of(services_yaml("a", "b")), {})
    notices: list[int] = []
    cache.subscribe(lambda: notices.append(1))
    version = cache.get("edge").get(CLUSTER_TYPE).resources["b"].version  # type: ignore[union-attr]
    cache.hold_back([entry("edge", "b", version)])
    cache.hold_back([entry("edge", "b", version)])  # the same again: nothing new
    assert notices == [1]


@pytest.mark.parametrize(
    ("message", "name", "found"),
    [
        pytest.param("Error adding/updating listener(s) second: cannot bind", "second", True, id="listener"),
        pytest.param("cluster 'api-canary' has no healthy", "api-canary", True, id="quoted"),
        pytest.param("cluster 'api-canary' has no healthy", "api", False, id="prefix-of-another-name"),
        pytest.param("route shop.example.com invalid", "shop.example", False, id="part-of-a-dotted-name"),
    ],
)
def test_names_in_envoy_messages(message: str, name: str, found: bool) -> None:
    assert mentions(message, name) is found


def routes(name: str, regex: str) -> Resource:
    """A route configuration with one regex route."""
    match = rc.RouteMatch(safe_regex=regex_pb2.RegexMatcher(regex=regex))
    host = rc.VirtualHost(name=name, domains=["*"], routes=[rc.Route(match=match)])
    return Resource.of(name, route_pb2.RouteConfiguration(name=name, virtual_hosts=[host]))


TOO_BIG = "regex '^/o/[0-9]{1,12}$' RE2 program size of 27 > max program size of 20 set for the error level threshold."
PUBLIC, PARTNER = routes("public", "^/o/[0-9]{1,12}$"), routes("partner", "^/p$")


@pytest.mark.parametrize(
    ("message", "changed", "found"),
    [
        pytest.param("Error adding/updating listener(s) partner: bad", [PUBLIC, PARTNER], ["partner"], id="named"),
        pytest.param(TOO_BIG, [PUBLIC, PARTNER], ["public"], id="holds-the-quoted-regex"),
        pytest.param("cannot build it", [PUBLIC], ["public"], id="the-only-change"),
        pytest.param("cannot build it", [PUBLIC, PARTNER], [], id="unknown-among-several"),
        pytest.param("value '/p$' refused", [PUBLIC, PARTNER], ["partner"], id="quoted-part-of-a-value"),
        pytest.param("value '/' refused", [PUBLIC, PARTNER], [], id="quotes-under-3-characters-ignored"),
    ],
)
def test_the_rejected_resources_envoy_points_at(message: str, changed: list[Resource], found: list[str]) -> None:
    assert rejected_names(message, {r.name: r for r in changed}) == found


def test_a_quarantined_resource_keeps_its_nack_in_force_after_the_next_ack() -> None:
    """The response re-sent without the rejected resource is ACKed at once; the alert must not end then."""
    cache = SnapshotCache()
    server = DiscoveryServer(cache, NodeRegistry())
    state = SotwState(ROUTE_TYPE, last_nack=Nack("v2", "3", TOO_BIG, 13, 10.0), acked_at=10.5)
    session = Session("gw-1", "edge", delta=False, states={ROUTE_TYPE: state})
    connection = server.registry.open(base_pb2.Node(id="gw-1", cluster="edge"), "peer", "sotw", 0.0, session)
    assert node_facts(connection, server).nacks == ()
    held = QuarantineEntry("edge", ROUTE_TYPE, "public", PUBLIC.version, None, TOO_BIG, "gw-1", 10.0)
    cache.quarantine.add([held])
    assert node_facts(connection, server).nacks == (("RouteConfiguration", TOO_BIG),)


def test_every_route_knows_its_line_so_a_rejected_one_can_be_pointed_at() -> None:
    text = (
        "listeners:\n"
        "  - name: public\n    port: 10000\n    routes:\n"
        "      - match: {regex: '^/o/[0-9]+$'}\n        to: api\n"  # line 5
        "      - match: {prefix: /}\n        to: api\n"  # line 7
        "  - name: hosts\n    port: 10001\n    hosts:\n"
        "      - domains: [b.example.com, a.example.com]\n        routes:\n"
        "          - match: {prefix: /}\n            to: api\n"  # line 14
        "services:\n  api: {endpoints: ['10.0.0.1:80']}\n"
    )
    model = load_texts([("r.yaml", text)])
    assert {k: o.line for k, o in model.origins.items() if k.startswith("route/")} == {
        "route/public/public/0": 5,
        "route/public/public/1": 7,
        "route/hosts/a.example.com/0": 14,
    }
