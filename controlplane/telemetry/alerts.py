"""Alerts: rules evaluated every second over what the control plane knows of its Envoys.

An alert fires when its condition holds, and resolves when it stops holding; both are sent to
the webhook (Alertmanager's JSON format) and shown on /api/alerts and as a metric.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from controlplane.model import AlertRules
from controlplane.telemetry.traffic import TrafficStore

MIN_REQUESTS = 10
"""A service's error rate is judged only over at least this many requests in the window."""


@dataclass(frozen=True)
class Alert:
    """One firing alert, identified by its name and labels."""

    name: str
    labels: tuple[tuple[str, str], ...]
    summary: str
    since: float = 0.0

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return (self.name, self.labels)


@dataclass(frozen=True)
class NodeFacts:
    """What is known of one connected Envoy."""

    node_id: str
    nacks: tuple[tuple[str, str], ...]
    """(resource type, Envoy's message) for each type whose latest answer was a NACK."""
    waiting_since: float | None
    """When its oldest un-ACKed response was sent, if any."""


@dataclass(frozen=True)
class Facts:
    """Everything the rules look at, gathered by the composition root."""

    now: float
    nodes: tuple[NodeFacts, ...]
    source_contacts: Mapping[str, float]
    """Source name (`files`, `kubernetes`) -> when it was last read or heard from (0: never)."""
    traffic: TrafficStore
    services: tuple[str, ...]


ALERT_NAMES = (
    "EnvoyRejectedConfig",
    "EnvoyBehind",
    "EnvoyDisconnected",
    "ServiceErrorRate",
    "ServiceLatency",
    "ServiceNoHealthyEndpoint",
    "SourceStale",
)
"""Every alert the rules can raise: a silence must name one of them (a typo would silence nothing)."""

MAX_SILENCE_SECONDS = 7 * 24 * 3600.0
"""A silence ends within a week: a forgotten one must not hide an outage for good."""


@dataclass(frozen=True)
class Silence:
    """Alerts called `name` whose labels include all of `labels` are not sent until `until`.

    A silenced alert still fires and shows on the page (marked), as with Alertmanager's silences:
    only the notifications stop.
    """

    id: str
    name: str
    labels: tuple[tuple[str, str], ...]
    until: float
    comment: str = ""

    def covers(self, alert: Alert, now: float) -> bool:
        return now < self.until and alert.name == self.name and set(self.labels) <= set(alert.labels)


FORGET_AFTER = 600.0
"""Seconds after `disconnected_for` when a vanished Envoy is forgotten and its alert resolves:
a gateway scaled down, or one now served by another replica, must not alert forever."""


