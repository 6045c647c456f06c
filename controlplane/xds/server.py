"""grpc.aio servicers: ADS and the per-type discovery services, SotW and delta, over one cache.

Each stream runs one loop fed by two things: requests from Envoy and "the cache changed"
notices. Both lead to the same question for the stream's session: what, if anything, to send now.
Most requests are ACKs on an open stream: the task reading them applies them at once and hands the
loop only what must be sent (usually nothing), so an ACK costs one task wake-up, not two.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from controlplane.cache import SnapshotCache
from controlplane.cache.quarantine import QuarantineEntry, rejected_names
from controlplane.translate.common import short_type
from controlplane.xds.authorization import NodeAuthorization, NodeGuard
from controlplane.xds.delta import DeltaState
from controlplane.xds.limits import LimitExceeded, Limits, ThrottledLog, check_request
from controlplane.xds.registry import Connection, NodeRegistry
from controlplane.xds.session import Session
from controlplane.xds.types import NoObserver, Observer
from controlplane.xds.wire import Outgoing, Wire

log = logging.getLogger(__name__)

_CHANGED = object()
_END = object()
MAX_QUEUED_REQUESTS = 16
"""Requests a stream may have waiting: a real Envoy has at most one per type plus its ACKs."""
MAX_QUEUED_BYTES = 4 * 1024 * 1024
"""Serialized request bytes a stream may have waiting: one largest request (the receive limit).
Requests wait only while the stream's loop is busy (sending, or behind other streams); a client
that floods requests meanwhile is held back by HTTP/2 flow control, not buffered."""


class DiscoveryServer:
    """The protocol loop shared by every xDS service."""

    def __init__(
        self,
        cache: SnapshotCache,
        registry: NodeRegistry,
        clock: Callable[[], float] = time.time,
        observer: Observer | None = None,
        limits: Limits | None = None,
        authorization: NodeAuthorization | None = None,
    ) -> None:
        self.cache = cache
        self.registry = registry
        self.clock = clock
        self.observer: Observer = observer or NoObserver()
        self.limits = limits or Limits()
        self.guard = NodeGuard(authorization)
        self.wire = Wire()
        cache.subscribe(self.wire.clear)
        self._sent_at: dict[tuple[int, str], float] = {}
        self._refusals = ThrottledLog(log)

    async def stream(
        self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext, *, delta: bool
    ) -> AsyncIterator[Any]:
        """Answer one stream until the client ends it, or end it when the client goes over a limit."""
        try:
            async for response in self._serve(requests, context, delta):
                yield response
        except LimitExceeded as exc:
            self._refusals.warning(f"stream from {context.peer()} ended: {exc.message}")
            await context.abort(getattr(grpc.StatusCode, exc.code), exc.message)

    async def _serve(
        self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext, delta: bool
    ) -> AsyncIterator[Any]:
        inbox = Inbox()
        connection: Connection | None = None

        def apply_now(request: Any) -> bool:
            """Apply `request` in the reader, queueing what to send, when that needs no waiting."""
            if connection is None or not inbox.idle or _changes_node(connection, request):
                return False
            self._apply(connection, request)
            inbox.send(self._responses(connection))
            return True

        reader = asyncio.create_task(_read(requests, inbox, apply_now))
        unsubscribe = self.cache.subscribe(inbox.notify)
        try:
            while (item := await inbox.next()) is not _END:
                if isinstance(item, LimitExceeded):
                    raise item
                if isinstance(item, list):
                    for response in item:
                        yield response
                    continue
                if item is not _CHANGED:
                    if connection is None:
                        connection = await self._open(item, context, delta)
                    else:
                        await self._keep_node(connection, item, context)
                    self._apply(connection, item)
                if connection is not None:
                    for response in self._responses(connection):
                        yield response
        finally:
            unsubscribe()
            reader.cancel()
            if connection is not None:
                self.registry.close(connection)
                for key in [k for k in self._sent_at if k[0] == connection.stream_id]:
                    del self._sent_at[key]
                log.info("stream closed: node=%s group=%s", connection.node_id, connection.node_group)

    def waiting_since(self, stream_id: int) -> float | None:
        """When the oldest response still awaiting an ACK on a stream was sent."""
        times = [at for (sid, _), at in self._sent_at.items() if sid == stream_id]
        return min(times) if times else None

    def _observe(self, connection: Connection, type_url: str, outcome: str) -> None:
        if outcome == "nack":
            self.observer.nacked(type_url)
        elif outcome == "ack" and (sent := self._sent_at.pop((connection.stream_id, type_url), None)):
            now = self.clock()
            self.observer.acked(type_url, now - sent, now - self.cache.published_at)

    async def _open(self, request: Any, context: grpc.aio.ServicerContext, delta: bool) -> Connection:
        """Register the stream once its first request's node passed node authorization (else abort)."""
        node = request.node
        identity = await self.guard.admit(context, node.id, node.cluster)
        session = Session(
            node_id=node.id,
            node_group=node.cluster,
            delta=delta,
            max_names=self.limits.names_per_stream,
            wire=self.wire,
        )
        api = "delta" if delta else "sotw"
        connection = self.registry.open(node, context.peer(), api, self.clock(), session, identity=identity)
        log.info(
            "stream opened: node=%s group=%s api=%s peer=%s identity=%s",
            node.id,
            node.cluster,
            api,
            context.peer(),
            identity,
        )
        return connection

    async def _keep_node(self, connection: Connection, request: Any, context: grpc.aio.ServicerContext) -> None:
        """A later request may repeat its node, never change it: the stream was authorized for the first one."""
        if not _changes_node(connection, request):
            return
        node = request.node
        await self.guard.admit(context, node.id, node.cluster)
        reason = (
            f"{connection.identity} may not change its node on a stream "
            f"(from {connection.node_id!r} in {connection.node_group})"
        )
        await self.guard.refuse(context, connection.identity, node.id, node.cluster, reason)

    def _apply(self, connection: Connection, request: Any) -> None:
        outcome = connection.session.on_request(request, self.clock())
        self._observe(connection, request.type_url, outcome)
        if log.isEnabledFor(logging.DEBUG):  # the names alone can be thousands of strings
            log.debug(
                "%s <- %s %s nonce=%s %s",
                connection.node_id,
                short_type(request.type_url),
                outcome,
                request.response_nonce,
                _names(request),
            )
        if outcome == "nack":
            state = connection.session.states[request.type_url]
            nack = state.last_nack
            assert nack is not None
            self.registry.record_nack(connection, request.type_url, nack)
            log.warning(
                "NACK from node=%s type=%s version=%s (not re-sent): %s",
                connection.node_id,
                short_type(request.type_url),
                nack.version,
                nack.message,
            )
            entries = quarantine_entries(connection, request.type_url, state, nack)
            if entries and isinstance(state, DeltaState):
                # Delta rejects per resource: once the culprits are known, the rest of that
                # response was not at fault and must go again (SotW gets a new version anyway).
                state.retry(set(state.just_rejected) - {e.name for e in entries})
            self.cache.hold_back(entries)

    def _responses(self, connection: Connection) -> list[Outgoing]:
        snapshot = self.cache.get(connection.node_group)
        if snapshot is None:
            return []
        responses = connection.session.responses(snapshot)
        for r in responses:
            self.observer.pushed(r.type_url)
            self._sent_at[(connection.stream_id, r.type_url)] = self.clock()
            log.debug("%s -> %s nonce=%s resources=%d", connection.node_id, short_type(r.type_url), r.nonce, r.count)
        return responses


