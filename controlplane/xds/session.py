"""One Envoy's stream: every resource type it subscribed to, pushed in make-before-break order.

Order (xDS spec, "Eventual consistency considerations"): CDS, then EDS, then LDS, then RDS; a
type never has two responses in flight. Listeners and routes wait until Envoy has acknowledged
the clusters (it does so once they have warmed) and subscribed to their endpoints, so no route
points at a cluster still warming. Clusters a new snapshot drops are kept, with their endpoints,
until everything else is acknowledged; only then does a final CDS remove them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controlplane.cache.snapshot import Resource, Snapshot, resources_version
from controlplane.translate import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, TYPE_ORDER
from controlplane.xds.delta import DeltaState
from controlplane.xds.limits import (
    MAX_NAME_BYTES,
    MAX_NAMES_PER_STREAM,
    MAX_TYPES_PER_STREAM,
    LimitExceeded,
    check_names,
)
from controlplane.xds.sotw import SotwState
from controlplane.xds.types import TypeStatus
from controlplane.xds.wire import Outgoing, Wire

State = SotwState | DeltaState
Desired = dict[str, Mapping[str, Resource]]


@dataclass
class Session:
    """The protocol state of one stream (ADS, or a single-type service)."""

    node_id: str
    node_group: str
    delta: bool
    states: dict[str, State] = field(default_factory=dict)
    max_names: int = MAX_NAMES_PER_STREAM
    """Names this stream may hold over all its types; more raise LimitExceeded."""
    initial_names: int = 0
    """Names the client said it holds when it opened each delta type (`initial_resource_versions`)."""
    wire: Wire = field(default_factory=Wire)
    """Builds the responses; the server's is shared by every stream (a fresh one: this stream's own)."""
    _settled_on: Snapshot | None = field(default=None, repr=False, compare=False)
    """The snapshot `responses` last worked out, while no request since can change its answer."""
    _answered: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    """Types that the last `responses` sent from `_settled_on` (with nothing held back)."""

    def on_request(self, request: Any, now: float) -> str:
        """Apply one request; returns "stale", "ack", "nack" or "request".

        Raises LimitExceeded, before changing anything, for a request that would make the stream
        hold too many types or names, or a name longer than any served one.
        """
        self._check(request)
        state = self.states.get(request.type_url)
        if state is None and self.delta:
            self.initial_names += len(request.initial_resource_versions)
        if state is None:
            state = DeltaState(request.type_url) if self.delta else SotwState(request.type_url)
            self.states[request.type_url] = state
            self._settled_on = None
        requested = state.requested if isinstance(state, SotwState) else None
        outcome = state.on_request(request, now)
        if not self._changes_nothing(request, outcome, state, requested):
            self._settled_on = None
        return outcome

    def _changes_nothing(self, request: Any, outcome: str, state: State, requested: frozenset[str] | None) -> bool:
        """Whether `responses` must still answer nothing for the snapshot it last worked out.

        True for a stale request, and for the ACK of a response that snapshot itself produced,
        its names unchanged: the client now holds what it was sent, and nothing else moved. Not
        for clusters: their ACK lets listeners and routes go, and removes held clusters. With 50
        Envoys, this spares 50 walks of every type per change (one per ACK), on the event loop
        that stamps the last ACK.
        """
        if outcome not in ("ack", "stale"):
            return False
        if self.delta:
            renamed = bool(request.resource_names_subscribe or request.resource_names_unsubscribe)
        else:
            renamed = isinstance(state, SotwState) and state.requested is not requested
        if renamed:
            return False
        return outcome == "stale" or (request.type_url != CLUSTER_TYPE and request.type_url in self._answered)

    def _check(self, request: Any) -> None:
        state = self.states.get(request.type_url)
        if state is None and len(self.states) >= MAX_TYPES_PER_STREAM:
            raise LimitExceeded("RESOURCE_EXHAUSTED", f"stream asks for more than {MAX_TYPES_PER_STREAM} types")
        held = self.initial_names + sum(len(s.names) for s in self.states.values())
        added = _delta_added(request, state) if self.delta else _sotw_added(request, state)
        if held + added > self.max_names:
            raise LimitExceeded(
                "RESOURCE_EXHAUSTED",
                f"stream would hold {held + added} resource names; at most {self.max_names} allowed",
            )

    def responses(self, snapshot: Snapshot) -> list[Outgoing]:
        """What to send now, in CDS, EDS, LDS, RDS order.

        First with every cluster the client holds kept; once nothing is pending, the final
        step sends the exact snapshot, which removes clusters no longer used.
        """
        if snapshot is self._settled_on:
            return []
        # The version of a snapshot's own mapping is known: not hashed again per stream and request.
        types = [snapshot.get(t) for t in TYPE_ORDER]
        known = {id(s.resources): s.version for s in types}
        exact = {s.type_url: s.resources for s in types}  # shared, never changed
        kept = self._with_held(exact)
        responses, waiting = self._next(kept, known)
        if not responses and not waiting and kept is not exact:
            responses = self._next(exact, known)[0]
        self._settled_on = snapshot
        self._answered = frozenset(r.type_url for r in responses) if kept is exact else frozenset()
        return responses

    def _with_held(self, desired: Desired) -> Desired:
        """`desired` plus the clusters and endpoints the client holds; `desired` itself if that adds none."""
        result = desired
        for type_url in (CLUSTER_TYPE, ENDPOINT_TYPE):
            state = self.states.get(type_url)
            if state is not None:
                gone = state.acked_names - desired[type_url].keys()
                held = {n: r for n in gone if (r := state.sent_before(n)) is not None}
                if held:
                    result = {**result, type_url: {**desired[type_url], **held}}
        return result

    def _next(self, desired: Desired, known: Mapping[int, str]) -> tuple[list[Outgoing], bool]:
        """(responses to send, whether some type still waits for Envoy).

        Envoy defers its CDS ACK until new clusters have warmed, i.e. received their endpoints,
        so EDS must flow while CDS is in flight; listeners and routes wait for that ACK, which
        guarantees they never point at a cluster that is still warming.
        """
        responses: list[Outgoing] = []
        waiting = False
        for type_url in TYPE_ORDER:
            state = self.states.get(type_url)
            if state is None:
                continue
            if state.in_flight or (type_url in (LISTENER_TYPE, ROUTE_TYPE) and not self._clusters_warm()):
                waiting = True
                continue
            response = self._respond(state, state.interested(desired[type_url]), known)
            if response is not None:
                responses.append(response)
        return responses, waiting or bool(responses)

    def _respond(self, state: State, resources: Mapping[str, Resource], known: Mapping[int, str]) -> Outgoing | None:
        version = known.get(id(resources)) or resources_version(resources)
        changed_clusters = state.type_url == CLUSTER_TYPE and version != state.sent_version
        updated = _updated(state, resources) if changed_clusters else set()
        response = state.respond(resources, version, self.wire)
        endpoints = self.states.get(ENDPOINT_TYPE)
        if response is not None and updated and endpoints is not None:
            # xDS spec, "Resource warming": a changed cluster is re-created and warms until a
            # ClusterLoadAssignment arrives, even an unchanged one; Envoy asks again (SotW) or not
            # at all (delta), and without it keeps the old cluster for initial_fetch_timeout (15s).
            endpoints.resend(updated)
        return response

    def _clusters_warm(self) -> bool:
        """Whether Envoy acknowledged the clusters and asked for the endpoints of each of them."""
        clusters, endpoints = self.states.get(CLUSTER_TYPE), self.states.get(ENDPOINT_TYPE)
        if clusters is None:
            return True
        if clusters.in_flight:
            return False
        if endpoints is None:
            return not clusters.acked_names
        return endpoints.wildcard or clusters.acked_names <= endpoints.names

    def status(self) -> list[TypeStatus]:
        """Per-type state, in protocol order."""
        ordered = [t for t in TYPE_ORDER if t in self.states] + sorted(self.states.keys() - set(TYPE_ORDER))
        return [TypeStatus.of(self.states[t]) for t in ordered]


def _updated(state: State, resources: Mapping[str, Resource]) -> set[str]:
    """Names this stream sent before in another version: the client will re-create them."""
    return {n for n, r in resources.items() if (old := state.sent_before(n)) is not None and old.version != r.version}


def _sotw_added(request: Any, state: State | None) -> int:
    """Names a SotW request adds to the stream (it replaces its type's names); checks their length."""
    if request.ByteSize() > MAX_NAME_BYTES:  # a request no longer than the limit holds no longer name
        check_names(request.resource_names)
    return len(request.resource_names) - (len(state.names) if state is not None else 0)


def _delta_added(request: Any, state: State | None) -> int:
    """Names a delta request adds: new subscriptions, plus the initial versions of a type's first request."""
    wanted = set(request.resource_names_subscribe) - {"*"}
    check_names(wanted)
    if state is not None:
        return len(wanted - state.names)
    initial = request.initial_resource_versions
    check_names(initial)
    check_names(initial.values())
    return len(wanted) + len(initial)
