"""mTLS on the xDS port and node authorization, in process over real TLS on loopback.

Certificates are made by the test (tests/certs.py). A peer that fails the handshake, or claims a
node its certificate may not, gets nothing: no response, no entry among the connected Envoys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.status.v3 import csds_pb2, csds_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

from controlplane.telemetry.counters import CounterDeltas
from controlplane.telemetry.otel import NODE_CLUSTER_HEADER, NODE_ID_HEADER, add_collector
from controlplane.telemetry.traffic import TrafficStore
from controlplane.tls import TlsFiles, channel_credentials, read_tls, server_credentials
from controlplane.translate import CLUSTER_TYPE
from controlplane.xds.authorization import PLAINTEXT, NodeAuthorization, NodeRule
from tests.certs import GATEWAY_ID, Issued, Pki, make_pki
from tests.test_traffic import export
from tests.xds_harness import Client, Harness, running_server, services_yaml, snapshot_of

RULES = NodeAuthorization(
    rules=(
        NodeRule("spiffe://cluster.local/ns/edge/sa/*", ("edge",)),
        NodeRule("ops-tool", ("ops",), ("ops-*",)),
    )
)
DENIED = "may not claim node cluster"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def server_creds(pki: Pki) -> grpc.ServerCredentials:
    return server_credentials(read_tls(TlsFiles(pki.server.cert_path, pki.server.key_path, pki.ca.path)))


def client_creds(pki: Pki, issued: Issued | None) -> grpc.ChannelCredentials:
    """The client's certificate (None: none at all); the server is always checked against the real CA."""
    if issued is None:
        return grpc.ssl_channel_credentials(root_certificates=pki.ca.path.read_bytes())
    return grpc.ssl_channel_credentials(pki.ca.path.read_bytes(), issued.key_pem, issued.cert_pem)


