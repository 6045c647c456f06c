"""Traffic figures per upstream service and per endpoint, from the stats Envoys push (OpenTelemetry).

Each export adds one sample per (Envoy, service): requests, 5xx responses and the latency
histogram's bucket counts since the previous export, the health gauges, and the same counts
per endpoint with the endpoint's health as that Envoy sees it. Figures over a window merge the
samples of every Envoy: request rate, error rate, and p50/p99 read off the merged histogram
(upper bound of the bucket that holds the quantile, as Prometheus' histogram_quantile does
without interpolation). Envoy keeps no latency histogram per endpoint, so there is no per-endpoint
latency.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

SAMPLES_KEPT = 120
"""Per (Envoy, service): at 5s a sample, the last 10 minutes."""
ENDPOINTS_KEPT_SECONDS = 120.0
"""Per-endpoint counts are dropped from samples older than this: the page and the API look at the
last minute, and a big service's endpoints in every sample of 10 minutes would cost memory."""


@dataclass(slots=True)
class EndpointSample:
    """What one Envoy reported for one endpoint of a service in one push."""

    requests: int = 0
    errors: int = 0
    """Requests answered 5xx (Envoy's per-host `rq_error`)."""
    healthy: bool | None = None
    """Envoy's view: False while the endpoint fails health checks, is ejected or is draining."""


@dataclass
class Sample:
    """What one Envoy reported for one service in one push."""

    at: float
    requests: int = 0
    errors: int = 0
    bounds: tuple[float, ...] = ()
    buckets: tuple[int, ...] = ()
    healthy: int | None = None
    """Healthy endpoints the Envoy sees (its `membership_healthy` gauge), if reported."""
    ejected: int | None = None
    """Endpoints outlier detection has ejected right now (`outlier_detection.ejections_active`)."""
    passing_health_checks: int | None = None
    """Endpoints passing active health checks (`health_check.healthy`), when health checks are on."""
    endpoints: dict[str, EndpointSample] = field(default_factory=dict)
    """By endpoint address as Envoy writes it (`127.0.0.1:8080`, `[::1]:8080`)."""


@dataclass(frozen=True)
class EndpointFigures:
    """One endpoint's traffic over a window, every Envoy together."""

    requests: int
    errors: int
    rate: float
    error_rate: float


@dataclass
class Figures:
    """A service's traffic over a window."""

    requests: int
    errors: int
    rate: float
    error_rate: float
    p50_ms: float | None
    p99_ms: float | None


@dataclass
class TrafficStore:
    """Samples by (node id, service), bounded."""

    samples: dict[tuple[str, str], collections.deque[Sample]] = field(default_factory=dict)

    def add(self, node_id: str, service: str, sample: Sample) -> None:
        key = (node_id, service)
        samples = self.samples.setdefault(key, collections.deque(maxlen=SAMPLES_KEPT))
        samples.append(sample)
        for old in samples:
            if sample.at - old.at <= ENDPOINTS_KEPT_SECONDS:
                break
            old.endpoints = {}

    def healthy_by_node(self, service: str) -> dict[str, int]:
        """The latest healthy-endpoint count each Envoy reported for `service`."""
        result = {}
        for (node, name), items in self.samples.items():
            latest = next((s.healthy for s in reversed(items) if s.healthy is not None), None)
            if name == service and latest is not None:
                result[node] = latest
        return result

    def latest(self, service: str, now: float, window: float) -> dict[str, Sample]:
        """Each Envoy's latest sample for `service`, if taken in (now - window, now]."""
        result = {}
        for (node, name), items in self.samples.items():
            if name == service and items and now - window < items[-1].at <= now:
                result[node] = items[-1]
        return result

    def endpoint_figures(self, service: str, now: float, window: float) -> dict[str, EndpointFigures]:
        """Per endpoint address: totals of every Envoy's samples for `service` in (now - window, now]."""
        totals: dict[str, list[int]] = {}
        for sample in self._window(service, now, window):
            for address, endpoint in sample.endpoints.items():
                counts = totals.setdefault(address, [0, 0])
                counts[0] += endpoint.requests
                counts[1] += endpoint.errors
        return {
            address: EndpointFigures(requests, errors, requests / window, errors / requests if requests else 0.0)
            for address, (requests, errors) in totals.items()
        }

    def services(self) -> list[str]:
        return sorted({service for _, service in self.samples})

    def figures(self, service: str, now: float, window: float) -> Figures:
        """Totals of every Envoy's samples for `service` taken in (now - window, now]."""
        chosen = self._window(service, now, window)
        requests, errors = sum(s.requests for s in chosen), sum(s.errors for s in chosen)
        merged = _merge(chosen)
        return Figures(
            requests=requests,
            errors=errors,
            rate=requests / window,
            error_rate=errors / requests if requests else 0.0,
            p50_ms=_quantile(merged, 0.50),
            p99_ms=_quantile(merged, 0.99),
        )

    def _window(self, service: str, now: float, window: float) -> list[Sample]:
        return [
            s
            for (_, name), items in self.samples.items()
            if name == service
            for s in items
            if now - window < s.at <= now
        ]

    def series(self, service: str, now: float, window: float, step: float) -> list[dict[str, Any]]:
        """Figures per `step` over the last `window` seconds, oldest first, for small charts."""
        points = []
        for end in [now - window + step * (i + 1) for i in range(int(window / step))]:
            f = self.figures(service, end, step)
            points.append({"at": end, "rate": f.rate, "error_rate": f.error_rate, "p99_ms": f.p99_ms})
        return points


def _merge(samples: list[Sample]) -> tuple[tuple[float, ...], list[int]]:
    bounds: tuple[float, ...] = ()
    totals: list[int] = []
    for sample in samples:
        if not sample.buckets:
            continue
        if not totals:
            bounds, totals = sample.bounds, [0] * len(sample.buckets)
        if sample.bounds == bounds:
            totals = [a + b for a, b in zip(totals, sample.buckets, strict=True)]
    return bounds, totals


def _quantile(merged: tuple[tuple[float, ...], list[int]], q: float) -> float | None:
    bounds, counts = merged
    total = sum(counts)
    if not total:
        return None
    running = 0
    for i, count in enumerate(counts):
        running += count
        if running >= q * total:
            return bounds[i] if i < len(bounds) else (bounds[-1] if bounds else None)
    return bounds[-1] if bounds else None
