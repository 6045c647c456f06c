"""DSL schema of the top-level `alerts:` block: which conditions alert, and where alerts go."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from controlplane.dsl.schema_common import Spec
from controlplane.dsl.types import Duration, Percent

_WEBHOOK_URL = re.compile(r"https?://[^\s]+")


def check_webhook_url(value: Any) -> str:
    """An http:// or https:// URL; said in words (pydantic's pattern error would show the regex)."""
    if not isinstance(value, str) or not _WEBHOOK_URL.fullmatch(value):
        raise ValueError(
            "expected an http:// or https:// URL without spaces, e.g. http://alertmanager:9093/api/v2/alerts"
        )
    return value


class ThresholdSpec(Spec):
    """Alert when a service's figure stays above `above` over `window`."""

    above: float = Field(ge=0)
    window: Duration = 60_000


class WebhookSpec(Spec):
    """Where alerts are POSTed, in Alertmanager's JSON format (a list of alerts)."""

    url: Annotated[str, BeforeValidator(check_webhook_url)]
    timeout: Duration = 2_000
    retries: int = Field(3, ge=0, le=10)


class AlertsSpec(Spec):
    """Alert rules; every rule has a default, so `alerts: {}` (or no block) means the defaults."""

    nack: bool = True
    """An Envoy rejected a config."""
    disconnected_for: Duration = 30_000
    """An Envoy that was connected has been gone this long."""
    behind_for: Duration = 30_000
    """An Envoy has not ACKed a response for this long."""
    no_healthy_endpoint: bool = True
    """A service that receives traffic has no healthy endpoint in some Envoy."""
    error_rate: Percent | None = 5.0
    """Percent of a service's requests answered 5xx over `error_window`; null: off."""
    error_window: Duration = 60_000
    p99_ms: float | None = Field(None, ge=1)
    """A service's p99 latency above this over `latency_window`; null (default): off."""
    latency_window: Duration = 60_000
    source_stale_for: Duration = 60_000
    """A source has not been read (or has not synced) for this long."""
    webhook: WebhookSpec | None = None
