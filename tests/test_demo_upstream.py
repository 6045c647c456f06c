"""examples/compose/upstream.py, the upstream of compose.yaml: its name, then 503s on cue."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "examples" / "compose" / "upstream.py"


@contextmanager
def upstream(**env: str) -> Iterator[int]:
    """Run the script on a free loopback port; yield the port."""
    variables = {**os.environ, "UPSTREAM_HOST": "127.0.0.1", "UPSTREAM_PORT": "0", **env}
    process = subprocess.Popen([sys.executable, str(SCRIPT)], env=variables, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:"), line
        yield int(line.rsplit(":", 1)[1])
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def get(port: int, path: str = "/") -> tuple[int, str, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("x-upstream") or "", response.read().decode()
    finally:
        connection.close()


def statuses_until(port: int, seconds: float) -> list[int]:
    """Status of /healthz every 50 ms for `seconds`, consecutive repeats collapsed."""
    seen: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = get(port, "/healthz")[0]
        if not seen or seen[-1] != status:
            seen.append(status)
        time.sleep(0.05)
    return seen


def test_answers_its_name_on_every_path() -> None:
    with upstream(UPSTREAM_NAME="shop-v1") as port:
        assert get(port) == (200, "shop-v1", "shop-v1\n")
        assert get(port, "/any/path?x=1") == (200, "shop-v1", "shop-v1\n")


def test_fails_after_then_recovers_after_fail_for() -> None:
    with upstream(UPSTREAM_NAME="flaky", UPSTREAM_FAIL_AFTER="1", UPSTREAM_FAIL_FOR="1") as port:
        assert get(port) == (200, "flaky", "flaky\n")
        assert statuses_until(port, 3.0) == [200, 503, 200]


def test_failing_for_ever_without_fail_for() -> None:
    with upstream(UPSTREAM_NAME="flaky", UPSTREAM_FAIL_AFTER="0") as port:
        assert get(port) == (503, "flaky", "flaky failing\n")
        assert statuses_until(port, 0.5) == [503]


@pytest.mark.parametrize(
    "env",
    [{"UPSTREAM_FAIL_AFTER": "soon"}, {"UPSTREAM_FAIL_FOR": "-1"}, {"UPSTREAM_PORT": "http"}],
    ids=["fail-after", "fail-for", "port"],
)
def test_bad_settings_stop_it_with_the_variable_named(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], env={**os.environ, **env}, capture_output=True, text=True, timeout=10
    )
    assert result.returncode != 0
    assert next(iter(env)) in result.stderr
