"""Session without gRPC: which requests make it work out its responses again.

After a push every Envoy ACKs; with 50 Envoys that is 50 walks over every type per change on
the event loop that also stamps the last ACK. An ACK of a response built from the current
snapshot cannot make anything due, so the session answers it without that walk; everything else
(a cluster ACK, new names, a response from an older snapshot) still counts.
"""

from __future__ import annotations

from typing import Any

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2

from controlplane.cache import Snapshot
from controlplane.translate import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from controlplane.xds.session import Session
from controlplane.xds.wire import Outgoing
from tests.xds_harness import services_yaml, snapshot_of

FIRST = snapshot_of(services_yaml("a", "b"))
MOVED = snapshot_of(services_yaml("a", "b").replace("127.0.0.1:8081", "127.0.0.1:9081"))
MOVED_AGAIN = snapshot_of(services_yaml("a", "b").replace("127.0.0.1:8081", "127.0.0.1:7081"))
ROUTES = ["main"]


def request(type_url: str, names: list[str] = (), version: str = "", nonce: str = "", **extra: Any) -> Any:  # type: ignore[assignment]
    return discovery_pb2.DiscoveryRequest(
        type_url=type_url, resource_names=list(names), version_info=version, response_nonce=nonce, **extra
    )


def version_of(response: Outgoing) -> str:
    return str(discovery_pb2.DiscoveryResponse.FromString(response.payload).version_info)


def ack(session: Session, response: Outgoing, names: list[str]) -> str:
    return session.on_request(request(response.type_url, names, version_of(response), response.nonce), 0.0)


def names_for(type_url: str) -> list[str]:
    return {ENDPOINT_TYPE: ["a", "b"], ROUTE_TYPE: ROUTES}.get(type_url, [])


def synced(snapshot: Snapshot) -> Session:
    """A SotW session that subscribed like Envoy and ACKed everything of `snapshot`."""
    session = Session("n", "edge", delta=False)
    session.on_request(request(CLUSTER_TYPE, node=base_pb2.Node(id="n", cluster="edge")), 0.0)
    subscriptions = {
        CLUSTER_TYPE: [(ENDPOINT_TYPE, ["a", "b"]), (LISTENER_TYPE, [])],
        LISTENER_TYPE: [(ROUTE_TYPE, ROUTES)],
    }
    for _ in range(6):
        for response in session.responses(snapshot):
            ack(session, response, names_for(response.type_url))
            for type_url, names in subscriptions.pop(response.type_url, []):
                session.on_request(request(type_url, names), 0.0)
    assert all(not s.in_flight and s.acked_version == snapshot.get(t).version for t, s in session.states.items())
    assert len(session.states) == 4
    return session


class Walks:
    """Counts the session's walks over every type."""

    def __init__(self, session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        walk = session._next

        def counted(*args: Any) -> Any:
            self.count += 1
            return walk(*args)

        monkeypatch.setattr(session, "_next", counted)


def test_the_ack_of_a_response_from_the_current_snapshot_is_answered_without_a_walk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session = synced(FIRST)
    walks = Walks(session, monkeypatch)
    [eds] = session.responses(MOVED)
    assert (eds.type_url, walks.count) == (ENDPOINT_TYPE, 1)
    assert ack(session, eds, ["a", "b"]) == "ack"
    assert session.responses(MOVED) == []
    assert walks.count == 1


def test_a_change_published_while_a_response_is_in_flight_goes_out_on_its_ack() -> None:
    session = synced(FIRST)
    [eds] = session.responses(MOVED)
    assert session.responses(MOVED_AGAIN) == []  # one response per type in flight
    ack(session, eds, ["a", "b"])
    [again] = session.responses(MOVED_AGAIN)
    assert version_of(again) == MOVED_AGAIN.get(ENDPOINT_TYPE).version


def test_an_ack_that_changes_the_names_is_worked_out_again(monkeypatch: pytest.MonkeyPatch) -> None:
    session = synced(FIRST)
    [eds] = session.responses(MOVED)
    walks = Walks(session, monkeypatch)
    ack(session, eds, ["a"])  # Envoy dropped cluster b in the same request
    session.responses(MOVED)
    assert walks.count == 1
    assert session.states[ENDPOINT_TYPE].names == frozenset({"a"})


def test_a_cluster_ack_is_worked_out_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CDS ACK lets listeners and routes go, and removes held clusters: never skipped."""
    session = synced(FIRST)
    grown = snapshot_of(services_yaml("a", "b", "c"))
    [cds] = session.responses(grown)
    assert cds.type_url == CLUSTER_TYPE
    walks = Walks(session, monkeypatch)
    ack(session, cds, [])
    assert session.responses(grown) == []  # routes wait until Envoy asks for c's endpoints
    assert walks.count == 1
    session.on_request(request(ENDPOINT_TYPE, ["a", "b", "c"]), 0.0)
    assert [r.type_url for r in session.responses(grown)] == [ENDPOINT_TYPE, ROUTE_TYPE]


def test_a_stale_request_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    session = synced(FIRST)
    [eds] = session.responses(MOVED)
    walks = Walks(session, monkeypatch)
    assert session.on_request(request(ENDPOINT_TYPE, ["a", "b"], "", "no-such-nonce"), 0.0) == "stale"
    assert session.responses(MOVED) == []
    assert walks.count == 0
    ack(session, eds, ["a", "b"])
    assert session.responses(MOVED) == []
