"""Limits on the xDS port, in process: streams per peer, names per request and stream, connections."""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
from typing import Any

import grpc
import pytest
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from controlplane.translate import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE
from controlplane.xds import grpc_server
from controlplane.xds.limits import (
    MAX_NACK_MESSAGE_BYTES,
    MAX_NAME_BYTES,
    MAX_NAMES_PER_REQUEST,
    MAX_TYPES_PER_STREAM,
    LimitExceeded,
    Limits,
    PeerStreams,
    ThrottledLog,
    check_request,
    peer_address,
)
from controlplane.xds.server import Inbox
from controlplane.xds.session import Session
from controlplane.xds.sotw import SotwState
from controlplane.xds.wire import Wire
from tests.xds_harness import Client, run, running_server, services_yaml, snapshot_of

Sotw = discovery_pb2.DiscoveryRequest
Delta = discovery_pb2.DeltaDiscoveryRequest


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        pytest.param("ipv4:10.1.2.3:50000", "10.1.2.3", id="ipv4"),
        pytest.param("ipv6:[::1]:50000", "::1", id="ipv6"),
        pytest.param("ipv6:[fe80::1%eth0]:1", "fe80::1%eth0", id="ipv6-zone"),
        pytest.param("unix:/run/cp.sock", "unix:/run/cp.sock", id="unix-socket-whole"),
    ],
)
def test_a_peer_is_its_ip_address_whatever_the_port(peer: str, address: str) -> None:
    assert peer_address(peer) == address


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_refusals_are_logged_once_per_interval_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    throttled = ThrottledLog(logging.getLogger("test.limits"), interval=10.0, clock=clock)
    caplog.set_level(logging.WARNING, "test.limits")
    logged = [throttled.warning(f"refused {i}") for i in range(1000)]
    clock.now = 10.5
    throttled.warning("refused again")
    assert logged.count(True) == 1
    assert [r.getMessage() for r in caplog.records] == [
        "refused 0",
        "refused again (and 999 more like it in the last 10s)",
    ]


def test_a_peer_at_its_limit_is_refused_until_one_of_its_rpcs_ends() -> None:
    streams = PeerStreams(2, ThrottledLog(logging.getLogger("test.limits")))
    assert streams.acquire("ipv4:10.0.0.1:1") and streams.acquire("ipv4:10.0.0.1:2")
    assert not streams.acquire("ipv4:10.0.0.1:3")  # a third connection counts the same
    assert streams.acquire("ipv4:10.0.0.2:1")  # another address has its own count
    streams.release("ipv4:10.0.0.1:1")
    assert streams.acquire("ipv4:10.0.0.1:4")
    assert streams.refused == 1
    for peer in ("ipv4:10.0.0.1:2", "ipv4:10.0.0.1:4", "ipv4:10.0.0.2:1"):
        streams.release(peer)
    assert streams.open == {}  # nothing kept for peers that left


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        pytest.param(Sotw(resource_names=["n"] * (MAX_NAMES_PER_REQUEST + 1)), "RESOURCE_EXHAUSTED", id="sotw-names"),
        pytest.param(
            Delta(resource_names_subscribe=["n"] * MAX_NAMES_PER_REQUEST, resource_names_unsubscribe=["m"]),
            "RESOURCE_EXHAUSTED",
            id="delta-subscribe-plus-unsubscribe",
        ),
        pytest.param(
            Delta(initial_resource_versions={f"n{i}": "v" for i in range(MAX_NAMES_PER_REQUEST + 1)}),
            "RESOURCE_EXHAUSTED",
            id="delta-initial-versions",
        ),
        pytest.param(Sotw(type_url="t" * (MAX_NAME_BYTES + 1)), "INVALID_ARGUMENT", id="long-type-url"),
    ],
)
def test_a_request_over_a_limit_is_refused_by_its_counts_alone(request_: Any, code: str) -> None:
    with pytest.raises(LimitExceeded) as refused:
        check_request(request_)
    assert refused.value.code == code


def test_a_request_at_the_limits_passes() -> None:
    check_request(Sotw(type_url=CLUSTER_TYPE, resource_names=["n"] * MAX_NAMES_PER_REQUEST))


def _delta_session(max_names: int = 10) -> Session:
    return Session(node_id="n", node_group="", delta=True, max_names=max_names)


