"""`controlplane register`: keep one endpoint registered with every control-plane replica.

Registers with each replica, renews every TTL/3, registers again where a lease was lost (a
replica restarted), and deregisters (drain, then removal) on SIGINT or SIGTERM. Replicas share
nothing: each holds the leases of the clients that registered with it (see docs/registry.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass

import grpc

from controlplane.registry.v1 import registry_pb2, registry_pb2_grpc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registration:
    """What to register, and where."""

    service: str
    address: str
    port: int
    replicas: tuple[str, ...]
    ttl_ms: int = 10_000
    weight: int = 1
    zone: str = ""
    metadata: tuple[tuple[str, str], ...] = ()
    drain_ms: int = 0
    credentials: grpc.ChannelCredentials | None = None
    """mTLS to replicas that serve it (`serve --tls-cert`); None: plaintext."""
    server_name: str = ""
    """The name the replicas' certificate must carry, when it is not the host in `replicas`."""


class ReplicaLease:
    """The lease held at one replica, re-acquired whenever it is lost."""

    def __init__(self, target: str, registration: Registration) -> None:
        self.target = target
        self.registration = registration
        self.channel = _channel(target, registration)
        self.stub = registry_pb2_grpc.RegistryStub(self.channel)
        self.lease_id = ""

    async def keep(self, stop: asyncio.Event) -> None:
        """Register and renew until `stop`; failures are retried every second."""
        period = self.registration.ttl_ms / 3000
        while not stop.is_set():
            try:
                await (self._renew() if self.lease_id else self._register())
            except grpc.aio.AioRpcError as exc:
                self._on_error(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period if self.lease_id else 1.0)

    async def _register(self) -> None:
        r = self.registration
        request = registry_pb2.RegisterRequest(
            service=r.service,
            address=r.address,
            port=r.port,
            weight=r.weight,
            zone=r.zone,
            metadata=dict(r.metadata),
            ttl_ms=r.ttl_ms,
        )
        self.lease_id = (await self.stub.Register(request, timeout=5)).lease_id
        log.info("registered %s %s:%d with %s (lease %s)", r.service, r.address, r.port, self.target, self.lease_id)

    async def _renew(self) -> None:
        await self.stub.Renew(registry_pb2.RenewRequest(lease_id=self.lease_id), timeout=5)

    def _on_error(self, exc: grpc.aio.AioRpcError) -> None:
        if exc.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
            log.error("%s refused the registration: %s", self.target, exc.details())
        else:
            log.warning("%s: %s (retrying)", self.target, exc.details() or exc.code().name)
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            self.lease_id = ""  # the replica lost our lease (restart): register again

    async def release(self) -> None:
        """Deregister (the endpoint drains first), then close."""
        if self.lease_id:
            with contextlib.suppress(grpc.aio.AioRpcError):
                request = registry_pb2.DeregisterRequest(lease_id=self.lease_id, drain_ms=self.registration.drain_ms)
                await self.stub.Deregister(request, timeout=5)
        await self.channel.close()


def _channel(target: str, registration: Registration) -> grpc.aio.Channel:
    if registration.credentials is None:
        return grpc.aio.insecure_channel(target)
    options = [("grpc.ssl_target_name_override", registration.server_name)] if registration.server_name else []
    return grpc.aio.secure_channel(target, registration.credentials, options=options)


async def run(registration: Registration) -> None:
    """Hold the registration at every replica until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    leases = [ReplicaLease(target, registration) for target in registration.replicas]
    await asyncio.gather(*(lease.keep(stop) for lease in leases))
    await asyncio.gather(*(lease.release() for lease in leases))
