"""Alerts from real Envoy traffic and events, delivered to a webhook receiver on loopback."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import threading
import time
import urllib.request
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import ControlPlane, Envoy, Upstream, free_port, listener, metrics_of, request, stopping, wait_for

pytestmark = pytest.mark.envoy


class Page(HTMLParser):
    """The text inside the page's sections (by id) and service rows (by data-service)."""

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, str] = collections.defaultdict(str)
        self.rows: dict[str, str] = collections.defaultdict(str)
        self.open: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.open.append((tag, found.get("id") or "", found.get("data-service") or ""))

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        for _, section, service in self.open:
            if section:
                self.text[section] += data
            if service:
                self.rows[service] += data + " "


class Receiver:
    """An Alertmanager-style webhook receiver that records every alert posted to it."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        received = self.alerts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                received.extend(json.loads(body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def names(self, resolved: bool = False) -> set[str]:
        return {a["labels"]["alertname"] for a in self.alerts if ("endsAt" in a) == resolved}


def test_error_rate_nack_and_disconnection_alerts_reach_the_webhook(tmp_path: Path) -> None:
    receiver = Receiver()
    fine, failing = Upstream("fine").start(), Upstream("failing", failing=True).start()
    port = free_port()

    def config(extra_listener_port: int | None = None) -> str:
        text = listener(
            port, "      - match: {prefix: /bad}\n        to: bad\n      - match: {prefix: /}\n        to: ok\n"
        )
        if extra_listener_port:
            text += (
                f"  - name: second\n    port: {extra_listener_port}\n    address: 127.0.0.1\n"
                "    routes:\n      - match: {prefix: /}\n        to: ok\n"
            )
        return text + (
            f"services:\n  ok: {{endpoints: ['{fine.address}']}}\n  bad: {{endpoints: ['{failing.address}']}}\n"
            f"alerts:\n  disconnected_for: 1s\n  error_rate: 20\n  error_window: 10s\n"
            f"  webhook: {{url: '{receiver.url}', timeout: 1s, retries: 2}}\n"
        )

    cp = ControlPlane(config(), tmp_path).start()
    envoy = Envoy(tmp_path, cp.xds_port, "gw-1", "sotw", bootstrap_args=("--stats-interval", "1s")).start()
    with stopping(receiver, fine, failing, cp, envoy):
        envoy.wait_listening(port)
        wait_for(lambda: request(port)[0] == 200, what="traffic flowing")
        assert sum(request(port, "/bad")[0] == 500 for _ in range(20)) == 20
        firing = wait_for(
            lambda: [a for a in cp.get("/api/alerts") if a["name"] == "ServiceErrorRate"], what="the error-rate alert"
        )
        assert firing[0]["labels"] == {"service": "bad"}
        wait_for(lambda: "ServiceErrorRate" in receiver.names(), what="the webhook got it")
        assert metrics_of(cp.status_port)[("controlplane_alerts_firing", (("alertname", "ServiceErrorRate"),))] == 1

        cp.edit(config(extra_listener_port=fine.port))  # a port Envoy cannot bind: NACK
        nack = wait_for(
            lambda: [a for a in cp.get("/api/alerts") if a["name"] == "EnvoyRejectedConfig"], what="the NACK alert"
        )
        assert nack[0]["labels"] == {"node": "gw-1", "type": "Listener"}
        assert "second" in nack[0]["summary"]  # Envoy's own message

        with urllib.request.urlopen(f"http://127.0.0.1:{cp.status_port}/", timeout=5) as response:
            headers, page = response.headers, response.read().decode()
        assert "default-src 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        parsed = Page()
        parsed.feed(page)
        assert "ServiceErrorRate" in parsed.text["alerts"] and "EnvoyRejectedConfig" in parsed.text["alerts"]
        assert "gw-1" in parsed.text["nodes"] and "NACKED" in parsed.text["nodes"]
        assert "second" in parsed.text["nodes"]  # the NACK message, as Envoy wrote it
        assert "100.0%" in parsed.rows["bad"] and "0.0%" in parsed.rows["ok"]

        envoy.stop()
        wait_for(
            lambda: any(a["name"] == "EnvoyDisconnected" for a in cp.get("/api/alerts")),
            timeout=10,
            what="the disconnection alert",
        )
        wait_for(lambda: "EnvoyDisconnected" in receiver.names(), what="the webhook got the disconnection")


def silence_cli(cp: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controlplane", "silence", *args, "--status-address", f"127.0.0.1:{cp.status_port}"],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_silenced_alert_shows_on_the_page_but_reaches_no_webhook(tmp_path: Path) -> None:
    receiver = Receiver()
    token = tmp_path / "token"
    token.write_text("t0ken-for-silences\n", encoding="utf-8")
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token\n", encoding="utf-8")
    port = free_port()
    config = listener(port, "      - match: {prefix: /}\n        direct_response: {status: 200}\n") + (
        f"alerts:\n  disconnected_for: 1s\n  webhook: {{url: '{receiver.url}', timeout: 1s, retries: 0}}\n"
    )
    cp = ControlPlane(config, tmp_path, extra_args=("--admin-token-file", str(token))).start()
    envoy = Envoy(tmp_path, cp.xds_port, "gw-1", "sotw").start()
    with stopping(receiver, cp, envoy):
        envoy.wait_listening(port)
        refused = silence_cli(cp, "EnvoyDisconnected", "--admin-token-file", str(wrong))
        assert refused.returncode != 0 and "401" in refused.stderr
        typo = silence_cli(cp, "EnvoyDisconected", "--admin-token-file", str(token))
        assert typo.returncode != 0 and "unknown alert 'EnvoyDisconected'" in typo.stderr
        made = silence_cli(
            cp, "EnvoyDisconnected", "--label", "node=gw-1", "--for", "2h", "--admin-token-file", str(token)
        )
        assert made.returncode == 0, made.stderr
        silence_id = made.stdout.split()[1].rstrip(":")
        assert silence_id in silence_cli(cp, "--list").stdout

        envoy.stop()
        shown = wait_for(lambda: [a for a in cp.get("/api/alerts") if a["name"] == "EnvoyDisconnected"], what="alert")
        assert shown[0]["silenced_until"] is not None
        with urllib.request.urlopen(f"http://127.0.0.1:{cp.status_port}/", timeout=5) as response:
            assert "silenced until" in response.read().decode()
        time.sleep(2.5)  # two more evaluations (every second), each a chance to post it
        assert receiver.names() == set()

        assert silence_cli(cp, "--end", silence_id, "--admin-token-file", str(token)).returncode == 0
        wait_for(lambda: "EnvoyDisconnected" in receiver.names(), timeout=5, what="notified once the silence ended")
