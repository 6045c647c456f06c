"""History, diff and rollback against a running control plane and a real Envoy."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e import ControlPlane, Envoy, Upstream, free_port, listener, request, stopping, wait_for

pytestmark = pytest.mark.envoy


def cli(cp: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controlplane", *args, "--status-address", f"127.0.0.1:{cp.status_port}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def post(cp: ControlPlane, token: str | None) -> int:
    req = urllib.request.Request(
        f"http://127.0.0.1:{cp.status_port}/api/rollback",
        method="POST",
        data=json.dumps({"version": "x"}).encode(),
        headers={"content-type": "application/json"},
    )
    if token is not None:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_rollback_pins_an_earlier_version_until_lifted(tmp_path: Path) -> None:
    one, two = Upstream("one").start(), Upstream("two").start()
    port = free_port()

    def config(target: str, probe: bool = False) -> str:
        extra = "      - match: {path: /probe}\n        direct_response: {status: 204}\n" if probe else ""
        return listener(port, extra + f"      - match: {{prefix: /}}\n        to: {target}\n") + (
            f"services:\n  one: {{endpoints: ['{one.address}']}}\n  two: {{endpoints: ['{two.address}']}}\n"
        )

    token = tmp_path / "token"
    token.write_text("s3cret-token\n", encoding="utf-8")
    cp = ControlPlane(config("one"), tmp_path, extra_args=("--admin-token-file", str(token))).start()
    envoy = Envoy(tmp_path, cp.xds_port, "gw-1", "sotw").start()
    with stopping(one, two, cp, envoy):
        envoy.wait_listening(port)
        wait_for(lambda: request(port)[1] == "one", what="traffic on one")
        first = cp.get("/api/config")["version"]
        cp.edit(config("two"))
        wait_for(lambda: request(port)[1] == "two", what="traffic on two")
        second = cp.get("/api/config")["version"]
        assert [first, second] == [line.split()[0] for line in cli(cp, "history").stdout.splitlines()]
        diff = cli(cp, "diff", first, second).stdout
        assert "-      route:\n-        cluster: one" in diff.replace(
            "        cluster: one\n", "        cluster: one\n"
        ) or ("cluster: one" in diff and "cluster: two" in diff)
        assert (post(cp, None), post(cp, "wrong")) == (401, 401)  # refused without the right token
        rolled = cli(cp, "rollback", first[:8], "--admin-token-file", str(token))
        assert rolled.returncode == 0, rolled.stderr
        wait_for(lambda: request(port)[1] == "one", what="traffic back on one")
        cp.edit(config("two", probe=True))  # held while pinned
        held = wait_for(lambda: cp.get("/api/config")["held_version"] not in ("", second) and cp.get("/api/config"))
        assert (held["pinned"], held["serving"], request(port)[1]) == (first, "pinned", "one")
        assert request(port, "/probe")[0] != 204
        assert cli(cp, "rollback", "--lift", "--admin-token-file", str(token)).returncode == 0
        wait_for(lambda: request(port, "/probe")[0] == 204, what="the held change served")
        assert request(port)[1] == "two"


def test_actions_are_refused_without_a_configured_token(tmp_path: Path) -> None:
    cp = ControlPlane("listeners: []\n", tmp_path).start()
    with stopping(cp):
        assert post(cp, "anything") == 403
