"""The Registry gRPC service (protos/controlplane/registry/v1): the edge of the registry source.

Maps requests to RegistryState calls and RegistryError kinds to gRPC status codes; tells the
composition root about every change through `on_change`. Register and Deregister answer once
what `on_change` returns (the leases' write to disk, with `--state-dir`) is done: an OK means the
change survives a restart; UNAVAILABLE, that it is served but could not be written.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from controlplane.registry.v1 import registry_pb2, registry_pb2_grpc
from controlplane.sources.registry import RegisterInput, Registration, RegistryError, RegistryState

T = TypeVar("T")

_CODES = {
    "invalid": grpc.StatusCode.INVALID_ARGUMENT,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "precondition": grpc.StatusCode.FAILED_PRECONDITION,
    "exhausted": grpc.StatusCode.RESOURCE_EXHAUSTED,
}


class RegistryService(registry_pb2_grpc.RegistryServicer):  # type: ignore[misc]  # generated, untyped
    """Register, renew, deregister, list and watch endpoints."""

    def __init__(
        self,
        state: RegistryState,
        on_change: Callable[[], Awaitable[bool] | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state, self.on_change, self.clock = state, on_change, clock
        self._watchers: set[asyncio.Queue[None]] = set()

    def changed(self) -> Awaitable[bool] | None:
        """Call after every change to the registrations (including expiry); returns `on_change`'s result."""
        pending = self.on_change()
        for queue in self._watchers:
            if queue.empty():
                queue.put_nowait(None)
        return pending

    async def _changed_durably(self, context: grpc.aio.ServicerContext) -> None:
        pending = self.changed()
        if pending is not None and not await pending:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                "the change is served, but could not be written to the state directory "
                "(see the control plane's log): it would not survive a restart",
            )

    async def Register(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        wanted = RegisterInput(
            service=request.service,
            address=request.address,
            port=request.port,
            weight=request.weight,
            zone=request.zone,
            metadata=tuple(request.metadata.items()),
            ttl_ms=request.ttl_ms,
        )
        lease = await _call(context, lambda: self.state.register(wanted, self.clock()))
        await self._changed_durably(context)
        return registry_pb2.RegisterResponse(lease_id=lease.lease_id, ttl_ms=lease.ttl_ms)

    async def Renew(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        lease = await _call(context, lambda: self.state.renew(request.lease_id, self.clock()))
        return registry_pb2.RenewResponse(lease_id=lease.lease_id, ttl_ms=lease.ttl_ms)

    async def KeepAlive(self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async for request in requests:
            lease_id = str(request.lease_id)
            lease = await _call(context, lambda: self.state.renew(lease_id, self.clock()))  # noqa: B023
            yield registry_pb2.RenewResponse(lease_id=lease.lease_id, ttl_ms=lease.ttl_ms)

    async def Deregister(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        lease_id, drain_ms = str(request.lease_id), int(request.drain_ms)
        await _call(context, lambda: self.state.deregister(lease_id, drain_ms, self.clock()))
        await self._changed_durably(context)
        return registry_pb2.DeregisterResponse()

    async def List(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return self._list(request.service)

    async def Watch(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self._watchers.add(queue)
        try:
            while True:
                yield self._list(request.service)
                await queue.get()
        finally:
            self._watchers.discard(queue)

    def _list(self, service: str) -> Any:
        now = self.clock()
        return registry_pb2.ListResponse(registrations=[_message(r, now) for r in self.state.registrations(service)])


async def _call(context: grpc.aio.ServicerContext, action: Callable[[], T]) -> T:
    """Run `action`; a RegistryError ends the call with the matching status and message."""
    try:
        return action()
    except RegistryError as exc:
        await context.abort(_CODES[exc.kind], str(exc))
        raise  # abort raises; this line only tells type checkers so


def _message(r: Registration, now: float) -> Any:
    return registry_pb2.Registration(
        lease_id=r.lease_id,
        service=r.service,
        address=r.host,
        port=r.port,
        weight=r.weight,
        zone=r.zone,
        metadata=dict(r.metadata),
        ttl_ms=r.ttl_ms,
        remaining_ms=max(0, int((r.expires_at - now) * 1000)),
        draining=r.draining,
    )


async def expire_leases(state: RegistryState, service: RegistryService, clock: Callable[[], float] = time.time) -> None:
    """Remove expired leases on time, until cancelled."""
    while True:
        if state.expire(clock()):
            service.changed()
        next_expiry = state.next_expiry()
        delay = 1.0 if next_expiry is None else min(1.0, max(0.005, next_expiry - clock()))
        await asyncio.sleep(delay)
