"""The gRPC server: xDS services, the gRPC health service, and deliberate limits."""

from __future__ import annotations

import inspect
import logging
import resource
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from envoy.service.cluster.v3 import cds_pb2
from envoy.service.discovery.v3 import ads_pb2, discovery_pb2
from envoy.service.endpoint.v3 import eds_pb2
from envoy.service.listener.v3 import lds_pb2
from envoy.service.route.v3 import rds_pb2
from envoy.service.status.v3 import csds_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from controlplane.xds.csds import ClientStatusService
from controlplane.xds.limits import Limits, PeerStreams, ThrottledLog
from controlplane.xds.server import DiscoveryServer
from controlplane.xds.wire import payload

log = logging.getLogger(__name__)

MAX_RECEIVE_BYTES = 4 * 1024 * 1024
"""Largest request accepted: a delta reconnect that echoes ~50,000 resource names fits."""
MAX_SEND_BYTES = 64 * 1024 * 1024
"""Largest response: a full state-of-the-world CDS or EDS of a big mesh."""
MAX_STREAMS_PER_CONNECTION = 64
"""HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: Envoy multiplexes ADS and stats exports on one connection."""
RESERVED_FILE_DESCRIPTORS = 256
"""File descriptors kept back from the connection cap: route files, the status server, logs."""

SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
    ("grpc.max_send_message_length", MAX_SEND_BYTES),
    ("grpc.max_concurrent_streams", MAX_STREAMS_PER_CONNECTION),
    # Envoy pings its xDS connections (the generated bootstrap: every 5s) to find silent
    # partitions; accept pings down to every 500ms (half the shortest interval we support,
    # as pings arrive with jitter), even without calls, instead of GOAWAY "too_many_pings".
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 500),
    ("grpc.http2.max_ping_strikes", 3),
    # Our own pings find dead peers (a partitioned Envoy) within 40s.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    # No bandwidth-delay probing: it sends a PING after data arrives, so every ACK cost a PING
    # and its reply on both sides (measured: gRPC's own threads took 7 -> 2.5 ms of CPU per push
    # to 50 Envoys). Requests are small; the default 64 KiB stream window carries them.
    ("grpc.http2.bdp_probe", 0),
]


Behavior = Callable[[Any, grpc.aio.ServicerContext], Any]

DISCOVERY_SERVICES = [
    (ads_pb2, "AggregatedDiscoveryService", "StreamAggregatedResources", "DeltaAggregatedResources"),
    (cds_pb2, "ClusterDiscoveryService", "StreamClusters", "DeltaClusters"),
    (eds_pb2, "EndpointDiscoveryService", "StreamEndpoints", "DeltaEndpoints"),
    (lds_pb2, "ListenerDiscoveryService", "StreamListeners", "DeltaListeners"),
    (rds_pb2, "RouteDiscoveryService", "StreamRoutes", "DeltaRoutes"),
]
"""ADS and the per-type services: (module, service, SotW method, delta method). Their unary Fetch
methods are not served (UNIMPLEMENTED): Envoy streams."""


def _stream_behavior(server: DiscoveryServer, *, delta: bool) -> Behavior:
    """The shared loop as a gRPC stream handler; grpc.aio needs an async generator function."""

    async def behavior(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async for response in server.stream(requests, context, delta=delta):
            yield response

    return behavior


def add_discovery_services(grpc_server: grpc.aio.Server, server: DiscoveryServer) -> None:
    """Register ADS and the CDS, EDS, LDS and RDS services.

    Registered by hand rather than through the generated servicers: responses leave the server
    already serialized (`wire.payload`), so one response shared by many streams is encoded once.
    """
    for module, service, sotw, delta in DISCOVERY_SERVICES:
        handlers = {
            sotw: grpc.stream_stream_rpc_method_handler(
                _stream_behavior(server, delta=False),
                request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
                response_serializer=payload,
            ),
            delta: grpc.stream_stream_rpc_method_handler(
                _stream_behavior(server, delta=True),
                request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString,
                response_serializer=payload,
            ),
        }
        full_name = module.DESCRIPTOR.services_by_name[service].full_name
        grpc_server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(full_name, handlers),))


