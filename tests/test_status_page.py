"""The status page as HTML: content, escaping, sparklines."""

from __future__ import annotations

from controlplane.status.page import render, sparkline

CONFIG = {"version": "abc123", "serving": "files", "problems": [], "quarantined": [], "history": [], "sources": []}
NODE = {
    "node_id": "gw-1",
    "node_cluster": "edge",
    "envoy_version": "1.40.0",
    "api": "delta",
    "connected_at": 90.0,
    "types": [
        {
            "type_url": "type.googleapis.com/envoy.config.listener.v3.Listener",
            "acked_version": "v1",
            "sent_version": "v1",
            "acked_at": 1.0,
            "in_flight": False,
            "last_nack": {"at": 2.0, "message": "<script>alert(1)</script> cannot bind"},
        }
    ],
}


def test_envoy_text_is_escaped() -> None:
    page = render(CONFIG, [NODE], [], [], now=100.0)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; cannot bind" in page
    assert "NACKED" in page and "gw-1" in page


def test_empty_states_say_so() -> None:
    page = render(CONFIG, [], [], [], now=100.0)
    assert "No Envoy connected." in page and "No alert firing." in page


def test_sparkline_scales_to_the_maximum() -> None:
    svg = sparkline([0.0, 2.0, 4.0], "#000", width=100, height=24)
    assert "points='0.0,23.0 50.0,12.0 100.0,1.0'" in svg
    assert sparkline([], "#000") == ""
