"""Alert evaluation wired to the running parts: gathers facts every second, sends changes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from controlplane.pipeline import Pipeline
from controlplane.telemetry.alerts import Alert, AlertEngine, Facts, NodeFacts
from controlplane.telemetry.traffic import TrafficStore
from controlplane.telemetry.webhook import payload, send
from controlplane.translate.common import short_type
from controlplane.xds.registry import Connection
from controlplane.xds.server import DiscoveryServer

RESEND = 60.0
"""Seconds between repeats of a firing alert to the webhook."""
INTERVAL = 1.0


def node_facts(connection: Connection, discovery: DiscoveryServer) -> NodeFacts:
    """NACKs still in force, and how long the oldest un-ACKed response has waited.

    A NACK is in force while it is the latest answer for its type, and also while a resource it
    rejected is quarantined: the re-sent response without that resource is usually ACKed within
    milliseconds, yet the node still lacks what the source asks for until the file is fixed.
    """
    held = {
        short_type(e.type_url): e.message
        for e in discovery.cache.quarantine.entries.values()
        if e.node_id == connection.node_id
    }
    latest = {
        short_type(type_url): state.last_nack.message
        for type_url, state in connection.session.states.items()
        if state.last_nack is not None and state.last_nack.at >= state.acked_at
    }
    nacks = tuple(sorted({**held, **latest}.items()))
    return NodeFacts(connection.node_id, nacks, discovery.waiting_since(connection.stream_id))


def facts(
    discovery: DiscoveryServer, pipeline: Pipeline, contacts: Callable[[], Mapping[str, float]], traffic: TrafficStore
) -> Facts:
    return Facts(
        now=time.time(),
        nodes=tuple(node_facts(c, discovery) for c in discovery.registry.connections.values()),
        source_contacts=contacts(),
        traffic=traffic,
        services=pipeline.served_services(),
    )


async def watch(engine: AlertEngine, gather: Any, pipeline: Pipeline) -> None:
    """Evaluate the rules every second until cancelled; post what fired or resolved.

    Alerts still firing are posted again every RESEND seconds, as Prometheus does: Alertmanager
    resolves an alert on its own when nobody repeats it within its resolve_timeout.
    """
    sending: set[asyncio.Task[bool]] = set()
    resent_at = 0.0
    while True:
        rules = pipeline.model.alerts if pipeline.model else None
        if rules is not None:
            current = gather()
            _, resolved = engine.evaluate(current, rules)
            resend = current.now - resent_at >= RESEND
            if resend:
                resent_at = current.now
            for body in notifications(engine, resolved, current.now, resend):
                if rules.webhook:
                    task = asyncio.create_task(send(rules.webhook, body))
                    sending.add(task)
                    task.add_done_callback(sending.discard)
        await asyncio.sleep(INTERVAL)


def notifications(engine: AlertEngine, resolved: list[Alert], now: float, resend: bool) -> list[Any]:
    """The webhook bodies to post: firing alerts not yet notified (all of them when a resend is
    due), and what resolved.

    Silenced alerts are left out; when a silence ends, its alerts count as new and go at once.
    Resolutions always go (Alertmanager ignores the end of an alert it never heard of).
    """
    audible = engine.audible(sorted(engine.active.values(), key=lambda a: (a.since, a.name, a.labels)), now)
    due = [a for a in audible if resend or a.key not in engine.notified]
    engine.notified = {a.key for a in audible}
    bodies = [payload(due, None) if due else None, payload(resolved, now) if resolved else None]
    return [body for body in bodies if body]
