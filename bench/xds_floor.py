"""Envoy's own apply time: a bare ADS server (SotW) that sends pre-serialized responses.

It does nothing per request but look up bytes prepared in advance and note ACKs with the time
they came, so Envoys served by it measure what applying the config costs Envoy itself, plus
loopback and gRPC (with the control plane's gRPC settings). The control plane's figures are set
against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2

from controlplane.cache import Snapshot
from controlplane.translate import TYPE_ORDER
from controlplane.xds.grpc_server import SERVER_OPTIONS

METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"


def response_bytes(snapshot: Snapshot, type_url: str, held: Snapshot | None = None) -> bytes:
    """A serialized DiscoveryResponse of `type_url` (nonce = version): every resource, or only
    those that differ from `held` (what the control plane sends for endpoints and routes)."""
    types = snapshot.get(type_url)
    before = held.get(type_url).resources if held is not None else {}
    resources = [
        any_pb2.Any(type_url=type_url, value=r.serialized)
        for n, r in sorted(types.resources.items())
        if (old := before.get(n)) is None or old.version != r.version
    ]
    response = discovery_pb2.DiscoveryResponse(
        version_info=types.version, type_url=type_url, nonce=types.version, resources=resources
    )
    return bytes(response.SerializeToString(deterministic=True))


def responses(snapshot: Snapshot) -> dict[str, bytes]:
    return {t: response_bytes(snapshot, t) for t in TYPE_ORDER}


class FloorServer:
    """Serves fixed responses to every stream; `push` sends new bytes; `acks` records ACKs."""

    def __init__(self, prepared: Mapping[str, bytes]) -> None:
        self.prepared = dict(prepared)
        self.acks: dict[tuple[str, str], tuple[str, float]] = {}
        """(node id, type_url) -> (ACKed version, wall clock time of the ACK)."""
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._streams: set[asyncio.Queue[bytes]] = set()
        self._server: Any = None

    def start(self) -> FloorServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        handler = grpc.stream_stream_rpc_method_handler(
            self._stream, request_deserializer=discovery_pb2.DiscoveryRequest.FromString
        )
        generic = grpc.method_handlers_generic_handler(
            "envoy.service.discovery.v3.AggregatedDiscoveryService", {"StreamAggregatedResources": handler}
        )
        # The control plane's own gRPC settings (without them, gRPC's bandwidth probe alone cost
        # the floor ~4 ms of CPU per push to 50 Envoys): only the work above gRPC differs.
        self._server = grpc.aio.server(options=SERVER_OPTIONS)
        self._server.add_generic_rpc_handlers((generic,))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()

    async def _stream(self, requests: AsyncIterator[Any], context: Any) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._streams.add(queue)
        reader = asyncio.ensure_future(self._read(requests, queue))
        try:
            while True:
                yield await queue.get()
        finally:
            self._streams.discard(queue)
            reader.cancel()

    async def _read(self, requests: AsyncIterator[Any], queue: asyncio.Queue[bytes]) -> None:
        node, sent = "", set()
        async for request in requests:
            node = node or request.node.id
            if request.response_nonce:
                if not request.HasField("error_detail"):
                    self.acks[node, request.type_url] = (request.version_info, time.time())
            elif request.type_url not in sent and request.type_url in self.prepared:
                sent.add(request.type_url)
                queue.put_nowait(self.prepared[request.type_url])

    def push(self, type_url: str, data: bytes) -> None:
        """Send `data` (a serialized response of `type_url`) to every stream now."""
        self.prepared[type_url] = data

        def send() -> None:
            for queue in self._streams:
                queue.put_nowait(data)

        self.loop.call_soon_threadsafe(send)

    def all_acked(self, type_url: str, version: str, count: int) -> float | None:
        """When the last of `count` nodes ACKed `version` of `type_url`, or None."""
        found = [ack for (_, t), ack in list(self.acks.items()) if t == type_url]
        if len(found) != count or any(v != version for v, _ in found):
            return None
        return max(at for _, at in found)

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._server.stop(0), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
