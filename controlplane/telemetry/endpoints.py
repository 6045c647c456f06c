"""Per-endpoint state: what the Envoys pushed about each configured endpoint, and why one is unhealthy.

Envoy pushes one health bit per endpoint (`cluster.endpoint.healthy`, its coarse health), not
the cause. The cause is named only where the facts decide it: the service's config (is there an
active health check, is there outlier detection, is the endpoint draining) and, per Envoy, the
service's counts of ejected endpoints and of endpoints passing health checks. Otherwise both
causes are named.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.model import Endpoint, Service
from controlplane.telemetry.traffic import EndpointFigures, Sample, TrafficStore

DRAINING = "draining"
FAILING_HEALTH_CHECKS = "failing health checks"
EJECTED = "ejected by outlier detection"
EITHER = "failing health checks or ejected"
UNKNOWN_CAUSE = "unhealthy"


@dataclass(frozen=True)
class EndpointState:
    """One configured endpoint of a service, as the Envoys report it over a window."""

    address: str
    """As Envoy writes it: `host:port`, IPv6 hosts in brackets."""
    figures: EndpointFigures
    healthy_in: tuple[str, ...]
    """Node ids of the Envoys whose latest push has this endpoint healthy."""
    unhealthy_in: tuple[str, ...]
    causes: tuple[str, ...]
    """Why it is unhealthy, as far as the facts tell; empty while healthy everywhere."""

    @property
    def health(self) -> str:
        """`healthy`, `unhealthy` (in at least one Envoy), or `unknown` (no Envoy reported it)."""
        if self.unhealthy_in:
            return "unhealthy"
        return "healthy" if self.healthy_in else "unknown"


def envoy_address(endpoint: Endpoint) -> str:
    """The endpoint's address the way Envoy tags its per-endpoint stats."""
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    return f"{host}:{endpoint.port}"


def endpoint_states(service: Service, traffic: TrafficStore, now: float, window: float) -> list[EndpointState]:
    """Every configured endpoint of `service`, in config order, with figures over `window` seconds."""
    figures = traffic.endpoint_figures(service.name, now, window)
    latest = traffic.latest(service.name, now, window)
    return [_state(service, endpoint, figures, latest) for endpoint in service.endpoints]


def _state(
    service: Service, endpoint: Endpoint, figures: dict[str, EndpointFigures], latest: dict[str, Sample]
) -> EndpointState:
    address = envoy_address(endpoint)
    seen = {node: s.endpoints[address].healthy for node, s in latest.items() if address in s.endpoints}
    unhealthy = tuple(sorted(node for node, healthy in seen.items() if healthy is False))
    causes = sorted({cause(service, endpoint, latest[node]) for node in unhealthy})
    return EndpointState(
        address=address,
        figures=figures.get(address, EndpointFigures(0, 0, 0.0, 0.0)),
        healthy_in=tuple(sorted(node for node, healthy in seen.items() if healthy)),
        unhealthy_in=unhealthy,
        causes=tuple(causes),
    )


def cause(service: Service, endpoint: Endpoint, sample: Sample) -> str:
    """Why one Envoy (its latest `sample` of the service) has `endpoint` unhealthy."""
    if endpoint.draining:
        return DRAINING
    checked, detected = service.health_check is not None, service.outlier_detection is not None
    if checked and not detected:
        return FAILING_HEALTH_CHECKS
    if detected and not checked:
        return EJECTED
    if not (checked and detected):
        return UNKNOWN_CAUSE
    failing = _failing_health_checks(sample)
    if sample.ejected == 0 and failing:
        return FAILING_HEALTH_CHECKS
    if failing == 0 and sample.ejected:
        return EJECTED
    return EITHER


def _failing_health_checks(sample: Sample) -> int | None:
    """Endpoints this Envoy has that do not pass health checks, if it reported the count."""
    if sample.passing_health_checks is None:
        return None
    return len(sample.endpoints) - sample.passing_health_checks
