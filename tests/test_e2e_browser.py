"""The status page as a person sees it: headless Chromium loads it while traffic flows."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from tests.e2e import ControlPlane, Envoy, Upstream, free_port, listener, request, stopping, wait_for

pytestmark = pytest.mark.envoy

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium(tmp: Path, *args: str) -> str:
    binary = shutil.which("chromium")
    assert binary, "Debian's chromium is needed (make test installs it)"
    profile = tmp / "chromium-profile"
    result = subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_the_page_in_a_browser_while_traffic_flows(tmp_path: Path) -> None:
    app = Upstream("app").start()
    port = free_port()
    routes = listener(port, "      - match: {prefix: /}\n        to: app\n") + (
        f"services:\n  app: {{endpoints: ['{app.address}']}}\n"
    )
    cp = ControlPlane(routes, tmp_path).start()
    envoy = Envoy(tmp_path, cp.xds_port, "gw-1", "delta", bootstrap_args=("--stats-interval", "1s")).start()
    stop = threading.Event()

    def traffic() -> None:
        while not stop.wait(0.02):
            request(port)

    with stopping(app, cp, envoy):
        envoy.wait_listening(port)
        wait_for(lambda: request(port)[0] == 200, what="traffic flowing")
        flowing = threading.Thread(target=traffic, daemon=True)
        flowing.start()
        try:
            wait_for(lambda: cp.get("/api/services")[0]["traffic"]["requests"] > 0, what="traffic on the page")
            url = f"http://127.0.0.1:{cp.status_port}/"
            dom = chromium(tmp_path, "--dump-dom", url)
            screenshot = tmp_path / "status-page.png"
            chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1280,900", url)
        finally:
            stop.set()
            flowing.join(timeout=5)
        assert '<table id="nodes">' in dom and "gw-1" in dom and "SYNCED" in dom
        row = dom[dom.index('data-service="app"') :]
        row = row[: row.index("</tr>")]
        assert "<polyline" in row  # the sparkline rendered
        assert "0.0%" in row  # no errors
        endpoint = dom[dom.index(f'data-endpoint="{app.address}"') :]
        assert "healthy in 1 Envoy(s)" in endpoint[: endpoint.index("</tr>")]
        assert screenshot.exists() and screenshot.stat().st_size > 10_000
