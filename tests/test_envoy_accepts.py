"""Real Envoy (`envoy --mode validate`) accepts what the translator builds, for every golden case."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from controlplane.dsl import load_files
from controlplane.dsl.types import check_regex
from controlplane.render import dump, message_to_data
from controlplane.translate import build_resources
from controlplane.translate.static_bootstrap import static_bootstrap
from tests.conftest import ROOT
from tests.envoy_tools import validate_file
from tests.golden_cases import cases, node_cluster_of, resources_of

pytestmark = pytest.mark.envoy


def envoy_validate(envoy: str, bootstrap_yaml: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "bootstrap.yaml"
    path.write_text(bootstrap_yaml, encoding="utf-8")
    return validate_file(envoy, path)


def test_example_from_the_issue_is_accepted_by_envoy(envoy_binary: str, tmp_path: Path) -> None:
    model = load_files([str(ROOT / "examples" / "routes.yaml")])
    bootstrap = static_bootstrap(build_resources(model), node_cluster="edge")
    result = envoy_validate(envoy_binary, dump(message_to_data(bootstrap), "yaml"), tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "OK" in result.stdout


@pytest.mark.parametrize("case", cases(), ids=lambda p: p.stem)
def test_golden_case_is_accepted_by_envoy(case: Path, envoy_binary: str, tmp_path: Path) -> None:
    bootstrap = static_bootstrap(resources_of(case), node_cluster=node_cluster_of(case) or "static")
    result = envoy_validate(envoy_binary, dump(message_to_data(bootstrap), "yaml"), tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout


def test_envoy_rejects_a_broken_bootstrap(envoy_binary: str, tmp_path: Path) -> None:
    """The check above can fail: Envoy refuses a listener routing to a cluster that does not exist."""
    bootstrap = static_bootstrap(resources_of(cases()[0]))
    bootstrap.static_resources.clusters.pop()
    data = message_to_data(bootstrap)
    for listener in data["static_resources"]["listeners"]:
        manager = listener["filter_chains"][0]["filters"][-1]["typed_config"]
        manager["route_config"]["validate_clusters"] = True
    data["static_resources"]["clusters"] = []
    result = envoy_validate(envoy_binary, dump(data, "yaml"), tmp_path)
    assert result.returncode != 0


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("^/a{96}$", id="program-size-100"),
        pytest.param("^/a{97}$", id="program-size-101"),
        pytest.param("^/files/.{1,30}$", id="dot-counted-byte-wise"),  # UTF-8 RE2 counts 273
        pytest.param("^/files/.{1,40}$", id="dot-over-the-limit"),
        pytest.param("^/caf\\x{e9}/[^/]+$", id="escape-within-latin1"),
        pytest.param("^/snow/\\x{2603}$", id="escape-above-latin1"),  # UTF-8 RE2 accepts it
    ],
)
def test_the_regex_check_agrees_with_envoy(pattern: str, envoy_binary: str, tmp_path: Path) -> None:
    """Whatever `check_regex` accepts Envoy accepts, and whatever it refuses Envoy refuses."""
    try:
        check_regex(pattern)
        ours = True
    except ValueError:
        ours = False
    result = envoy_validate(envoy_binary, dump(_bootstrap_with_regex(pattern), "yaml"), tmp_path)
    assert ours is (result.returncode == 0), result.stderr + result.stdout


def _bootstrap_with_regex(pattern: str) -> dict[str, Any]:
    """A static bootstrap with one route matching `pattern`, built by hand: the DSL would refuse some."""
    route = {"match": {"safe_regex": {"regex": pattern}}, "direct_response": {"status": 200}}
    filters = "type.googleapis.com/envoy.extensions.filters"
    router = {"name": "router", "typed_config": {"@type": f"{filters}.http.router.v3.Router"}}
    manager = {
        "@type": f"{filters}.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "regex",
        "http_filters": [router],
        "route_config": {"virtual_hosts": [{"name": "any", "domains": ["*"], "routes": [route]}]},
    }
    listener = {
        "name": "regex",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 10000}},
        "filter_chains": [{"filters": [{"name": "hcm", "typed_config": manager}]}],
    }
    return {"static_resources": {"listeners": [listener]}}
