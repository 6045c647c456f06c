"""Traffic figures per upstream service, from the stats Envoys push (OpenTelemetry, as deltas).

Each export adds one sample per (Envoy, service): requests, 5xx responses and the latency
histogram's bucket counts. Figures over a window merge the samples of every Envoy: request
rate, error rate, and p50/p99 read off the merged histogram (upper bound of the bucket that
holds the quantile, as Prometheus' histogram_quantile does without interpolation).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

SAMPLES_KEPT = 120
"""Per (Envoy, service): at 5s a sample, the last 10 minutes."""


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
        self.samples.setdefault(key, collections.deque(maxlen=SAMPLES_KEPT)).append(sample)

    def healthy_by_node(self, service: str) -> dict[str, int]:
        """The latest healthy-endpoint count each Envoy reported for `service`."""
        result = {}
        for (node, name), items in self.samples.items():
            latest = next((s.healthy for s in reversed(items) if s.healthy is not None), None)
            if name == service and latest is not None:
                result[node] = latest
        return result

    def services(self) -> list[str]:
        return sorted({service for _, service in self.samples})

    def figures(self, service: str, now: float, window: float) -> Figures:
        """Totals of every Envoy's samples for `service` taken in (now - window, now]."""
        chosen = [
            s
            for (_, name), items in self.samples.items()
            if name == service
            for s in items
            if now - window < s.at <= now
        ]
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
