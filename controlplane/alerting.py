"""Alert evaluation wired to the running parts: gathers facts every second, sends changes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from controlplane.pipeline import Pipeline
from controlplane.telemetry.alerts import AlertEngine, Facts, NodeFacts
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
            fired, resolved = engine.evaluate(current, rules)
            bodies = [payload(fired, None) if fired else None, payload(resolved, current.now) if resolved else None]
            if current.now - resent_at >= RESEND:
                resent_at = current.now
                still = [a for a in engine.active.values() if a not in fired]
                bodies.append(payload(still, None) if still else None)
            for body in bodies:
                if body and rules.webhook:
                    task = asyncio.create_task(send(rules.webhook, body))
                    sending.add(task)
                    task.add_done_callback(sending.discard)
        await asyncio.sleep(INTERVAL)
