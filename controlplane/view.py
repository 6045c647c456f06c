"""The view of the running system that the status server is given.

It reads the cache, pipeline, stream registry, metrics, traffic store and alert engine, and
offers the only actions the status API may take (rollback and lifting it).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from controlplane.cache import SnapshotCache
from controlplane.cache.quarantine import QuarantineEntry, quoted_values
from controlplane.model import Origin, Service
from controlplane.pipeline import Pipeline
from controlplane.render import resources_to_data
from controlplane.telemetry.alerts import AlertEngine, Silence
from controlplane.telemetry.endpoints import EndpointState, endpoint_states
from controlplane.telemetry.metrics import Metrics
from controlplane.telemetry.traffic import TrafficStore
from controlplane.translate import LISTENER_TYPE, ROUTE_TYPE
from controlplane.translate.common import short_type
from controlplane.xds.registry import NodeRegistry

TRAFFIC_WINDOW = 60.0
"""Seconds of pushed stats behind the request rate, error rate and latency shown per service."""
SERIES_WINDOW, SERIES_STEP = 300.0, 10.0


class View:
    """The view given to the status server: reads, plus the authenticated rollback actions."""

    def __init__(
        self,
        cache: SnapshotCache,
        pipeline: Pipeline,
        registry: NodeRegistry,
        metrics: Metrics,
        traffic: TrafficStore,
        alerts: AlertEngine,
    ) -> None:
        self.cache, self.pipeline, self.registry, self.metrics = cache, pipeline, registry, metrics
        self.traffic, self.alerts = traffic, alerts
        self.source_checked_at: Callable[[], float] = lambda: 0.0
        self.kubernetes: Callable[[], dict[str, Any]] | None = None
        """The Kubernetes source's report, when it runs."""
        self.xds_security: dict[str, Any] = {"transport": "plaintext", "node_authorization": "off", "rules": 0}
        """How the xDS port is protected: transport (mTLS or plaintext) and whether node authorization is on."""

    def active_alerts(self) -> list[dict[str, Any]]:
        """Firing alerts, oldest first, each with the silence covering it (if any)."""
        now = time.time()
        ordered = sorted(self.alerts.active.values(), key=lambda a: (a.since, a.name, a.labels))
        result = []
        for alert in ordered:
            silence = self.alerts.silenced_by(alert, now)
            entry = {"name": alert.name, "labels": dict(alert.labels), "summary": alert.summary, "since": alert.since}
            result.append({**entry, "silenced_until": silence.until if silence else None})
        return result

    def silences(self) -> list[dict[str, Any]]:
        return [_silence_data(s) for s in self.alerts.live_silences(time.time())]

    def silence(self, name: str, labels: dict[str, str], seconds: float, comment: str) -> dict[str, Any]:
        labelled = tuple(sorted(labels.items()))
        until = time.time() + seconds
        silence_id = hashlib.sha256(repr((name, labelled, until)).encode()).hexdigest()[:12]
        return _silence_data(self.alerts.silence(Silence(silence_id, name, labelled, until, comment)))

    def unsilence(self, silence_id: str) -> bool:
        return self.alerts.unsilence(silence_id)

    def services(self) -> list[dict[str, Any]]:
        """Every service: endpoints and the traffic figures the Envoys pushed (last 60s)."""
        model = self.pipeline.model
        if model is None:
            return []
        now = time.time()
        result = []
        for service in model.with_discovered(self.pipeline.discovered).services:
            figures = self.traffic.figures(service.name, now, TRAFFIC_WINDOW)
            result.append(
                {
                    "name": service.name,
                    "lb": service.lb.value,
                    "discovery": service.discovery,
                    "endpoints": _endpoints(service, endpoint_states(service, self.traffic, now, TRAFFIC_WINDOW)),
                    "traffic": asdict(figures),
                    "series": self.traffic.series(service.name, now, SERIES_WINDOW, SERIES_STEP),
                }
            )
        return result

    def endpoint_figures(self) -> dict[tuple[str, str], tuple[float, float, int]]:
        """Per configured (service, endpoint), last minute: (requests/s, error ratio, Envoys with it unhealthy)."""
        model = self.pipeline.model
        if model is None:
            return {}
        now, result = time.time(), {}
        for service in model.with_discovered(self.pipeline.discovered).services:
            for state in endpoint_states(service, self.traffic, now, TRAFFIC_WINDOW):
                f = state.figures
                result[(service.name, state.address)] = (f.rate, f.error_rate, len(state.unhealthy_in))
        return result

    def metrics_text(self) -> bytes:
        return self.metrics.render()

    def ready(self) -> bool:
        return self.cache.ready

    def config(self) -> dict[str, Any]:
        state = self.pipeline.state
        return {
            "version": state.version,
            "applied_at": state.applied_at,
            "sources": state.sources,
            "problems": [str(p) for p in state.problems],
            "serving": state.serving,
            "source_age": time.time() - self.source_checked_at() if self.source_checked_at() else None,
            "pinned": self.pipeline.pinned or "",
            "held_version": state.held_version,
            "rejected_at": state.rejected_at,
            "history": [{"at": at, "version": v} for at, v in state.history],
            "quarantined": [self._quarantined(e) for e in self.cache.quarantine.entries.values()],
            "kubernetes": self.kubernetes() if self.kubernetes else None,
            "xds_security": self.xds_security,
        }

    def debug_config(self, node_id: str) -> list[dict[str, Any]]:
        """What each stream of `node_id` was sent and accepted, with the accepted resources."""
        result = []
        for c in self.registry.connections.values():
            if c.node_id != node_id:
                continue
            types = []
            for status in c.session.status():
                acked = c.session.states[status.type_url].acked
                messages = {status.type_url: tuple(r.message for r in acked.values())}
                types.append({**asdict(status), "accepted": next(iter(resources_to_data(messages).values()))})
            result.append({"node_id": c.node_id, "node_cluster": c.node_group, "api": c.api, "types": types})
        return result

    def history(self) -> list[dict[str, Any]]:
        pinned = self.pipeline.pinned
        return [
            {"version": e.version, "at": e.at, "pinned": e.version == pinned} for e in self.pipeline.history.entries
        ]

    def history_config(self, version: str, node_cluster: str) -> dict[str, Any] | None:
        entry = self.pipeline.history.find(version)
        if entry is None:
            return None
        snapshot = entry.groups.get(node_cluster, entry.groups[""])
        resources = {t: tuple(r.message for r in ts.resources.values()) for t, ts in snapshot.types.items()}
        return {"version": entry.version, "at": entry.at, "resources": resources_to_data(resources)}

    def pin(self, version: str) -> str | None:
        return self.pipeline.pin(version)

    def unpin(self) -> None:
        self.pipeline.unpin()

    def _quarantined(self, entry: QuarantineEntry) -> dict[str, Any]:
        """A quarantine entry with where its resource comes from (`file:line`)."""
        origin = self._origin(entry)
        return {
            "node_group": entry.group,
            "type": short_type(entry.type_url),
            "name": entry.name,
            "source": f"{origin.source}:{origin.line}" if origin else "",
            "message": entry.message,
            "node_id": entry.node_id,
            "kept": "last accepted version" if entry.fallback else "not sent",
        }

    def _origin(self, entry: QuarantineEntry) -> Origin | None:
        """Where the rejected thing was written: the route Envoy's message quotes, else the listener or service."""
        model = self.pipeline.model
        if model is None:
            return None
        route = self._quoted_route(entry) if entry.type_url == ROUTE_TYPE else None
        if route is not None and (origin := model.origins.get(f"route/{entry.name}/{route}")):
            return origin
        kind = "listener" if entry.type_url in (LISTENER_TYPE, ROUTE_TYPE) else "service"
        return model.origins.get(f"{kind}/{entry.name}")

    def _quoted_route(self, entry: QuarantineEntry) -> str | None:
        """`HOST/N` of the one route of the rejected route configuration holding a value Envoy quotes."""
        snapshot = self.cache.published(entry.group)
        resource = snapshot.get(ROUTE_TYPE).resources.get(entry.name) if snapshot else None
        if resource is None or resource.version != entry.rejected_version:
            return None
        quoted = quoted_values(entry.message)
        found = [
            f"{host.name}/{k}"
            for host in resource.message.virtual_hosts
            for k, route in enumerate(host.routes)
            if any(q in route.SerializeToString(deterministic=True) for q in quoted)
        ]
        return found[0] if len(found) == 1 else None

    def nodes(self) -> list[dict[str, Any]]:
        result = []
        for c in self.registry.connections.values():
            types = [s.as_dict() for s in c.session.status()]
            result.append(
                {
                    "node_id": c.node_id,
                    "node_cluster": c.node_group,
                    "envoy_version": c.envoy_version,
                    "peer": c.peer,
                    "identity": c.identity,
                    "api": c.api,
                    "connected_at": c.connected_at,
                    "types": types,
                }
            )
        return result


def _endpoints(service: Service, states: list[EndpointState]) -> list[dict[str, Any]]:
    """The configured endpoints with what the Envoys pushed about each (config order)."""
    return [
        {
            "address": state.address,
            "zone": e.zone,
            "priority": e.priority,
            "weight": e.weight,
            "draining": e.draining,
            **asdict(state.figures),
            "health": state.health,
            "healthy_in": list(state.healthy_in),
            "unhealthy_in": list(state.unhealthy_in),
            "causes": list(state.causes),
        }
        for e, state in zip(service.endpoints, states, strict=True)
    ]


def _silence_data(silence: Silence) -> dict[str, Any]:
    return {
        "id": silence.id,
        "name": silence.name,
        "labels": dict(silence.labels),
        "until": silence.until,
        "comment": silence.comment,
    }
