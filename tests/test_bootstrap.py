"""`controlplane bootstrap`: what it emits, that Envoy accepts it, and that envoy/ holds its output."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from controlplane.bootstrap import parse_xds_addresses
from controlplane.cli import main
from tests.conftest import ROOT

SHIPPED_ARGS = ["bootstrap", "--node-id", "gateway-1", "--node-cluster", "edge", "--xds", "127.0.0.1:18000"]


def render(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 0
    return capsys.readouterr().out


def test_shipped_bootstrap_is_the_generated_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert (ROOT / "envoy" / "bootstrap.yaml").read_text(encoding="utf-8") == render(SHIPPED_ARGS, capsys)


def test_every_replica_is_an_endpoint_and_ads_is_set_up(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bootstrap", "--node-id", "n", "--node-cluster", "c", "--xds", "127.0.0.1:1,127.0.0.2:2", "--api", "delta"]
    data = yaml.safe_load(render(args, capsys))
    ads = data["dynamic_resources"]["ads_config"]
    assert (ads["api_type"], ads["set_node_on_first_message_only"]) == ("DELTA_GRPC", True)
    endpoints = data["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert [e["endpoint"]["address"]["socket_address"]["port_value"] for e in endpoints] == [1, 2]
    assert data["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"


@pytest.mark.envoy
@pytest.mark.parametrize("api", ["sotw", "delta"])
def test_envoy_accepts_the_bootstrap(
    api: str, envoy_binary: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bootstrap.yaml"
    path.write_text(render([*SHIPPED_ARGS[:-1], "127.0.0.1:18000,127.0.0.1:18001", "--api", api], capsys))
    result = subprocess.run(
        [envoy_binary, "--mode", "validate", "-c", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("text", ["", "localhost:18000", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:99999"])
def test_bad_xds_addresses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_xds_addresses(text)


def test_ipv6_xds_address() -> None:
    assert parse_xds_addresses("[::1]:18000") == (("::1", 18000),)