def create_server(
    server: DiscoveryServer,
    address: str,
    limits: Limits | None = None,
    credentials: grpc.ServerCredentials | None = None,
) -> tuple[grpc.aio.Server, health.aio.HealthServicer, int]:
    """A gRPC server listening on `address` (port 0 picks a free one); returns it and the port.

    With `credentials` (mTLS), every service on the port, including those the caller adds later
    (the stats collector, the registry), is reachable only by clients with a valid certificate.
    """
    limits = limits or Limits()
    grpc_server = grpc.aio.server(
        options=server_options(limits),
        interceptors=[PeerLimit(PeerStreams(limits.streams_per_peer, ThrottledLog(log)))],
        maximum_concurrent_rpcs=limits.streams,
    )
    add_discovery_services(grpc_server, server)
    csds = ClientStatusService(server.registry, server.guard)
    csds_pb2_grpc.add_ClientStatusDiscoveryServiceServicer_to_server(csds, grpc_server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, grpc_server)
    if credentials is None:
        port = grpc_server.add_insecure_port(address)
    else:
        port = grpc_server.add_secure_port(address, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    return grpc_server, health_servicer, port


async def set_serving(health_servicer: health.aio.HealthServicer, serving: bool) -> None:
    """Report SERVING once a first complete snapshot exists (NOT_SERVING before)."""
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    await health_servicer.set("", status)
    await health_servicer.set("envoy.service.discovery.v3.AggregatedDiscoveryService", status)


def server_options(limits: Limits) -> list[tuple[str, int]]:
    """SERVER_OPTIONS plus the connection limits of `limits`."""
    return [
        *SERVER_OPTIONS,
        ("grpc.max_allowed_incoming_connections", connection_cap(limits.connections)),
        ("grpc.server_handshake_timeout_ms", limits.handshake_timeout_ms),
        ("grpc.max_connection_idle_ms", limits.connection_idle_ms),
    ]


def connection_cap(wanted: int) -> int:
    """`wanted`, or fewer if the process may not open that many files even after raising its soft limit.

    Running out of file descriptors would fail far more than new xDS connections (route files,
    the status server), so the cap stays RESERVED_FILE_DESCRIPTORS below the limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + RESERVED_FILE_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < needed:
        cap = max(1, soft - RESERVED_FILE_DESCRIPTORS)
        log.warning("open file limit is %d: at most %d xDS connections instead of %d", soft, cap, wanted)
        return cap
    return wanted


_HANDLER_FACTORIES = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


class PeerLimit(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Counts every RPC by peer address and refuses, with RESOURCE_EXHAUSTED, those over the limit."""

    def __init__(self, streams: PeerStreams) -> None:
        self.streams = streams

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        kind = (handler.request_streaming, handler.response_streaming)
        behavior = {
            (False, False): handler.unary_unary,
            (False, True): handler.unary_stream,
            (True, False): handler.stream_unary,
            (True, True): handler.stream_stream,
        }[kind]
        if not (inspect.isasyncgenfunction(behavior) or inspect.iscoroutinefunction(behavior)):
            return handler  # a synchronous handler runs in grpc's thread pool: not ours to count
        return _HANDLER_FACTORIES[kind](
            self._counted(behavior),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _counted(self, behavior: Behavior) -> Behavior:
        """`behavior`, run only if the peer is under its limit, and counted while it runs."""
        streams = self.streams

        async def admit(context: grpc.aio.ServicerContext) -> str:
            peer = context.peer()
            if not streams.acquire(peer):
                await context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"too many open RPCs from this address (limit {streams.limit}, --max-streams-per-peer)",
                )
            return str(peer)

        if inspect.isasyncgenfunction(behavior):

            async def generator(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                peer = await admit(context)
                try:
                    async for response in behavior(request, context):
                        yield response
                finally:
                    streams.release(peer)

            return generator

        async def coroutine(request: Any, context: grpc.aio.ServicerContext) -> Any:
            peer = await admit(context)
            try:
                return await behavior(request, context)
            finally:
                streams.release(peer)

        return coroutine
