"""Alert rules: the conditions that raise an alert, and where alerts are sent."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Webhook:
    """An Alertmanager-compatible receiver."""

    url: str
    timeout_ms: int = 2_000
    retries: int = 3


@dataclass(frozen=True)
class AlertRules:
    """Thresholds for each alert; None turns a rule off. The defaults apply without an `alerts:` block."""

    nack: bool = True
    disconnected_ms: int = 30_000
    behind_ms: int = 30_000
    no_healthy_endpoint: bool = True
    error_rate_percent: float | None = 5.0
    error_window_ms: int = 60_000
    p99_ms: float | None = None
    latency_window_ms: int = 60_000
    source_stale_ms: int = 60_000
    webhook: Webhook | None = None