async def first_cds(
    harness: Harness, credentials: grpc.ChannelCredentials, cluster: str, node_id: str = "gw-1", delta: bool = False
) -> tuple[list[Any], grpc.StatusCode, str]:
    """(responses received, final status, details) of a stream that asks for clusters once.

    Waits for a first response or for the call to end, whichever comes first (at most 5 s).
    """
    client = Client(harness.port, delta=delta, node_id=node_id, group=cluster, credentials=credentials)
    try:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            await (client.delta(CLUSTER_TYPE) if delta else client.request(CLUSTER_TYPE))
        read, ended = asyncio.ensure_future(client.read()), asyncio.ensure_future(client.call.code())
        await asyncio.wait({read, ended}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        if read.done():
            ended.cancel()
            return [read.result()], grpc.StatusCode.OK, ""
        read.cancel()
        return [], await asyncio.wait_for(ended, 5), await client.call.details()
    finally:
        await client.close()


def published(harness: Harness) -> Harness:
    harness.publish(snapshot_of(services_yaml("api")))
    return harness


def test_a_valid_certificate_claiming_its_cluster_is_served(pki: Pki) -> None:
    async def scenario() -> None:
        async with running_server(RULES, server_creds(pki)) as harness:
            published(harness)
            client = Client(harness.port, node_id="gw-1", group="edge", credentials=client_creds(pki, pki.gateway))
            await client.request(CLUSTER_TYPE)
            response = await client.read()
            assert client.names_of(response) == ["api"]
            [connection] = harness.registry.connections.values()
            assert (connection.node_id, connection.identity) == ("gw-1", GATEWAY_ID)
            await client.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("who", ["no-client-cert", "unknown-ca", "expired"])
def test_a_failed_handshake_gets_nothing(who: str, pki: Pki) -> None:
    certificate = {"no-client-cert": None, "unknown-ca": pki.stranger, "expired": pki.expired}[who]

    async def scenario() -> None:
        async with running_server(RULES, server_creds(pki)) as harness:
            published(harness)
            responses, code, _ = await first_cds(harness, client_creds(pki, certificate), "edge")
            assert (responses, code) == ([], grpc.StatusCode.UNAVAILABLE)
            assert harness.registry.connections == {}

    asyncio.run(scenario())


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
def test_another_cluster_is_denied_logged_and_nothing_is_sent(
    delta: bool, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with running_server(RULES, server_creds(pki)) as harness:
            published(harness).publish(snapshot_of(services_yaml("payroll"), "payments"))
            credentials = client_creds(pki, pki.gateway)
            responses, code, details = await first_cds(harness, credentials, "payments", delta=delta)
            assert (responses, code) == ([], grpc.StatusCode.PERMISSION_DENIED)
            assert details == f"{GATEWAY_ID} may not claim node cluster payments"
            assert harness.registry.connections == {}

    with caplog.at_level(logging.WARNING, logger="controlplane.xds.authorization"):
        asyncio.run(scenario())
    [line] = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert "peer=ipv4:127.0.0.1:" in line and f"identity={GATEWAY_ID}" in line
    assert "node=gw-1 cluster=payments" in line


@pytest.mark.parametrize(
    ("node_id", "cluster", "expected"),
    [
        pytest.param("ops-1", "ops", grpc.StatusCode.OK, id="cn-rule"),
        pytest.param("laptop", "ops", grpc.StatusCode.PERMISSION_DENIED, id="cn-rule-wrong-node-id"),
        pytest.param("ops-1", "edge", grpc.StatusCode.PERMISSION_DENIED, id="cn-other-cluster"),
    ],
)
def test_a_common_name_is_the_identity_without_a_spiffe_id(
    node_id: str, cluster: str, expected: grpc.StatusCode, pki: Pki
) -> None:
    async def scenario() -> None:
        async with running_server(RULES, server_creds(pki)) as harness:
            harness.publish(snapshot_of(services_yaml("api"), cluster))
            responses, code, details = await first_cds(harness, client_creds(pki, pki.cn_only), cluster, node_id)
            assert code == expected, details
            assert len(responses) == (1 if expected == grpc.StatusCode.OK else 0)
            if expected != grpc.StatusCode.OK:
                assert details.startswith("ops-tool may not claim node")

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("node", "message"),
    [
        pytest.param(base_pb2.Node(id="gw-1", cluster="payments"), DENIED, id="to-a-denied-cluster"),
        pytest.param(base_pb2.Node(id="gw-2", cluster="edge"), "may not change its node", id="to-an-allowed-node"),
    ],
)
def test_a_later_request_may_not_change_the_node(node: base_pb2.Node, message: str, pki: Pki) -> None:
    async def scenario() -> None:
        async with running_server(RULES, server_creds(pki)) as harness:
            published(harness).publish(snapshot_of(services_yaml("payroll"), "payments"))
            client = Client(harness.port, node_id="gw-1", group="edge", credentials=client_creds(pki, pki.gateway))
            await client.request(CLUSTER_TYPE)
            first = await client.read()
            ack = discovery_pb2.DiscoveryRequest(
                type_url=CLUSTER_TYPE, version_info=first.version_info, response_nonce=first.nonce, node=node
            )
            await client.send(ack)
            code, details = await client.call.code(), await client.call.details()
            assert (code, message in details) == (grpc.StatusCode.PERMISSION_DENIED, True), details
            assert client.responses.empty()
            assert harness.registry.connections == {}
            await client.close()

    asyncio.run(scenario())


def test_without_rules_any_certificate_of_the_ca_may_claim_any_node(pki: Pki) -> None:
    async def scenario() -> None:
        async with running_server(None, server_creds(pki)) as harness:
            harness.publish(snapshot_of(services_yaml("payroll"), "payments"))
            responses, code, _ = await first_cds(harness, client_creds(pki, pki.gateway), "payments")
            assert (len(responses), code) == (1, grpc.StatusCode.OK)

    asyncio.run(scenario())


def test_plaintext_streams_show_plaintext_as_their_identity() -> None:
    async def scenario() -> None:
        async with running_server() as harness:
            published(harness)
            client = Client(harness.port, node_id="gw-1", group="edge")
            await client.request(CLUSTER_TYPE)
            await client.read()
            assert [c.identity for c in harness.registry.connections.values()] == [PLAINTEXT]
            await client.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("cluster", "expected"),
    [pytest.param("edge", grpc.StatusCode.OK, id="own"), pytest.param("payments", grpc.StatusCode.PERMISSION_DENIED)],
)
def test_stats_exports_are_checked_like_streams(cluster: str, expected: grpc.StatusCode, pki: Pki) -> None:
    store = TrafficStore()

    def with_collector(harness: Harness) -> None:
        assert harness.server is not None and harness.discovery is not None
        add_collector(harness.server, store, lambda: 100.0, CounterDeltas(), admit=harness.discovery.guard.admit)

    async def scenario() -> None:
        async with running_server(RULES, server_creds(pki), before_start=with_collector) as harness:
            channel = grpc.aio.secure_channel(f"127.0.0.1:{harness.port}", client_creds(pki, pki.gateway))
            call = channel.unary_unary(
                "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                request_serializer=metrics_service_pb2.ExportMetricsServiceRequest.SerializeToString,
                response_deserializer=metrics_service_pb2.ExportMetricsServiceResponse.FromString,
            )
            metadata = ((NODE_ID_HEADER, "gw-1"), (NODE_CLUSTER_HEADER, cluster))
            try:
                await call(export("api", requests=5, errors=0, buckets=[5, 0, 0, 0, 0]), metadata=metadata, timeout=5)
                code = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
            await channel.close()
            assert code == expected
            assert store.services() == (["api"] if expected == grpc.StatusCode.OK else [])

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        pytest.param(base_pb2.Node(id="gw-1", cluster="edge"), grpc.StatusCode.OK, id="own-node"),
        pytest.param(base_pb2.Node(id="x", cluster="payments"), grpc.StatusCode.PERMISSION_DENIED, id="other"),
        pytest.param(None, grpc.StatusCode.OK, id="no-node-known-identity"),
    ],
)
def test_csds_checks_the_node_it_is_asked_as(node: base_pb2.Node | None, expected: grpc.StatusCode, pki: Pki) -> None:
    async def scenario() -> None:
        async with running_server(RULES, server_creds(pki)) as harness:
            channel = grpc.aio.secure_channel(f"127.0.0.1:{harness.port}", client_creds(pki, pki.gateway))
            request = csds_pb2.ClientStatusRequest(node=node) if node else csds_pb2.ClientStatusRequest()
            try:
                await csds_pb2_grpc.ClientStatusDiscoveryServiceStub(channel).FetchClientStatus(request, timeout=5)
                code = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
            await channel.close()
            assert code == expected

    asyncio.run(scenario())


