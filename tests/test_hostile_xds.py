"""Hostile clients against a running `controlplane serve`, with two real Envoys (SotW and delta) connected.

After each attack: the server still answers gRPC health, a route edit still reaches both Envoys
(ACKed, and traffic follows), and the control plane's resident memory stays under RSS_LIMIT_MB.
Run with `-s` to see the memory figures.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from controlplane.translate import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE
from controlplane.xds.limits import MAX_NAMES_PER_REQUEST, MAX_NAMES_PER_STREAM, MAX_STREAMS_PER_PEER
from tests.e2e import ControlPlane, Envoy, Upstream, free_port, request, stopping, wait_for

pytestmark = pytest.mark.envoy

RSS_LIMIT_MB = 400
"""The control plane's resident memory during and after every attack (it starts near 100 MB)."""
ATTACK_STREAMS = 3_000
STREAMS_PER_CHANNEL = 60
"""Under the server's 64 concurrent streams per connection, so every stream reaches the server."""
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
JUNK = random.Random(8).randbytes(64 * 1024)
"""Random bytes, the same on every run."""
TLS_CLIENT_HELLO_START = bytes.fromhex("16030100c8010000c40303") + JUNK[:32]
"""A TLS record header and the start of a ClientHello, cut off: TLS spoken to a plaintext port."""


