"""Send alerts to a webhook in Alertmanager's JSON format, with retries and back-off."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import urllib.request
from typing import Any

from controlplane.model import Webhook
from controlplane.telemetry.alerts import Alert

log = logging.getLogger(__name__)


def iso(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, tz=datetime.UTC).isoformat()


def payload(alerts: list[Alert], resolved_at: float | None) -> list[dict[str, Any]]:
    """Alertmanager's POST body: a list of alerts (endsAt set when resolved)."""
    return [
        {
            "labels": {"alertname": a.name, **dict(a.labels)},
            "annotations": {"summary": a.summary},
            "startsAt": iso(a.since),
            **({"endsAt": iso(resolved_at)} if resolved_at is not None else {}),
        }
        for a in alerts
    ]


async def send(webhook: Webhook, body: list[dict[str, Any]]) -> bool:
    """POST `body`; retry with back-off; True once the receiver answered 2xx."""
    data = json.dumps(body).encode()
    for attempt in range(webhook.retries + 1):
        try:
            await asyncio.to_thread(_post, webhook.url, data, webhook.timeout_ms / 1000)
            return True
        except OSError as exc:
            log.warning("alert webhook %s failed (attempt %d): %s", webhook.url, attempt + 1, exc)
            await asyncio.sleep(0.2 * 2**attempt)
    return False


def _post(url: str, data: bytes, timeout: float) -> None:
    request = urllib.request.Request(url, data=data, method="POST", headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()
