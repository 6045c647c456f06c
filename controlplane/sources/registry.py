"""The registry source: endpoints registered over gRPC, each held by a lease that must be renewed.

Sans-I/O: every method takes the current time, so expiry is tested without sleeping. The gRPC
servicer (registry_api.py) and the composition root drive it; the pipeline turns its
registrations into model endpoints of services declared with `discovery: registry`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import operator
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from controlplane.dsl.policy import AddressPolicy
from controlplane.model import Endpoint

MAX_TTL_MS = 300_000
MIN_TTL_MS = 1_000
DEFAULT_DRAIN_MS = 5_000
MAX_DRAIN_MS = 300_000
MAX_METADATA_KEYS = 64
MAX_METADATA_BYTES = 4096
MAX_REGISTRATIONS = 10_000
_ENDPOINT_ORDER = operator.attrgetter(*(f.name for f in dataclasses.fields(Endpoint)))
"""Endpoint's own field order, as a tuple built in C (dataclass comparisons build two per compare)."""


class RegistryError(ValueError):
    """A request the registry refuses; `kind` maps to a gRPC status code at the edge."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        """`invalid`, `not_found`, `precondition` or `exhausted`."""


@dataclass(frozen=True)
class Registration:
    """One registered endpoint and its lease."""

    lease_id: str
    service: str
    host: str
    port: int
    weight: int
    zone: str
    metadata: tuple[tuple[str, str], ...]
    ttl_ms: int
    expires_at: float
    """Wall-clock seconds; when draining, the time of removal."""
    draining: bool = False


@dataclass(frozen=True)
class RegisterInput:
    """A registration request, as plain values."""

    service: str
    address: str
    port: int
    weight: int = 1
    zone: str = ""
    metadata: tuple[tuple[str, str], ...] = ()
    ttl_ms: int = 10_000


class RegistryState:
    """Leases by id; `version` changes whenever the set of endpoints (or their state) changes."""

    def __init__(self, policy: AddressPolicy, services: Callable[[], frozenset[str]]) -> None:
        self.policy = policy
        self.services = services
        """The services declared with `discovery: registry` in the current config."""
        self.leases: dict[str, Registration] = {}
        self.version = 0

    def register(self, request: RegisterInput, now: float) -> Registration:
        """Validate and add; raises RegistryError with a message fit for the caller."""
        host = _check(request, self.policy)
        if request.service not in self.services():
            known = ", ".join(sorted(self.services())) or "none"
            raise RegistryError(
                "precondition",
                f"service {request.service!r} is not declared with "
                f"'discovery: registry' in the route files (declared: {known})",
            )
        if len(self.leases) >= MAX_REGISTRATIONS:
            raise RegistryError("exhausted", f"the registry holds its maximum of {MAX_REGISTRATIONS} registrations")
        lease = Registration(
            lease_id=secrets.token_hex(8),
            service=request.service,
            host=host,
            port=request.port,
            weight=request.weight or 1,
            zone=request.zone,
            metadata=tuple(sorted(request.metadata)),
            ttl_ms=request.ttl_ms,
            expires_at=now + request.ttl_ms / 1000,
        )
        self.leases[lease.lease_id] = lease
        self.version += 1
        return lease

    def renew(self, lease_id: str, now: float) -> Registration:
        """Extend a live lease by its TTL (a draining one cannot be renewed)."""
        lease = self._get(lease_id)
        if lease.draining:
            raise RegistryError("precondition", f"lease {lease_id} is draining and cannot be renewed")
        self.leases[lease_id] = lease = replace(lease, expires_at=now + lease.ttl_ms / 1000)
        return lease

    def deregister(self, lease_id: str, drain_ms: int, now: float) -> None:
        """Mark the endpoint draining; it is removed after `drain_ms` (0: the default)."""
        lease = self._get(lease_id)
        if drain_ms > MAX_DRAIN_MS:
            raise RegistryError("invalid", f"drain_ms {drain_ms} is above the maximum of {MAX_DRAIN_MS}")
        drain = drain_ms or DEFAULT_DRAIN_MS
        self.leases[lease_id] = replace(lease, draining=True, expires_at=now + drain / 1000)
        self.version += 1

    def expire(self, now: float) -> bool:
        """Drop expired leases and finished drains; True if anything was removed."""
        gone = [lease_id for lease_id, lease in self.leases.items() if lease.expires_at <= now]
        for lease_id in gone:
            del self.leases[lease_id]
        if gone:
            self.version += 1
        return bool(gone)

    def next_expiry(self) -> float | None:
        """When the next lease runs out, if any."""
        return min((lease.expires_at for lease in self.leases.values()), default=None)

    def endpoints(self) -> dict[str, tuple[Endpoint, ...]]:
        """The registrations as model endpoints, by service."""
        found: dict[str, list[Endpoint]] = {}
        for r in self.registrations():
            endpoint = Endpoint(
                host=r.host, port=r.port, weight=r.weight, zone=r.zone, draining=r.draining, metadata=r.metadata
            )
            found.setdefault(r.service, []).append(endpoint)
        return {name: tuple(sorted(set(items), key=_ENDPOINT_ORDER)) for name, items in found.items()}

    def dump(self) -> str:
        """The leases as JSON, for `--state-dir` (renewals are not written: see `restore`)."""
        return dump_leases(self.registrations())

    def restore(self, text: str, now: float) -> int:
        """Leases saved by `dump`, after a restart; returns how many were restored.

        Renewals are not saved, so a saved expiry may be stale: each live lease gets one full
        TTL from now. A client still running renews well within it; a dead one's endpoint
        leaves one TTL after the restart, as it would have without one. Drains keep their end.
        """
        for item in json.loads(text):
            lease = Registration(**{**item, "metadata": tuple(tuple(kv) for kv in item["metadata"])})
            if lease.draining and lease.expires_at <= now:
                continue
            if not lease.draining:
                lease = replace(lease, expires_at=now + lease.ttl_ms / 1000)
            self.leases[lease.lease_id] = lease
        self.version += 1
        return len(self.leases)

    def registrations(self, service: str = "") -> list[Registration]:
        """Current registrations, of one service or all, in a stable order."""
        chosen = [r for r in self.leases.values() if not service or r.service == service]
        return sorted(chosen, key=lambda r: (r.service, r.host, r.port, r.lease_id))

    def _get(self, lease_id: str) -> Registration:
        lease = self.leases.get(lease_id)
        if lease is None:
            raise RegistryError("not_found", f"no lease {lease_id!r} (expired, or never granted)")
        return lease


def dump_leases(leases: Iterable[Registration]) -> str:
    """`leases` as JSON (what `RegistryState.restore` reads).

    Registrations are frozen, so a caller may take them on the event loop and render them
    elsewhere. Each one's own field dict is what `dataclasses.asdict` gives, without its deep
    copy of every value (milliseconds per thousand leases, on every registry change).
    """
    return json.dumps([vars(lease) for lease in leases], sort_keys=True)


def _check(request: RegisterInput, policy: AddressPolicy) -> str:
    """Every field of a registration; returns the normalized host."""
    if not request.service or len(request.service) > 253:
        raise RegistryError("invalid", "service must be a non-empty name of at most 253 characters")
    try:
        host = str(ipaddress.ip_address(request.address))
    except ValueError:
        raise RegistryError("invalid", f"address {request.address!r} is not an IPv4 or IPv6 address") from None
    if not 1 <= request.port <= 65535:
        raise RegistryError("invalid", f"port {request.port} is out of range 1-65535")
    if not MIN_TTL_MS <= request.ttl_ms <= MAX_TTL_MS:
        raise RegistryError("invalid", f"ttl_ms {request.ttl_ms} is out of range {MIN_TTL_MS}-{MAX_TTL_MS}")
    if request.weight > 1_000_000:
        raise RegistryError("invalid", f"weight {request.weight} is above 1000000")
    _check_metadata(request.metadata)
    refusal = policy.refusal(host, request.port)
    if refusal:
        raise RegistryError("invalid", f"endpoint refused: {refusal}")
    return host


def _check_metadata(metadata: tuple[tuple[str, str], ...]) -> None:
    if len(metadata) > MAX_METADATA_KEYS:
        raise RegistryError("invalid", f"metadata has {len(metadata)} keys; at most {MAX_METADATA_KEYS} are allowed")
    size = sum(len(k) + len(v) for k, v in metadata)
    if size > MAX_METADATA_BYTES:
        raise RegistryError("invalid", f"metadata is {size} bytes; at most {MAX_METADATA_BYTES} are allowed")
