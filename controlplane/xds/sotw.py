"""State of the world: one resource type on one stream, without I/O.

Rules enforced here, from the xDS protocol spec ("ACK/NACK and resource type instance version",
"When to send an update"):
- a request whose response_nonce is not the last nonce sent is stale and ignored;
- a request answering the last nonce is an ACK, or a NACK when error_detail is set;
- a NACKed version is never sent again; the next different version is;
- nothing is sent when the client already has the version (including on reconnect, where the
  first request's version_info says what the client holds);
- Listener and Cluster responses carry every resource; endpoints and routes only those the
  client does not hold in that version ("Grouping resources into responses"), so one changed
  ClusterLoadAssignment among many costs Envoy one cluster update, not one per cluster.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from envoy.service.discovery.v3 import discovery_pb2

from controlplane.cache.snapshot import Resource
from controlplane.xds.limits import clip
from controlplane.xds.types import WILDCARD_TYPES, Nack
from controlplane.xds.wire import Outgoing, Wire


@dataclass
class SotwState:
    """One type on one SotW stream."""

    type_url: str
    wildcard: bool = False
    names: frozenset[str] = frozenset()
    nonce: str = ""
    sent_version: str = ""
    sent: Mapping[str, Resource] = field(default_factory=dict)
    """The resources of the last response. This and `acked` are never changed in place: a
    wildcard stream holds the snapshot's own mapping, shared by every stream (memory per stream)."""
    older: dict[str, Resource] = field(default_factory=dict)
    """Resources sent on this stream before and absent from `sent`, latest version per name."""
    acked: Mapping[str, Resource] = field(default_factory=dict)
    """The resources of the last response the client accepted."""
    just_rejected: Mapping[str, Resource] = field(default_factory=dict)
    """The resources of the last response the client rejected."""
    acked_version: str = ""
    acked_at: float = 0.0
    acked_names: AbstractSet[str] = frozenset()
    in_flight: bool = False
    rejected: set[str] = field(default_factory=set)
    last_nack: Nack | None = None
    started: bool = False
    resend_names: set[str] = field(default_factory=set)
    """Send these again on the next response even if the client holds their version."""
    requested: frozenset[str] | None = None
    """The names of the last request as sent ("*" included): an ACK mostly repeats them."""

    def on_request(self, request: discovery_pb2.DiscoveryRequest, now: float) -> str:
        """Apply a request; returns "stale", "ack", "nack" or "request"."""
        if request.response_nonce and request.response_nonce != self.nonce:
            return "stale"
        outcome = "request"
        if self.started and request.response_nonce:
            outcome = self._answer(request, now)
        self._subscribe(request)
        if not self.started:
            self._start(request)
        return outcome

    def _start(self, request: discovery_pb2.DiscoveryRequest) -> None:
        """First request: the client may already hold a version (reconnect, or another replica)."""
        self.started = True
        self.sent_version = self.acked_version = request.version_info
        if request.version_info:
            self.acked_names = self.names

    def _answer(self, request: discovery_pb2.DiscoveryRequest, now: float) -> str:
        self.in_flight = False
        if request.HasField("error_detail"):
            detail = request.error_detail
            self.last_nack = Nack(self.sent_version, self.nonce, clip(detail.message), detail.code, now)
            self.rejected.add(self.sent_version)
            self.just_rejected = self.sent
            # The client keeps what it accepted last: that is what it holds now.
            self.sent_version, self.sent = self.acked_version, self.acked
            return "nack"
        self.acked_version, self.acked_at = request.version_info, now
        self.acked_names, self.acked = self.sent.keys(), self.sent
        return "ack"

    def _subscribe(self, request: discovery_pb2.DiscoveryRequest) -> None:
        requested = frozenset(request.resource_names)
        if requested == self.requested:
            return  # the same names again (an ACK): nothing to work out
        # Interned: the same strings as the snapshot's names, not a copy per stream.
        names = frozenset(sys.intern(n) for n in requested)
        self.requested = names
        self.wildcard = self.type_url in WILDCARD_TYPES and (not names or "*" in names)
        names = names - {"*"} if "*" in names else names
        if self.started and not self.wildcard:
            # A name dropped and asked for again (a cluster removed, then added back) is a new
            # watch in Envoy: it holds nothing for it, whatever was sent before.
            self.resend_names |= (self.names - names) & self.sent.keys()
        self.names = names

    def sent_before(self, name: str) -> Resource | None:
        """The latest version of `name` sent on this stream that the client may hold.

        Two layers, `sent` then `older`, instead of a copy of everything per stream: `sent` is
        often the snapshot's own mapping, shared by every stream.
        """
        found = self.sent.get(name)
        return found if found is not None else self.older.get(name)

    def interested(self, available: Mapping[str, Resource]) -> Mapping[str, Resource]:
        """The resources this stream should hold, out of `available` (itself when it holds them all)."""
        if self.wildcard or available.keys() <= self.names:
            return available
        return {n: available[n] for n in self.names if n in available}

    def resend(self, names: Iterable[str]) -> None:
        """Send again on the next response those of `names` the client holds (a re-created cluster needs them)."""
        self.resend_names.update(n for n in names if n in self.sent)

    def respond(self, desired: Mapping[str, Resource], version: str, wire: Wire) -> Outgoing | None:
        """A response carrying `desired` (of `version`), or None when the client has it or rejected it."""
        if not desired and not self.wildcard and not self.sent:
            return None  # names that do not exist yet: remembered, sent when they appear
        resend = self.resend_names & desired.keys()
        if version in self.rejected or (version == self.sent_version and not resend):
            return None
        carried = self._carried(desired, resend)
        self.resend_names = set()
        dropped = self.sent.keys() - desired.keys()
        if dropped:
            self.older.update((n, self.sent[n]) for n in dropped)
        for name in self.older.keys() & desired.keys() if self.older else ():
            del self.older[name]
        response = wire.sotw(
            self.type_url, version, [desired[n] for n in carried], len(carried) == len(desired), avoid=self.nonce
        )
        self.sent_version, self.sent, self.nonce, self.in_flight = version, desired, response.nonce, True
        return response

    def _carried(self, desired: Mapping[str, Resource], resend: AbstractSet[str]) -> list[str]:
        """Names the response carries, sorted: all for Listeners and Clusters, else what the client lacks.

        `sent` is what the client holds now: the last response it accepted, or the one before a
        NACK; names it unsubscribed since are in `resend_names`, so they count as not held.
        """
        if self.type_url in WILDCARD_TYPES:
            return sorted(desired)
        held = self.sent
        return sorted(
            n for n, r in desired.items() if n in resend or (old := held.get(n)) is None or old.version != r.version
        )
