"""Incremental (delta) xDS: one resource type on one stream, without I/O.

The server tracks which version of each resource the client holds. A response carries only
resources whose version differs and names the client holds that no longer exist. A NACK
restores what the client held before that response, and the rejected resource versions are
never sent again (xDS spec: "Incremental xDS", "ACK and NACK semantics").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from envoy.service.discovery.v3 import discovery_pb2

from controlplane.cache.snapshot import Resource
from controlplane.xds.limits import clip
from controlplane.xds.types import WILDCARD_TYPES, Nack
from controlplane.xds.wire import Outgoing, Wire

Changes = dict[str, tuple[str | None, str | None]]
"""name -> (version the client held before, version sent; None = removed)."""


@dataclass
class DeltaState:
    """One type on one delta stream."""

    type_url: str
    wildcard: bool = False
    names: set[str] = field(default_factory=set)
    known: dict[str, str] = field(default_factory=dict)
    """What the client holds (assumed on send, reverted on NACK)."""
    pending: dict[str, Changes] = field(default_factory=dict)
    rejected: dict[str, set[str]] = field(default_factory=dict)
    last_nack: Nack | None = None
    last_sent: dict[str, Resource] = field(default_factory=dict)
    """Every resource ever sent on this stream, latest version per name."""
    acked: dict[str, Resource] = field(default_factory=dict)
    """Resources the client accepted (as far as this stream sent them)."""
    just_rejected: dict[str, Resource] = field(default_factory=dict)
    """The changed resources of the last response the client rejected."""
    sent_by_nonce: dict[str, dict[str, Resource | None]] = field(default_factory=dict)
    nonce: str = ""
    sent_version: str = ""
    acked_version: str = ""
    acked_at: float = 0.0
    started: bool = False
    resend_names: set[str] = field(default_factory=set)
    """Names to send on the next response even if the client holds their version."""

    @property
    def in_flight(self) -> bool:
        """Whether a response awaits its ACK or NACK."""
        return bool(self.pending)

    @property
    def acked_names(self) -> frozenset[str]:
        """Names the client holds."""
        return frozenset(self.known)

    def on_request(self, request: discovery_pb2.DeltaDiscoveryRequest, now: float) -> str:
        """Apply a request; returns "stale", "ack", "nack" or "request"."""
        if not self.started:
            self._start(request)
        self._subscribe(request)
        if not request.response_nonce:
            return "request"
        changes = self.pending.pop(request.response_nonce, None)
        sent = self.sent_by_nonce.pop(request.response_nonce, {})
        if changes is None:
            return "stale"
        if request.HasField("error_detail"):
            self._reject(request, changes, now)
            self.just_rejected = {name: r for name, r in sent.items() if r is not None}
            return "nack"
        for name, resource in sent.items():
            if resource is None:
                self.acked.pop(name, None)
            else:
                self.acked[name] = resource
        if not self.pending:
            self.acked_version, self.acked_at = self.sent_version, now
        return "ack"

    def _start(self, request: discovery_pb2.DeltaDiscoveryRequest) -> None:
        self.started = True
        self.known = dict(request.initial_resource_versions)
        subscribe = set(request.resource_names_subscribe)
        self.wildcard = self.type_url in WILDCARD_TYPES and (not subscribe or "*" in subscribe)

    def _subscribe(self, request: discovery_pb2.DeltaDiscoveryRequest) -> None:
        subscribe = set(request.resource_names_subscribe)
        unsubscribe = set(request.resource_names_unsubscribe)
        if "*" in subscribe:
            self.wildcard = True
        if "*" in unsubscribe:
            self.wildcard = False
        self.names = (self.names | subscribe) - unsubscribe - {"*"}
        for name in unsubscribe:
            self.known.pop(name, None)

    def _reject(self, request: discovery_pb2.DeltaDiscoveryRequest, changes: Changes, now: float) -> None:
        detail = request.error_detail
        self.last_nack = Nack(self.sent_version, request.response_nonce, clip(detail.message), detail.code, now)
        for name, (before, sent) in changes.items():
            if sent is not None:
                self.rejected.setdefault(name, set()).add(sent)
            if before is None:
                self.known.pop(name, None)
            else:
                self.known[name] = before

    def sent_before(self, name: str) -> Resource | None:
        """The latest version of `name` sent on this stream."""
        return self.last_sent.get(name)

    def interested(self, available: Mapping[str, Resource]) -> Mapping[str, Resource]:
        """The resources this stream should hold, out of `available` (itself for a wildcard stream:
        the snapshot's own mapping, whose version is known without hashing it again)."""
        if self.wildcard:
            return available
        return {n: available[n] for n in self.names if n in available}

    def retry(self, names: Iterable[str]) -> None:
        """Allow the just-rejected versions of `names` again: Envoy's error was about other resources."""
        for name in names:
            if (resource := self.just_rejected.get(name)) is not None:
                self.rejected.get(name, set()).discard(resource.version)

    def resend(self, names: Iterable[str]) -> None:
        """Send those of `names` the client holds again on the next response (a re-created cluster needs them)."""
        self.resend_names.update(n for n in names if n in self.known)

    def respond(self, desired: Mapping[str, Resource], system_version: str, wire: Wire) -> Outgoing | None:
        """Changed and removed resources since what the client holds, or None when nothing changed."""
        changed = [
            desired[n]
            for n in sorted(desired)
            if (self.known.get(n) != desired[n].version or n in self.resend_names)
            and desired[n].version not in self.rejected.get(n, ())
        ]
        self.resend_names.clear()
        removed = sorted(n for n in self.known if n not in desired and (self.wildcard or n in self.names))
        if not changed and not removed:
            return None
        response = wire.delta(self.type_url, system_version, changed, removed, avoid=self.nonce)
        nonce = response.nonce
        changes: Changes = {r.name: (self.known.get(r.name), r.version) for r in changed}
        changes.update({n: (self.known[n], None) for n in removed})
        self._apply(changes)
        self.last_sent.update((r.name, r) for r in changed)
        self.sent_by_nonce[nonce] = {**{r.name: r for r in changed}, **dict.fromkeys(removed)}
        self.pending[nonce], self.nonce, self.sent_version = changes, nonce, system_version
        return response

    def _apply(self, changes: Changes) -> None:
        for name, (_, sent) in changes.items():
            if sent is None:
                self.known.pop(name, None)
            else:
                self.known[name] = sent
