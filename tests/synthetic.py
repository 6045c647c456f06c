"""A fleet of synthetic xDS clients (SotW, ADS) that behave like Envoy: CDS, then EDS for every
cluster, LDS, RDS for every route name, ACK everything, reconnect when the stream drops."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from controlplane.translate import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from tests.xds_harness import resource_name


class Fleet:
    """`count` synthetic clients in a background event loop; `synced` counts those fully ACKed."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.synced: set[int] = set()
        self.sessions: dict[int, int] = {}
        """Streams opened per client (a reconnect makes it 2)."""
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.tasks: list[asyncio.Future[None]] = []

    def start(self) -> Fleet:
        self.thread.start()
        self.tasks = [asyncio.run_coroutine_threadsafe(self._client(i), self.loop) for i in range(self.count)]  # type: ignore[misc]
        return self

    def resynced(self, sessions: int) -> bool:
        """Whether every client is in sync on its `sessions`-th stream or a later one."""
        return len(self.synced) == self.count and all(n >= sessions for n in self.sessions.values())

    def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    async def _client(self, index: int) -> None:
        while True:
            self.synced.discard(index)
            self.sessions[index] = self.sessions.get(index, 0) + 1
            with contextlib.suppress(grpc.aio.AioRpcError, OSError):
                await self._session(index)
            await asyncio.sleep(0.25)  # Envoy's base reconnect back-off

    async def _session(self, index: int) -> None:
        # Its own connection, as each Envoy has: gRPC would otherwise share one among channels.
        options = [("grpc.use_local_subchannel_pool", 1)]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.port}", options=options) as channel:
            call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources()
            node = base_pb2.Node(id=f"synthetic-{index}", cluster="edge")
            await call.write(discovery_pb2.DiscoveryRequest(type_url=CLUSTER_TYPE, node=node))
            held: dict[str, Any] = {}
            async for response in call:
                held[response.type_url] = response
                await self._answer(call, response, held)
                if len(held) == 4:
                    self.synced.add(index)

    @staticmethod
    async def _answer(call: Any, response: Any, held: dict[str, Any]) -> None:
        names = sorted(resource_name(r) for r in response.resources)
        subscriptions = {CLUSTER_TYPE: [], LISTENER_TYPE: []}
        subscribed = subscriptions.get(response.type_url, names)
        await call.write(
            discovery_pb2.DiscoveryRequest(
                type_url=response.type_url,
                resource_names=subscribed,
                version_info=response.version_info,
                response_nonce=response.nonce,
            )
        )
        follow = {CLUSTER_TYPE: ENDPOINT_TYPE, ENDPOINT_TYPE: LISTENER_TYPE}.get(response.type_url)
        if response.type_url == LISTENER_TYPE and ROUTE_TYPE not in held:
            await call.write(discovery_pb2.DiscoveryRequest(type_url=ROUTE_TYPE, resource_names=["public"]))
        elif follow == ENDPOINT_TYPE and ENDPOINT_TYPE not in held:
            await call.write(discovery_pb2.DiscoveryRequest(type_url=ENDPOINT_TYPE, resource_names=names))
        elif follow == LISTENER_TYPE and LISTENER_TYPE not in held:
            await call.write(discovery_pb2.DiscoveryRequest(type_url=LISTENER_TYPE))