def test_delta_subscriptions_add_up_over_a_stream_and_over_types() -> None:
    session = _delta_session(max_names=10)
    session.on_request(Delta(type_url=ENDPOINT_TYPE, resource_names_subscribe=[f"a{i}" for i in range(6)]), 0)
    session.on_request(Delta(type_url=ENDPOINT_TYPE, resource_names_subscribe=["a0", "a1", "a2"]), 0)  # held already
    with pytest.raises(LimitExceeded, match="would hold 11 resource names; at most 10"):
        session.on_request(Delta(type_url=LISTENER_TYPE, resource_names_subscribe=[f"b{i}" for i in range(5)]), 0)
    assert LISTENER_TYPE not in session.states  # refused before anything changed


def test_delta_initial_versions_count_towards_the_stream() -> None:
    session = _delta_session(max_names=10)
    session.on_request(Delta(type_url=CLUSTER_TYPE, initial_resource_versions={f"c{i}": "v" for i in range(8)}), 0)
    with pytest.raises(LimitExceeded):
        session.on_request(Delta(type_url=ENDPOINT_TYPE, resource_names_subscribe=["x", "y", "z"]), 0)


def test_a_sotw_request_replaces_its_names_so_they_do_not_add_up() -> None:
    session = Session(node_id="n", node_group="", delta=False, max_names=10)
    for _ in range(5):
        session.on_request(Sotw(type_url=ENDPOINT_TYPE, resource_names=[f"e{i}" for i in range(8)]), 0)
    with pytest.raises(LimitExceeded):
        session.on_request(Sotw(type_url=LISTENER_TYPE, resource_names=["l1", "l2", "l3"]), 0)


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(Sotw(type_url=ENDPOINT_TYPE, resource_names=["x" * (MAX_NAME_BYTES + 1)]), id="sotw-name"),
        pytest.param(Delta(type_url=ENDPOINT_TYPE, resource_names_subscribe=["x" * 600]), id="delta-name"),
        pytest.param(Delta(type_url=ENDPOINT_TYPE, initial_resource_versions={"a": "v" * 600}), id="delta-version"),
    ],
)
def test_a_name_longer_than_any_served_one_is_invalid(request_: Any) -> None:
    session = Session(node_id="n", node_group="", delta=isinstance(request_, Delta))
    with pytest.raises(LimitExceeded) as refused:
        session.on_request(request_, 0)
    assert refused.value.code == "INVALID_ARGUMENT"


def test_a_stream_may_ask_for_a_bounded_number_of_types() -> None:
    session = _delta_session()
    for i in range(MAX_TYPES_PER_STREAM):
        session.on_request(Delta(type_url=f"type.googleapis.com/t{i}"), 0)
    with pytest.raises(LimitExceeded, match="more than 16 types"):
        session.on_request(Delta(type_url="type.googleapis.com/one-more"), 0)


def test_a_huge_nack_message_is_kept_clipped() -> None:
    state = SotwState(CLUSTER_TYPE)
    state.on_request(Sotw(type_url=CLUSTER_TYPE), 0)
    sent = state.respond({}, "v1", Wire())
    assert sent is not None
    nack = Sotw(
        type_url=CLUSTER_TYPE, response_nonce=sent.nonce, error_detail=status_pb2.Status(message="x" * 4_000_000)
    )
    assert state.on_request(nack, 0) == "nack"
    assert state.last_nack is not None
    assert len(state.last_nack.message) < MAX_NACK_MESSAGE_BYTES + 100


def test_queued_requests_are_bounded_in_bytes_but_one_always_fits() -> None:
    async def scenario() -> tuple[bool, bool]:
        inbox = Inbox(limit=16, max_bytes=100)
        await asyncio.wait_for(inbox.put("big", 500), 1)  # larger than the budget, alone: admitted
        second = asyncio.create_task(inbox.put("small", 10))
        await asyncio.sleep(0.05)
        waited = not second.done()
        assert await inbox.next() == "big"
        await asyncio.wait_for(second, 1)
        return waited, await inbox.next() == "small"

    assert run(scenario()) == (True, True)


async def _status_of(call: Any) -> tuple[grpc.StatusCode, str]:
    """The status a call ended with (the client's reader task consumes its responses)."""
    return await call.code(), await call.details() or ""