@dataclass
class Mesh:
    """A control plane, two upstreams and two Envoys, one per xDS flavour, each in its own node group."""

    control_plane: ControlPlane
    ports: dict[str, int]
    """Listener port of each Envoy, by API."""
    edit: Callable[[str], None]
    """Rewrite the route file so that both listeners route to this upstream."""
    target: str = "a"
    figures: dict[str, float] = field(default_factory=dict)
    """Resident memory (MB) of the control plane after each attack."""

    @property
    def pid(self) -> int:
        assert self.control_plane.process is not None
        return self.control_plane.process.pid

    def memory(self, key: str) -> int:
        """`VmRSS` or `VmHWM` (the peak) of the control plane, in MB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) // 1024
        raise AssertionError(f"no {key} in /proc/{self.pid}/status")


def routes(ports: dict[str, int], target: str, a: Upstream, b: Upstream) -> str:
    listeners = "".join(
        f"  - name: {api}\n    port: {port}\n    address: 127.0.0.1\n    nodes: [g-{api}]\n"
        f"    routes:\n      - match: {{prefix: /}}\n        to: {target}\n"
        for api, port in ports.items()
    )
    services = "".join(f"  {u.name}: {{endpoints: ['{u.address}']}}\n" for u in (a, b))
    return f"listeners:\n{listeners}services:\n{services}"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    tmp = tmp_path_factory.mktemp("hostile")
    a, b = Upstream("a").start(), Upstream("b").start()
    ports = {"sotw": free_port(), "delta": free_port()}
    cp = ControlPlane(routes(ports, "a", a, b), tmp, ("--log-level", "info")).start()
    envoys = [Envoy(tmp, cp.xds_port, f"gw-{api}", api, node_cluster=f"g-{api}").start() for api in ports]
    with stopping(a, b, cp, *envoys):
        for port in ports.values():
            wait_for(lambda p=port: request(p)[1] == "a", what="both Envoys routing to a")  # type: ignore[misc]
        found = Mesh(cp, ports, lambda target: cp.edit(routes(ports, target, a, b)))
        found.figures["at start"] = found.memory("VmRSS")
        yield found
        found.figures["peak (VmHWM)"] = found.memory("VmHWM")
        print("\ncontrol plane memory, MB:", ", ".join(f"{k}: {v:.0f}" for k, v in found.figures.items()))


def still_serving(mesh: Mesh, attack: str) -> None:
    """Health answers, an edit reaches both Envoys (ACKed, traffic follows), memory is bounded."""
    assert health(mesh.control_plane.xds_port) == health_pb2.HealthCheckResponse.SERVING
    mesh.target = "b" if mesh.target == "a" else "a"
    mesh.edit(mesh.target)
    for api, port in mesh.ports.items():
        wait_for(lambda p=port: request(p)[1] == mesh.target, timeout=10, what=f"{api} Envoy routing to {mesh.target}")  # type: ignore[misc]
    wait_for(lambda: envoys_acked(mesh.control_plane), timeout=10, what="both Envoys ACKed the edit")
    rss = mesh.memory("VmRSS")
    mesh.figures[attack] = rss
    assert rss < RSS_LIMIT_MB, mesh.figures


def health(port: int) -> Any:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status


def envoys_acked(cp: ControlPlane) -> bool:
    nodes = [n for n in cp.nodes() if n["node_id"].startswith("gw-")]
    states = [t for n in nodes for t in n["types"]]
    return len(nodes) == 2 and all(t["acked_version"] == t["sent_version"] and not t["in_flight"] for t in states)


def read_until_closed(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send `data` on a fresh connection and read until the server closes it (a deadline raises)."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            while chunk := s.recv(65536):
                received += chunk
                assert len(received) < 1_000_000, "the server keeps talking to garbage"
        except ConnectionResetError:
            pass  # closed with some of our junk unread: the kernel resets instead of a clean close
    return received


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(JUNK, id="garbage"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: controlplane\r\n\r\n", id="http1"),
        pytest.param(b"POST /envoy.service.discovery.v3.AggregatedDiscoveryService HTTP/1.1\r\n\r\n", id="http1-post"),
        pytest.param(TLS_CLIENT_HELLO_START, id="half-tls-client-hello"),
        pytest.param(PREFACE + JUNK, id="http2-preface-then-garbage"),
        pytest.param(PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" + b"\xff" * 1000, id="http2-settings-then-junk"),
    ],
)
def test_junk_on_the_grpc_port_is_dropped(mesh: Mesh, data: bytes) -> None:
    port = mesh.control_plane.xds_port
    for _ in range(20):
        read_until_closed(port, data)
    still_serving(mesh, "junk")


def _node(name: str) -> base_pb2.Node:
    return base_pb2.Node(id=name, cluster="attacker")


async def _single_request(port: int, message: Any, delta: bool) -> grpc.StatusCode:
    """Open one ADS stream with a raised client send limit, send `message`, return how the stream ended."""
    options = [("grpc.max_send_message_length", 256 * 1024 * 1024), ("grpc.use_local_subchannel_pool", 1)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        call = stub.DeltaAggregatedResources() if delta else stub.StreamAggregatedResources()
        await call.write(message)
        return await asyncio.wait_for(call.code(), 30)


def test_a_64_mib_request_is_refused(mesh: Mesh) -> None:
    names = ["x" * (1024 * 1024)] * 64  # 64 names of 1 MiB
    message = discovery_pb2.DiscoveryRequest(type_url=CLUSTER_TYPE, node=_node("big"), resource_names=names)
    assert message.ByteSize() > 64 * 1024 * 1024
    assert asyncio.run(_single_request(mesh.control_plane.xds_port, message, delta=False)) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    still_serving(mesh, "64 MiB request")


def test_a_million_names_in_one_request_is_refused(mesh: Mesh) -> None:
    names = [f"svc-{i}" for i in range(1_000_000)]
    message = discovery_pb2.DiscoveryRequest(type_url=ENDPOINT_TYPE, node=_node("million"), resource_names=names)
    assert asyncio.run(_single_request(mesh.control_plane.xds_port, message, delta=False)) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    still_serving(mesh, "1M names, one request")


def test_names_over_the_request_limit_are_refused_before_the_server_looks_at_them(mesh: Mesh) -> None:
    names = [f"s{i}" for i in range(MAX_NAMES_PER_REQUEST * 6)]  # 300,000 names: 2.3 MB, under the size limit
    message = discovery_pb2.DeltaDiscoveryRequest(
        type_url=ENDPOINT_TYPE, node=_node("many"), resource_names_subscribe=names
    )
    assert message.ByteSize() < 4 * 1024 * 1024
    assert asyncio.run(_single_request(mesh.control_plane.xds_port, message, delta=True)) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    log = mesh.control_plane.log.read_text(errors="replace")
    assert f"request carries 300000 resource names; at most {MAX_NAMES_PER_REQUEST} allowed" in log
    still_serving(mesh, "300,000 names, one request")


async def _names_in_batches(port: int, total: int, batch: int) -> tuple[int, grpc.StatusCode, str]:
    """Subscribe to `total` names, `batch` per delta request, until the server ends the stream."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).DeltaAggregatedResources()
        sent = 0
        ended = asyncio.ensure_future(call.code())
        for start in range(0, total, batch):
            names = [f"svc-{i}" for i in range(start, start + batch)]
            request_ = discovery_pb2.DeltaDiscoveryRequest(type_url=ENDPOINT_TYPE, resource_names_subscribe=names)
            if start == 0:
                request_.node.CopyFrom(_node("batches"))
            try:
                await call.write(request_)
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                break
            sent += batch
            # Give the server time to answer before writing more: a write racing the end of the
            # call makes grpcio's client report INTERNAL instead of the server's status.
            if (await asyncio.wait({ended}, timeout=0.05))[0]:
                break
        return sent, await asyncio.wait_for(ended, 10), await call.details() or ""


def test_a_million_names_over_many_requests_on_one_delta_stream_hit_the_stream_limit(mesh: Mesh) -> None:
    sent, code, details = asyncio.run(_names_in_batches(mesh.control_plane.xds_port, 1_000_000, 10_000))
    print(f"\n1M names in batches of 10,000: stream ended after {sent:,} names: {code.name}: {details}")
    assert sent <= MAX_NAMES_PER_STREAM + 10_000  # ended at the first request over the limit
    log = mesh.control_plane.log.read_text(errors="replace")
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED or "resource names; at most" in log, (code, details)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        assert f"at most {MAX_NAMES_PER_STREAM} allowed" in details
    still_serving(mesh, "1M names, many requests")


