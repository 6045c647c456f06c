"""The `controlplane status` table, from the JSON the status API serves."""

from __future__ import annotations

import pytest

from controlplane.admin import status_lines, type_state


def state(acked: str = "v1", sent: str = "v1", in_flight: bool = False, nack_at: float | None = None) -> dict:  # type: ignore[type-arg]
    nack = {"at": nack_at, "message": "bad"} if nack_at is not None else None
    return {"acked_version": acked, "sent_version": sent, "acked_at": 10.0, "in_flight": in_flight, "last_nack": nack}


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        pytest.param(None, "NOT SENT", id="never-asked"),
        pytest.param(state(acked="", sent=""), "NOT SENT", id="nothing-yet"),
        pytest.param(state(), "SYNCED", id="synced"),
        pytest.param(state(in_flight=True), "STALE", id="in-flight"),
        pytest.param(state(nack_at=11.0), "NACKED", id="nacked-after-last-ack"),
        pytest.param(state(nack_at=9.0), "SYNCED", id="nack-then-accepted-later"),
    ],
)
def test_type_state(given: dict | None, shown: str) -> None:  # type: ignore[type-arg]
    assert type_state(given) == shown


def test_status_lines() -> None:
    config = {"version": "abc", "serving": "files", "problems": [], "quarantined": [{}]}
    node = {
        "node_id": "gw-1",
        "node_cluster": "edge",
        "envoy_version": "1.40.0",
        "api": "delta",
        "connected_at": 100.0,
        "types": [{"type_url": "type.googleapis.com/envoy.config.listener.v3.Listener", **state()}],
    }
    lines = status_lines(config, [node], now=130.0)
    assert lines[0] == "config abc (files), 1 quarantined"
    assert lines[1].split() == ["NODE", "CLUSTER", "ENVOY", "API", "CDS", "EDS", "LDS", "RDS", "CONNECTED"]
    assert lines[2].split() == [
        "gw-1",
        "edge",
        "1.40.0",
        "delta",
        "NOT",
        "SENT",
        "NOT",
        "SENT",
        "SYNCED",
        "NOT",
        "SENT",
        "30s",
    ]
