"""An in-process xDS server and a scripted gRPC client, for protocol tests without Envoy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.rpc import status_pb2

from controlplane.cache import Snapshot, SnapshotCache
from controlplane.dsl import load_texts
from controlplane.translate import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, build_resources
from controlplane.xds.authorization import NodeAuthorization
from controlplane.xds.grpc_server import create_server
from controlplane.xds.limits import Limits
from controlplane.xds.registry import NodeRegistry
from controlplane.xds.server import DiscoveryServer

QUIET = 0.3
"""How long to wait before concluding that the server sends nothing."""


def snapshot_of(text: str, node_group: str = "") -> Snapshot:
    return Snapshot.from_resources(build_resources(load_texts([("test.yaml", text)]), node_group))


def services_yaml(*names: str, port: int = 8080, connect_timeout: str = "2s") -> str:
    """A route file with one listener routing /NAME to each service NAME."""
    routes = "".join(f"      - match: {{prefix: /{n}}}\n        to: {n}\n" for n in names)
    services = "".join(
        f"  {n}: {{endpoints: ['127.0.0.1:{port + i}'], connect_timeout: {connect_timeout}}}\n"
        for i, n in enumerate(names)
    )
    return f"listeners:\n  - name: main\n    port: 10000\n    routes:\n{routes}services:\n{services}"


@dataclass
class Harness:
    cache: SnapshotCache
    registry: NodeRegistry
    port: int
    server: grpc.aio.Server | None = None
    discovery: DiscoveryServer | None = None

    def publish(self, snapshot: Snapshot) -> None:
        self.cache.publish(snapshot, {})


@asynccontextmanager
async def running_server(
    authorization: NodeAuthorization | None = None,
    credentials: grpc.ServerCredentials | None = None,
    before_start: Any = None,
    limits: Limits | None = None,
) -> AsyncIterator[Harness]:
    """`before_start(harness)` may add services (the server cannot take any once started)."""
    cache, registry = SnapshotCache(), NodeRegistry()
    discovery = DiscoveryServer(cache, registry, authorization=authorization, limits=limits)
    server, _, port = create_server(discovery, "127.0.0.1:0", limits, credentials)
    harness = Harness(cache, registry, port, server, discovery)
    if before_start is not None:
        before_start(harness)
    await server.start()
    try:
        yield harness
    finally:
        await server.stop(None)


class Client:
    """A scripted ADS client: write requests, read responses, or assert silence."""

    def __init__(
        self,
        port: int,
        *,
        delta: bool = False,
        node_id: str = "test",
        group: str = "",
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        target = f"127.0.0.1:{port}"
        secure = credentials is not None
        self.channel = grpc.aio.secure_channel(target, credentials) if secure else grpc.aio.insecure_channel(target)
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel)
        self.call = stub.DeltaAggregatedResources() if delta else stub.StreamAggregatedResources()
        self.node = base_pb2.Node(id=node_id, cluster=group)
        self.first = True
        self.responses: asyncio.Queue[Any] = asyncio.Queue()
        self.subscriptions: dict[str, list[str]] = {}
        self.reader = asyncio.get_running_loop().create_task(self._read_all())

    async def _read_all(self) -> None:
        async for response in self.call:
            self.responses.put_nowait(response)

    async def send(self, request: Any) -> None:
        if self.first:
            request.node.CopyFrom(self.node)
            self.first = False
        await self.call.write(request)

    async def request(
        self,
        type_url: str,
        names: list[str] | None = None,
        version: str = "",
        nonce: str = "",
        error: str | None = None,
    ) -> None:
        self.subscriptions[type_url] = names or []
        req = discovery_pb2.DiscoveryRequest(
            type_url=type_url, resource_names=names or [], version_info=version, response_nonce=nonce
        )
        if error is not None:
            req.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        await self.send(req)

    async def delta(
        self,
        type_url: str,
        subscribe: list[str] | None = None,
        unsubscribe: list[str] | None = None,
        nonce: str = "",
        error: str | None = None,
        initial: dict[str, str] | None = None,
    ) -> None:
        req = discovery_pb2.DeltaDiscoveryRequest(
            type_url=type_url,
            resource_names_subscribe=subscribe or [],
            resource_names_unsubscribe=unsubscribe or [],
            response_nonce=nonce,
            initial_resource_versions=initial or {},
        )
        if error is not None:
            req.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        await self.send(req)

    async def read(self, timeout: float = 5.0) -> Any:
        return await asyncio.wait_for(self.responses.get(), timeout)

    async def silent(self, seconds: float = QUIET) -> bool:
        """True when nothing arrives within `seconds`."""
        try:
            await asyncio.wait_for(self.responses.get(), seconds)
        except TimeoutError:
            return True
        return False

    async def delta_ack(self, response: Any, error: str | None = None) -> None:
        """ACK (or NACK with `error`) a delta response."""
        await self.delta(response.type_url, nonce=response.nonce, error=error)

    async def ack(self, response: Any) -> None:
        """ACK with the same subscription, as Envoy does."""
        names = self.subscriptions.get(response.type_url, [])
        await self.request(response.type_url, names, response.version_info, response.nonce)

    @staticmethod
    def names_of(response: Any) -> list[str]:
        return sorted(resource_name(r) for r in response.resources)

    async def close(self) -> None:
        self.reader.cancel()
        await self.channel.close()


KINDS = {
    CLUSTER_TYPE: cluster_pb2.Cluster,
    ENDPOINT_TYPE: endpoint_pb2.ClusterLoadAssignment,
    LISTENER_TYPE: listener_pb2.Listener,
    ROUTE_TYPE: route_pb2.RouteConfiguration,
}


def resource_name(packed: Any) -> str:
    """The name inside a packed resource."""
    message = KINDS[packed.type_url]()
    packed.Unpack(message)
    return str(getattr(message, "cluster_name", "") or message.name)


def run(coro: Any) -> Any:
    return asyncio.run(coro)
