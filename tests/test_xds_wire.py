"""Responses built once and shared by streams in the same state (controlplane/xds/wire.py)."""

from __future__ import annotations

from envoy.service.discovery.v3 import discovery_pb2

from controlplane.cache import SnapshotCache
from controlplane.translate import CLUSTER_TYPE, ENDPOINT_TYPE
from controlplane.xds.registry import NodeRegistry
from controlplane.xds.server import DiscoveryServer
from controlplane.xds.session import Session
from controlplane.xds.wire import Wire
from tests.xds_harness import Client, run, running_server, services_yaml, snapshot_of

Sotw = discovery_pb2.DiscoveryRequest
Delta = discovery_pb2.DeltaDiscoveryRequest
SNAPSHOT = snapshot_of(services_yaml("a", "b", "c"))


def clusters_session(wire: Wire, delta: bool = False) -> Session:
    session = Session(node_id="n", node_group="", delta=delta, wire=wire)
    session.on_request(Delta(type_url=CLUSTER_TYPE) if delta else Sotw(type_url=CLUSTER_TYPE), 0)
    return session


def test_streams_in_the_same_state_send_the_same_bytes() -> None:
    wire = Wire()
    for delta in (False, True):
        first = clusters_session(wire, delta).responses(SNAPSHOT)
        second = clusters_session(wire, delta).responses(SNAPSHOT)
        assert len(first) == 1
        assert second[0] is first[0]


def test_the_shared_bytes_are_the_response() -> None:
    (sent,) = clusters_session(Wire()).responses(SNAPSHOT)
    response = discovery_pb2.DiscoveryResponse.FromString(sent.payload)
    assert (response.type_url, response.nonce, len(response.resources)) == (CLUSTER_TYPE, sent.nonce, sent.count)
    assert response.version_info == SNAPSHOT.get(CLUSTER_TYPE).version
    assert [r.value for r in response.resources] == [
        r.serialized for r in SNAPSHOT.get(CLUSTER_TYPE).resources.values()
    ]


def test_a_stream_is_never_handed_the_nonce_it_sent_last() -> None:
    wire = Wire()
    resources = list(SNAPSHOT.get(ENDPOINT_TYPE).resources.values())
    first = wire.sotw(ENDPOINT_TYPE, "v1", resources, everything=True, avoid="")
    assert wire.sotw(ENDPOINT_TYPE, "v1", resources, everything=True, avoid="") is first
    again = wire.sotw(ENDPOINT_TYPE, "v1", resources, everything=True, avoid=first.nonce)
    assert again.nonce != first.nonce
    sent, resent = (discovery_pb2.DiscoveryResponse.FromString(r.payload) for r in (first, again))
    assert sent.resources == resent.resources


def test_different_resources_or_removals_are_different_responses() -> None:
    wire = Wire()
    a, b = list(SNAPSHOT.get(ENDPOINT_TYPE).resources.values())[:2]
    assert wire.sotw(ENDPOINT_TYPE, "v1", [a], everything=False, avoid="") is not wire.sotw(
        ENDPOINT_TYPE, "v1", [b], everything=False, avoid=""
    )
    assert wire.delta(ENDPOINT_TYPE, "v1", [a], [], avoid="") is not wire.delta(ENDPOINT_TYPE, "v1", [a], ["x"], "")


def test_past_the_budget_responses_are_built_per_stream() -> None:
    wire = Wire(max_bytes=10)
    resources = list(SNAPSHOT.get(CLUSTER_TYPE).resources.values())
    first = wire.sotw(CLUSTER_TYPE, "v1", resources, everything=True, avoid="")
    assert wire.sotw(CLUSTER_TYPE, "v1", resources, everything=True, avoid="") is not first


def test_a_new_snapshot_forgets_the_shared_responses() -> None:
    cache = SnapshotCache()
    server = DiscoveryServer(cache, NodeRegistry())
    cache.publish(SNAPSHOT, {})
    (first,) = clusters_session(server.wire).responses(SNAPSHOT)
    cache.publish(snapshot_of(services_yaml("a")), {})
    (second,) = clusters_session(server.wire).responses(SNAPSHOT)
    assert second is not first
    assert second.nonce != first.nonce


def test_two_envoys_in_the_same_state_get_one_response_over_grpc() -> None:
    async def scenario() -> None:
        async with running_server() as h:
            h.publish(SNAPSHOT)
            one, two = Client(h.port, node_id="one"), Client(h.port, node_id="two")
            await one.request(CLUSTER_TYPE)
            await two.request(CLUSTER_TYPE)
            first, second = await one.read(), await two.read()
            assert first == second
            assert Client.names_of(first) == ["a", "b", "c"]
            await one.close()
            await two.close()

    run(scenario())