def test_over_the_peer_limit_a_new_stream_is_refused_and_the_others_are_served() -> None:
    async def scenario() -> None:
        async with running_server(limits=Limits(streams_per_peer=3)) as h:
            h.publish(snapshot_of(services_yaml("a")))
            clients = [Client(h.port, node_id=f"c{i}") for i in range(3)]
            for client in clients:
                await client.request(CLUSTER_TYPE)
                await client.read()
            extra = Client(h.port, node_id="extra")
            await extra.request(CLUSTER_TYPE)
            code, details = await asyncio.wait_for(_status_of(extra.call), 5)
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "--max-streams-per-peer" in details
            await clients[0].close()
            again = Client(h.port, node_id="again")  # a slot freed: admitted
            await again.request(CLUSTER_TYPE)
            assert (await again.read()).type_url == CLUSTER_TYPE
            for client in (*clients[1:], extra, again):
                await client.close()

    run(scenario())


def test_a_delta_stream_over_its_name_limit_ends_with_a_clear_status() -> None:
    async def scenario() -> tuple[grpc.StatusCode, str, int]:
        async with running_server(limits=Limits(names_per_stream=1_000)) as h:
            h.publish(snapshot_of(services_yaml("a")))
            client = Client(h.port, delta=True)
            # Two batches of 600 new names: the second would make 1,200. (More writes after the
            # server ended the stream would make grpcio's client report INTERNAL instead.)
            for batch in range(2):
                await client.delta(ENDPOINT_TYPE, subscribe=[f"svc-{batch}-{i}" for i in range(600)])
            code, details = await asyncio.wait_for(_status_of(client.call), 5)
            await client.close()
            return code, details, len(h.registry.connections)

    code, details, connections = run(scenario())
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, details
    assert details == "stream would hold 1200 resource names; at most 1000 allowed"
    assert connections == 0  # the stream and its state are gone


def test_the_global_stream_limit_refuses_with_resource_exhausted() -> None:
    async def scenario() -> list[str]:
        async with running_server(limits=Limits(streams=2)) as h:
            h.publish(snapshot_of(services_yaml("a")))
            clients = [Client(h.port, node_id=f"c{i}") for i in range(3)]
            for client in clients:
                await client.request(CLUSTER_TYPE)
            outcomes = [await _first_response_or_status(client) for client in clients]
            for client in clients:
                await client.close()
            return outcomes

    assert sorted(run(scenario())) == ["RESOURCE_EXHAUSTED", "answered", "answered"]


async def _first_response_or_status(client: Client) -> str:
    """`answered` when a response arrives first, else the name of the status the call ended with."""
    read = asyncio.ensure_future(client.read())
    ended = asyncio.ensure_future(client.call.code())
    done, pending = await asyncio.wait({read, ended}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return "answered" if read in done else str(ended.result().name)


def test_a_connection_that_never_speaks_http2_is_closed_after_the_handshake_timeout() -> None:
    async def scenario() -> bytes:
        async with running_server(limits=Limits(handshake_timeout_ms=300)) as h:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, _read_until_closed, h.port, 5.0)

    received = run(scenario())  # a read deadline (5 s, not 0.3 s) would raise instead
    assert b"Did not receive HTTP/2 settings" in received, received  # the server's GOAWAY says why


def _read_until_closed(port: int, timeout: float) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        received = b""
        while chunk := s.recv(65536):
            received += chunk
        return received


def test_the_connection_cap_stays_below_the_open_file_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 1024))
    monkeypatch.setattr(resource, "setrlimit", lambda *_: None)
    assert grpc_server.connection_cap(10_000) == 1024 - grpc_server.RESERVED_FILE_DESCRIPTORS
    assert grpc_server.connection_cap(100) == 100


def test_the_soft_file_limit_is_raised_towards_the_hard_one(monkeypatch: pytest.MonkeyPatch) -> None:
    raised: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 65536))
    monkeypatch.setattr(resource, "setrlimit", lambda _, limits: raised.append(limits))
    assert grpc_server.connection_cap(10_000) == 10_000
    assert raised == [(10_000 + grpc_server.RESERVED_FILE_DESCRIPTORS, 65536)]