def quarantine_entries(connection: Connection, type_url: str, state: Any, nack: Any) -> list[QuarantineEntry]:
    """The rejected resources Envoy's message points at, among those that differ from what it accepted."""
    changed = {
        name: rejected
        for name, rejected in state.just_rejected.items()
        if (accepted := state.acked.get(name)) is None or accepted.version != rejected.version
    }
    return [
        QuarantineEntry(
            group=connection.node_group,
            type_url=type_url,
            name=name,
            rejected_version=changed[name].version,
            fallback=state.acked.get(name),
            message=nack.message,
            node_id=connection.node_id,
            at=nack.at,
        )
        for name in rejected_names(nack.message, changed)
    ]


def _changes_node(connection: Connection, request: Any) -> bool:
    """Whether `request` names a node other than the stream's (Envoy sends it on the first request only)."""
    node = request.node
    return bool(node.id or node.cluster) and (node.id, node.cluster) != (connection.node_id, connection.node_group)


def _names(request: Any) -> str:
    if hasattr(request, "resource_names_subscribe"):
        return f"+{list(request.resource_names_subscribe)} -{list(request.resource_names_unsubscribe)}"
    return str(list(request.resource_names))


class Inbox:
    """What a stream must react to: responses to send, requests in order, and at most one "cache
    changed" notice.

    Requests are bounded in number and bytes (the reader waits, so a flooding client is slowed,
    not buffered); change notices are coalesced into one flag, so a stream that cannot send (a
    client that does not read) holds O(1) memory however often the cache changes, and catches up
    with the latest snapshot once it can. Responses come from requests the reader applied itself;
    a session has at most one in flight per type, so they are bounded too. A request over a limit
    ends the stream at once.
    """

    def __init__(self, limit: int = MAX_QUEUED_REQUESTS, max_bytes: int = MAX_QUEUED_BYTES) -> None:
        self._outgoing: list[Any] = []
        self._requests: collections.deque[tuple[Any, int]] = collections.deque()
        self._holding = False
        """A request was handed out and the stream's loop has not come back for more."""
        self._limit, self._max_bytes, self._bytes = limit, max_bytes, 0
        self._changed = False
        self._ended = False
        self._failure: LimitExceeded | None = None
        self._wake = asyncio.Event()
        self._room = asyncio.Event()

    def notify(self) -> None:
        """The cache changed (called synchronously by the cache)."""
        self._changed = True
        self._wake.set()

    async def put(self, request: Any, size: int = 0) -> None:
        """Queue a request of `size` bytes; waits while the inbox is full (one request always fits)."""
        while self._requests and (len(self._requests) >= self._limit or self._bytes + size > self._max_bytes):
            self._room.clear()
            await self._room.wait()
        self._requests.append((request, size))
        self._bytes += size
        self._wake.set()

    @property
    def idle(self) -> bool:
        """Whether no request waits or is being handled: a request applied now overtakes none."""
        return not self._requests and not self._holding

    def send(self, responses: list[Any]) -> None:
        """Queue responses to go out before anything else (none: nothing happens)."""
        if responses:
            self._outgoing.extend(responses)
            self._wake.set()

    def fail(self, error: LimitExceeded) -> None:
        """The client went over a limit: `next` returns `error` before anything else."""
        self._failure = error
        self._wake.set()

    def end(self) -> None:
        self._ended = True
        self._wake.set()

    async def next(self) -> object:
        """A limit error, else the responses to send (a list), else the next request, else the
        change notice, else the end; waits when there is none."""
        self._holding = False
        while True:
            if self._failure is not None:
                return self._failure
            if self._outgoing:
                outgoing, self._outgoing = self._outgoing, []
                return outgoing
            if self._requests:
                request, size = self._requests.popleft()
                self._bytes -= size
                self._room.set()
                self._holding = True
                return request
            if self._changed:
                self._changed = False
                return _CHANGED
            if self._ended:
                return _END
            self._wake.clear()
            await self._wake.wait()


async def _read(requests: AsyncIterator[Any], inbox: Inbox, apply_now: Callable[[Any], bool]) -> None:
    """Apply requests (`apply_now`) or move them into the inbox; a request over a limit stops
    reading and fails the stream."""
    try:
        async for request in requests:
            check_request(request)
            if not apply_now(request):
                await inbox.put(request, request.ByteSize())
    except LimitExceeded as exc:
        inbox.fail(exc)
    except (grpc.aio.AioRpcError, asyncio.CancelledError):
        pass
    finally:
        inbox.end()
