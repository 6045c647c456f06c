"""The command line: exit codes, output formats, node groups, policy flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from controlplane.cli import main
from tests.conftest import ROOT

EXAMPLE = str(ROOT / "examples" / "routes.yaml")


def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", EXAMPLE]) == 0
    assert "ok: 2 listeners, 3 services" in capsys.readouterr().err


def test_validate_reports_every_problem_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("listeners:\n  - name: a\n    port: 0\n    routs: []\n", encoding="utf-8")
    assert main(["validate", str(bad)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert f"{bad}:3:11: listeners[0].port: port 0 out of range 1-65535" in lines
    assert f"{bad}:4:5: listeners[0].routs: unknown field 'routs' (did you mean 'routes'?)" in lines


def test_validate_a_file_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Where the file stops being UTF-8, in a person's terms rather than Python's codec message."""
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("services:\n  caf\u00e9: {}\n".encode("latin-1"))
    assert main(["validate", str(bad)]) == 1
    assert capsys.readouterr().err == f"{bad}:0:0: cannot read: not UTF-8 text: byte 0xe9 at line 2, column 6\n"


def test_validate_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "/nonexistent/routes.yaml"]) == 1
    assert "/nonexistent/routes.yaml:0:0: cannot read" in capsys.readouterr().err


def test_render_yaml_groups_by_type(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", EXAMPLE]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert list(data) == ["clusters", "endpoints", "listeners", "routes"]
    assert [item["name"] for item in data["listeners"]] == ["admin-api", "public"]


def test_render_json_for_a_node_group(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", EXAMPLE, "--node-cluster", "other", "--output", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [item["name"] for item in data["listeners"]] == ["public"]


def test_render_static_bootstrap(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", EXAMPLE, "--static"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert {c["type"] for c in data["static_resources"]["clusters"]} == {"STATIC"}


def test_deny_cidr_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", EXAMPLE, "--deny-cidr", "127.0.0.0/8"]) == 1
    assert "denied network 127.0.0.0/8" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("endpoint", "switch"),
    [
        pytest.param("169.254.169.254:80", "--allow-link-local", id="metadata"),
        pytest.param("[fe80::1]:80", "--allow-link-local", id="ipv6-link-local"),
        pytest.param("127.0.0.1:9901", "--allow-envoy-admin-port", id="admin-port"),
    ],
)
def test_allow_switches(tmp_path: Path, capsys: pytest.CaptureFixture[str], endpoint: str, switch: str) -> None:
    """Refused by default, with a message naming the switch; accepted with the switch."""
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"services:\n  api:\n    endpoints: ['{endpoint}']\n", encoding="utf-8")
    assert main(["validate", str(routes)]) == 1
    assert f"see {switch})" in capsys.readouterr().err
    assert main(["validate", str(routes), switch]) == 0


def test_directory_input(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(Path(EXAMPLE).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not yaml: [", encoding="utf-8")
    assert main(["validate", str(tmp_path)]) == 0


def test_render_static_uses_the_envoy_admin_port_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", EXAMPLE, "--static", "--envoy-admin-port", "19000"]) == 0
    admin = yaml.safe_load(capsys.readouterr().out)["admin"]["address"]["socket_address"]
    assert admin == {"address": "127.0.0.1", "port_value": 19000}


def test_render_static_admin_port_defaults_to_9901(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", EXAMPLE, "--static"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["admin"]["address"]["socket_address"]["port_value"] == 9901


def test_ipv4_and_ipv6_wildcards_may_share_a_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Envoy binds `::` IPv6-only (ipv4_compat false), so `0.0.0.0` and `::` do not clash."""
    routes = tmp_path / "routes.yaml"
    route = "routes: [{match: {prefix: /}, direct_response: {status: 200}}]"
    routes.write_text(
        "listeners:\n"
        f"  - {{name: v4, address: 0.0.0.0, port: 10000, {route}}}\n"
        f"  - {{name: v6, address: '::', port: 10000, {route}}}\n",
        encoding="utf-8",
    )
    assert main(["validate", str(routes)]) == 0, capsys.readouterr().err
