"""Silences: a silenced alert still fires and shows, but is not notified; its end notifies at once."""

from __future__ import annotations

import pytest

from controlplane.alerting import notifications
from controlplane.telemetry.alerts import Alert, AlertEngine, Silence

DISCONNECTED = Alert("EnvoyDisconnected", (("node", "gw-1"),), "disconnected for 40s", since=10.0)
OTHER_NODE = Alert("EnvoyDisconnected", (("node", "gw-2"),), "disconnected for 40s", since=11.0)
ERRORS = Alert("ServiceErrorRate", (("service", "api"),), "50% of 40 requests failed (5xx)", since=12.0)


@pytest.mark.parametrize(
    ("silence", "alert", "now", "covered"),
    [
        (Silence("a", "EnvoyDisconnected", (), 100.0), DISCONNECTED, 50.0, True),  # every node
        (Silence("a", "EnvoyDisconnected", (("node", "gw-1"),), 100.0), DISCONNECTED, 50.0, True),
        (Silence("a", "EnvoyDisconnected", (("node", "gw-1"),), 100.0), OTHER_NODE, 50.0, False),
        (Silence("a", "EnvoyDisconnected", (), 100.0), ERRORS, 50.0, False),  # another alert
        (Silence("a", "EnvoyDisconnected", (), 100.0), DISCONNECTED, 100.0, False),  # ended
        (Silence("a", "EnvoyDisconnected", (("node", "gw-1"), ("type", "x")), 100.0), DISCONNECTED, 50.0, False),
    ],
)
def test_a_silence_covers_its_alert_with_all_its_labels_until_it_ends(
    silence: Silence, alert: Alert, now: float, covered: bool
) -> None:
    assert silence.covers(alert, now) is covered


def names(bodies: list[list[dict[str, object]]]) -> list[tuple[str, bool]]:
    """(alert name with its first label value, resolved?) for every alert in the bodies."""
    found = []
    for body in bodies:
        for alert in body:
            labels = alert["labels"]
            assert isinstance(labels, dict)
            value = next(v for k, v in sorted(labels.items()) if k != "alertname")
            found.append((f"{labels['alertname']}/{value}", "endsAt" in alert))
    return found


def engine_with(*alerts: Alert) -> AlertEngine:
    engine = AlertEngine()
    engine.active = {a.key: a for a in alerts}
    return engine


def test_firing_alerts_are_notified_once_then_again_only_when_a_resend_is_due() -> None:
    engine = engine_with(DISCONNECTED, ERRORS)
    assert names(notifications(engine, [], 20.0, resend=False)) == [
        ("EnvoyDisconnected/gw-1", False),
        ("ServiceErrorRate/api", False),
    ]
    assert notifications(engine, [], 21.0, resend=False) == []
    assert len(names(notifications(engine, [], 80.0, resend=True))) == 2


def test_a_silenced_alert_is_not_notified_and_its_end_notifies_at_once() -> None:
    engine = engine_with(DISCONNECTED, OTHER_NODE)
    engine.silence(Silence("s1", "EnvoyDisconnected", (("node", "gw-1"),), until=100.0))
    assert names(notifications(engine, [], 20.0, resend=False)) == [("EnvoyDisconnected/gw-2", False)]
    assert names(notifications(engine, [], 80.0, resend=True)) == [("EnvoyDisconnected/gw-2", False)]
    assert engine.unsilence("s1") and not engine.unsilence("s1")
    assert names(notifications(engine, [], 81.0, resend=False)) == [("EnvoyDisconnected/gw-1", False)]


def test_a_silence_that_runs_out_notifies_and_is_dropped() -> None:
    engine = engine_with(DISCONNECTED)
    engine.silence(Silence("s1", "EnvoyDisconnected", (), until=30.0))
    assert notifications(engine, [], 29.0, resend=False) == []
    assert [s.id for s in engine.live_silences(29.0)] == ["s1"]
    assert names(notifications(engine, [], 30.0, resend=False)) == [("EnvoyDisconnected/gw-1", False)]
    assert engine.live_silences(30.0) == []


def test_a_resolution_is_sent_even_for_a_silenced_alert() -> None:
    engine = AlertEngine()
    engine.silence(Silence("s1", "EnvoyDisconnected", (), until=100.0))
    assert names(notifications(engine, [DISCONNECTED], 20.0, resend=False)) == [("EnvoyDisconnected/gw-1", True)]
