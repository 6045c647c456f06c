"""The real API server fixture, and the loud skip when it cannot be built here.

In CI (`CI=true`) a missing build fails the tests; elsewhere they are skipped with the reason,
and the end of the run repeats it so nobody mistakes a skip for a pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kube.apiserver import ApiServer, binaries
from tests.kube.background import wait_for_background_build

MISSING = (
    "kube-apiserver is not built: run `python3 tests/kube/build.py` (make test does; it needs a Debian "
    "machine with apt access, about 5 minutes the first time)"
)
_skipped: list[str] = []


def require_binaries() -> Path:
    found = binaries()
    if found is None:
        failure = wait_for_background_build()
        found = binaries()
    if found is not None:
        return found
    reason = f"{MISSING}; {failure}" if failure else MISSING
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    _skipped.append(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """One etcd + kube-apiserver per test module."""
    server = ApiServer(require_binaries(), tmp_path_factory.mktemp("kube")).start()
    try:
        yield server
    finally:
        server.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped:
        terminalreporter.section("Kubernetes tests SKIPPED", sep="!", red=True, bold=True)
        terminalreporter.write_line(f"{len(_skipped)} tests did not run: {_skipped[-1]}", red=True)