@dataclass
class AlertEngine:
    """Active alerts, and when each Envoy was last seen (to tell a disconnection)."""

    active: dict[tuple[str, tuple[tuple[str, str], ...]], Alert] = field(default_factory=dict)
    last_seen: dict[str, float] = field(default_factory=dict)
    silences: dict[str, Silence] = field(default_factory=dict)
    notified: set[tuple[str, tuple[tuple[str, str], ...]]] = field(default_factory=set)
    """Alerts sent to the webhook as firing and not silenced since (set by the notifier)."""

    def silence(self, silence: Silence) -> Silence:
        """Add (or replace, by id) a silence; the caller checked its name and duration."""
        self.silences[silence.id] = silence
        return silence

    def unsilence(self, silence_id: str) -> bool:
        """End a silence now; False when there is no such silence."""
        return self.silences.pop(silence_id, None) is not None

    def live_silences(self, now: float) -> list[Silence]:
        """Silences still in force, soonest to end first; expired ones are dropped."""
        for key in [k for k, s in self.silences.items() if s.until <= now]:
            del self.silences[key]
        return sorted(self.silences.values(), key=lambda s: (s.until, s.id))

    def silenced_by(self, alert: Alert, now: float) -> Silence | None:
        """The silence in force over `alert`, if any (the one ending last)."""
        covering = [s for s in self.silences.values() if s.covers(alert, now)]
        return max(covering, key=lambda s: s.until) if covering else None

    def audible(self, alerts: list[Alert], now: float) -> list[Alert]:
        """The alerts no silence covers: the ones to notify."""
        return [a for a in alerts if self.silenced_by(a, now) is None]

    def evaluate(self, facts: Facts, rules: AlertRules) -> tuple[list[Alert], list[Alert]]:
        """(newly firing, newly resolved) after looking at `facts`."""
        for node in facts.nodes:
            self.last_seen[node.node_id] = facts.now
        holding = {a.key: a for a in self._conditions(facts, rules)}
        fired = [Alert(a.name, a.labels, a.summary, facts.now) for k, a in holding.items() if k not in self.active]
        resolved = [a for k, a in self.active.items() if k not in holding]
        for alert in fired:
            self.active[alert.key] = alert
        for key, alert in holding.items():  # still firing: keep its start, refresh what it says
            if key in self.active and self.active[key].summary != alert.summary:
                self.active[key] = Alert(alert.name, alert.labels, alert.summary, self.active[key].since)
        for alert in resolved:
            del self.active[alert.key]
        return fired, resolved

    def _conditions(self, facts: Facts, rules: AlertRules) -> Iterator[Alert]:
        yield from _envoy_alerts(facts, rules, self.last_seen)
        yield from _service_alerts(facts, rules)
        for source, contact in sorted(facts.source_contacts.items()):
            if contact and facts.now - contact > rules.source_stale_ms / 1000:
                yield Alert("SourceStale", (("source", source),), f"the {source} source has not synced recently")


def _envoy_alerts(facts: Facts, rules: AlertRules, last_seen: dict[str, float]) -> Iterator[Alert]:
    connected = {n.node_id for n in facts.nodes}
    for node in facts.nodes:
        for type_name, message in node.nacks if rules.nack else ():
            yield Alert("EnvoyRejectedConfig", (("node", node.node_id), ("type", type_name)), message)
        if node.waiting_since is not None and facts.now - node.waiting_since > rules.behind_ms / 1000:
            yield Alert("EnvoyBehind", (("node", node.node_id),), "has not acknowledged its last update")
    for node_id, seen in list(last_seen.items()):
        if node_id not in connected and facts.now - seen > rules.disconnected_ms / 1000 + FORGET_AFTER:
            del last_seen[node_id]  # gone for good (scaled down, or serving from another replica)
        elif node_id not in connected and facts.now - seen > rules.disconnected_ms / 1000:
            yield Alert("EnvoyDisconnected", (("node", node_id),), f"disconnected for {facts.now - seen:.0f}s")


def _service_alerts(facts: Facts, rules: AlertRules) -> Iterator[Alert]:
    for service in facts.services:
        labels = (("service", service),)
        if rules.error_rate_percent is not None:
            f = facts.traffic.figures(service, facts.now, rules.error_window_ms / 1000)
            if f.requests >= MIN_REQUESTS and f.error_rate * 100 > rules.error_rate_percent:
                yield Alert("ServiceErrorRate", labels, f"{f.error_rate:.0%} of {f.requests} requests failed (5xx)")
        if rules.p99_ms is not None:
            f = facts.traffic.figures(service, facts.now, rules.latency_window_ms / 1000)
            if f.p99_ms is not None and f.p99_ms > rules.p99_ms:
                yield Alert("ServiceLatency", labels, f"p99 {f.p99_ms:.0f}ms above {rules.p99_ms:.0f}ms")
        if rules.no_healthy_endpoint:
            for node, healthy in sorted(facts.traffic.healthy_by_node(service).items()):
                if healthy == 0:
                    yield Alert("ServiceNoHealthyEndpoint", (*labels, ("node", node)), "no healthy endpoint")