def test_csds_without_a_node_needs_an_identity_some_rule_names(pki: Pki, tmp_path: Path) -> None:
    outsider = pki.ca.client("outsider", spiffe="spiffe://cluster.local/ns/other/sa/x")

    async def scenario() -> None:
        async with running_server(RULES, server_creds(pki)) as harness:
            channel = grpc.aio.secure_channel(f"127.0.0.1:{harness.port}", client_creds(pki, outsider))
            stub = csds_pb2_grpc.ClientStatusDiscoveryServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.FetchClientStatus(csds_pb2.ClientStatusRequest(), timeout=5)
            await channel.close()
            assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert raised.value.details() == "spiffe://cluster.local/ns/other/sa/x matches no node authorization rule"

    asyncio.run(scenario())


def test_client_credentials_of_register_pass_the_handshake(pki: Pki) -> None:
    """The credentials `controlplane register --tls-cert ...` builds are accepted by an mTLS port."""
    files = TlsFiles(pki.gateway.cert_path, pki.gateway.key_path, pki.ca.path)
    credentials = channel_credentials(read_tls(files))

    async def scenario() -> None:
        async with (
            running_server(RULES, server_creds(pki)) as harness,
            grpc.aio.secure_channel(f"127.0.0.1:{harness.port}", credentials) as channel,
        ):
            await asyncio.wait_for(channel.channel_ready(), 5)

    asyncio.run(scenario())