async def _stream_flood(port: int, count: int, during: Callable[[], None]) -> tuple[int, list[str]]:
    """Open `count` idle ADS streams over several connections; run `during` while they are held.

    Returns how many stayed open, and how the others ended ("CODE: details").
    """
    options = [("grpc.use_local_subchannel_pool", 1)]  # one connection per channel
    channels = [
        grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) for _ in range(-(-count // STREAMS_PER_CHANNEL))
    ]
    try:
        calls: list[Any] = []
        for channel in channels:
            stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
            batch = [stub.StreamAggregatedResources() for _ in range(min(STREAMS_PER_CHANNEL, count - len(calls)))]
            await asyncio.wait_for(
                asyncio.gather(*(c.wait_for_connection() for c in batch), return_exceptions=True), 10
            )
            calls += batch
            # A connection at a time: thousands of calls at once would also meet gRPC's own
            # shedding of calls the server has not picked up yet (they end CANCELLED).
            await asyncio.sleep(0.02)
        await _until_no_more_end(calls)
        ended = [f"{(await c.code()).name}: {await c.details()}" for c in calls if c.done()]
        open_ = sum(1 for c in calls if not c.done())
        await asyncio.get_running_loop().run_in_executor(None, during)
        assert sum(1 for c in calls if not c.done()) == open_  # the admitted streams were kept
        return open_, ended
    finally:
        for channel in channels:
            await channel.close()


async def _until_no_more_end(calls: list[Any], quiet: float = 0.5, limit: float = 15.0) -> None:
    """Wait until no call has ended for `quiet` seconds: the server refuses a stream as it opens."""
    loop = asyncio.get_running_loop()
    deadline, ended = loop.time() + limit, -1
    while loop.time() < deadline and ended != (now := sum(c.done() for c in calls)):
        ended = now
        await asyncio.sleep(quiet)


def test_thousands_of_streams_from_one_peer_are_capped_and_envoys_keep_converging(mesh: Mesh) -> None:
    port = mesh.control_plane.xds_port

    def during() -> None:
        # The Envoys' own streams were opened before the flood and stay: edits still reach them.
        mesh.target = "b" if mesh.target == "a" else "a"
        mesh.edit(mesh.target)
        for api, listener_port in mesh.ports.items():
            wait_for(lambda p=listener_port: request(p)[1] == mesh.target, timeout=10, what=f"{api} during the flood")  # type: ignore[misc]
        mesh.figures["3,000 streams held"] = mesh.memory("VmRSS")

    open_, ended = asyncio.run(_stream_flood(port, ATTACK_STREAMS, during))
    ours = [e for e in ended if e.startswith("RESOURCE_EXHAUSTED") and "--max-streams-per-peer" in e]
    shed = [e for e in ended if e.startswith("CANCELLED")]  # gRPC's own overload shedding, if any
    print(f"\n{ATTACK_STREAMS} streams: {open_} held, {len(ours)} refused by the limit, {len(shed)} shed by gRPC")
    assert open_ + len(ended) == ATTACK_STREAMS
    assert open_ <= MAX_STREAMS_PER_PEER - 2  # the Envoys' two ADS streams count too
    assert ours and len(ours) + len(shed) == len(ended), set(ended)
    log = mesh.control_plane.log.read_text(errors="replace")
    assert 1 <= log.count("(--max-streams-per-peer)") <= 3  # one line per 10 s, not one per refusal
    still_serving(mesh, "3,000 streams")


async def _never_reading(port: int, count: int, during: Callable[[], None]) -> None:
    """`count` ADS streams that subscribe to every type and never read a response; `during` runs meanwhile."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) for _ in range(-(-count // 50))]
    try:
        for i in range(count):
            call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channels[i // 50]).StreamAggregatedResources()
            node = base_pb2.Node(id=f"slow-{i}", cluster="g-sotw")  # the group of a real Envoy: real responses
            await call.write(discovery_pb2.DiscoveryRequest(type_url=CLUSTER_TYPE, node=node))
            await call.write(discovery_pb2.DiscoveryRequest(type_url=ENDPOINT_TYPE, resource_names=["a", "b"]))
            await call.write(discovery_pb2.DiscoveryRequest(type_url=LISTENER_TYPE))
        await asyncio.get_running_loop().run_in_executor(None, during)
    finally:
        for channel in channels:
            await channel.close()


def sent_nonces(cp: ControlPlane, prefix: str) -> dict[str, dict[str, str]]:
    """node id -> type URL -> nonce of the last response sent, for nodes whose id starts with `prefix`."""
    return {
        n["node_id"]: {t["type_url"]: t["nonce"] for t in n["types"]}
        for n in cp.nodes()
        if n["node_id"].startswith(prefix)
    }


def test_clients_that_never_read_hold_one_response_per_type_whatever_the_edits(mesh: Mesh) -> None:
    count = 200
    cp = mesh.control_plane

    def during() -> None:
        wait_for(lambda: len(sent_nonces(cp, "slow-")) == count, timeout=10, what="the slow streams opened")
        before = sent_nonces(cp, "slow-")
        for _ in range(2):
            still_serving(mesh, "200 never-reading streams")
        # Nothing more went to them: each type waits for an ACK that never comes, and the
        # change notices of the edits collapse into one flag per stream.
        assert sent_nonces(cp, "slow-") == before

    asyncio.run(_never_reading(cp.xds_port, count, during))
