"""`controlplane bootstrap`: what it emits, that Envoy accepts it, and that envoy/ holds its output."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.bootstrap import parse_xds_addresses
from controlplane.cli import main
from tests.certs import make_pki
from tests.conftest import ROOT
from tests.envoy_tools import validate_file

SHIPPED_ARGS = ["bootstrap", "--node-id", "gateway-1", "--node-cluster", "edge", "--xds", "127.0.0.1:18000"]
COMPOSE_REPLICAS = "controlplane-1:18000,controlplane-2:18000"
SHIPPED = {
    "bootstrap.yaml": SHIPPED_ARGS,
    # compose.yaml's gateways: one node id each, both replicas by their compose service names.
    **{
        f"compose-gateway-{n}.yaml": [*SHIPPED_ARGS[:2], f"gateway-{n}", *SHIPPED_ARGS[3:6], COMPOSE_REPLICAS]
        for n in (1, 2)
    },
}


def render(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_bootstrap_is_the_generated_one(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """To regenerate: `controlplane ARGS --output envoy/NAME` with the arguments in SHIPPED."""
    assert (ROOT / "envoy" / name).read_text(encoding="utf-8") == render(SHIPPED[name], capsys)


def test_every_shipped_bootstrap_is_generated() -> None:
    assert sorted(path.name for path in (ROOT / "envoy").glob("*.yaml")) == sorted(SHIPPED)


def test_every_replica_is_an_endpoint_and_ads_is_set_up(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bootstrap", "--node-id", "n", "--node-cluster", "c", "--xds", "127.0.0.1:1,127.0.0.2:2", "--api", "delta"]
    data = yaml.safe_load(render(args, capsys))
    ads = data["dynamic_resources"]["ads_config"]
    assert (ads["api_type"], ads["set_node_on_first_message_only"]) == ("DELTA_GRPC", True)
    endpoints = data["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert [e["endpoint"]["address"]["socket_address"]["port_value"] for e in endpoints] == [1, 2]
    assert data["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("xds", "expected"),
    [
        pytest.param("127.0.0.1:18000,[::1]:18001", "STATIC", id="addresses"),
        pytest.param("controlplane.controlplane-system.svc:18000", "STRICT_DNS", id="service-name"),
        pytest.param("10.0.0.1:18000,cp-2:18000", "STRICT_DNS", id="mixed"),
    ],
)
def test_a_dns_name_makes_envoy_resolve_the_replicas(
    xds: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = yaml.safe_load(render([*SHIPPED_ARGS[:-1], xds], capsys))["static_resources"]["clusters"][0]
    assert cluster["type"] == expected
    assert cluster.get("dns_lookup_family") == ("V4_PREFERRED" if expected == "STRICT_DNS" else None)
    endpoints = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    hosts = [f"{e['endpoint']['address']['socket_address']['address']}" for e in endpoints]
    assert hosts == [item.rpartition(":")[0].strip("[]") for item in xds.split(",")]


def test_output_writes_the_same_text_to_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "envoy" / "bootstrap.yaml"
    assert render([*SHIPPED_ARGS, "--output", str(path)], capsys) == ""
    assert path.read_text(encoding="utf-8") == render(SHIPPED_ARGS, capsys)


@pytest.mark.envoy
@pytest.mark.parametrize(
    ("api", "xds"),
    [
        ("sotw", "127.0.0.1:18000,127.0.0.1:18001"),
        ("delta", "127.0.0.1:18000,127.0.0.1:18001"),
        ("sotw", "controlplane.controlplane-system.svc:18000"),
    ],
)
def test_envoy_accepts_the_bootstrap(
    api: str, xds: str, envoy_binary: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bootstrap.yaml"
    path.write_text(render([*SHIPPED_ARGS[:-1], xds, "--api", api], capsys))
    result = subprocess.run(
        [envoy_binary, "--mode", "validate", "-c", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "text",
    [
        "",
        "127.0.0.1",
        "127.0.0.1:0",
        "127.0.0.1:99999",
        "cp_1:18000",
        "-cp:18000",
        "cp..svc:18000",
        "10.0.0.300:18000",
        "cp 1:18000",
        f"{'a' * 64}.svc:18000",
        "127.0.0.1:1\u00b2",  # a superscript two: str.isdigit() says yes, int() says no
    ],
)
def test_bad_xds_addresses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_xds_addresses(text)


def test_ipv6_xds_address() -> None:
    assert parse_xds_addresses("[::1]:18000") == (("::1", 18000),)


def test_dns_names_as_xds_addresses() -> None:
    text = "localhost:1,controlplane.controlplane-system.svc.cluster.local.:18000,cp-2:2"
    assert parse_xds_addresses(text) == (
        ("localhost", 1),
        ("controlplane.controlplane-system.svc.cluster.local.", 18000),
        ("cp-2", 2),
    )


TLS_ARGS = [
    "--tls-cert",
    "/etc/envoy/tls/tls.crt",
    "--tls-key",
    "/etc/envoy/tls/tls.key",
    "--server-ca",
    "/etc/envoy/tls/ca.crt",
]


def xds_tls_context(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    cluster = yaml.safe_load(render(args, capsys))["static_resources"]["clusters"][0]
    socket = cluster["transport_socket"]
    assert socket["name"] == "envoy.transport_sockets.tls"
    context: dict[str, Any] = socket["typed_config"]
    return context


@pytest.mark.parametrize(
    ("xds", "extra", "sans", "sni"),
    [
        pytest.param(
            "127.0.0.1:18000,127.0.0.2:18000",
            [],
            [("IP_ADDRESS", "127.0.0.1"), ("IP_ADDRESS", "127.0.0.2")],
            None,
            id="addresses",
        ),
        pytest.param(
            "controlplane.controlplane-system.svc:18000",
            [],
            [("DNS", "controlplane.controlplane-system.svc")],
            "controlplane.controlplane-system.svc",
            id="service-name",
        ),
        pytest.param(
            COMPOSE_REPLICAS, [], [("DNS", "controlplane-1"), ("DNS", "controlplane-2")], None, id="two-names-no-sni"
        ),
        pytest.param(
            "10.0.0.1:18000,10.0.0.2:18000",
            ["--xds-server-name", "cp.example."],
            [("DNS", "cp.example")],
            "cp.example",
            id="server-name",
        ),
    ],
)
def test_tls_makes_envoy_check_the_replicas_names(
    xds: str, extra: list[str], sans: list[tuple[str, str]], sni: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    context = xds_tls_context([*SHIPPED_ARGS[:-1], xds, *TLS_ARGS, *extra], capsys)
    common = context["common_tls_context"]
    assert common["tls_certificates"] == [
        {
            "certificate_chain": {"filename": "/etc/envoy/tls/tls.crt"},
            "private_key": {"filename": "/etc/envoy/tls/tls.key"},
        }
    ]
    assert common["validation_context"]["trusted_ca"] == {"filename": "/etc/envoy/tls/ca.crt"}
    matchers = common["validation_context"]["match_typed_subject_alt_names"]
    assert [(m["san_type"], m["matcher"]["exact"]) for m in matchers] == sans
    assert common["alpn_protocols"] == ["h2"]
    assert context.get("sni") == sni


def test_without_tls_flags_there_is_no_transport_socket(capsys: pytest.CaptureFixture[str]) -> None:
    cluster = yaml.safe_load(render(SHIPPED_ARGS, capsys))["static_resources"]["clusters"][0]
    assert "transport_socket" not in cluster


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(
            TLS_ARGS[:4], "--tls-cert, --tls-key and --server-ca go together: --server-ca missing", id="partial"
        ),
        pytest.param(
            ["--xds-server-name", "cp"], "--xds-server-name needs --tls-cert, --tls-key, --server-ca", id="name-alone"
        ),
    ],
)
def test_tls_flags_of_bootstrap_go_together(extra: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*SHIPPED_ARGS, *extra]) == 2
    assert capsys.readouterr().err == f"controlplane bootstrap: {message}\n"


def overload_of(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    data = yaml.safe_load(render([*SHIPPED_ARGS, *args], capsys))
    return dict(data.get("overload_manager", {}))


def test_the_overload_manager_guards_the_heap_and_the_connection_count(capsys: pytest.CaptureFixture[str]) -> None:
    """Envoy's edge example: shrink the heap at 95% of its ceiling, refuse requests at 98%; and the
    global connection monitor Envoy 1.40 names when it is missing."""
    overload = overload_of([], capsys)
    monitors = {m["name"]: m["typed_config"] for m in overload["resource_monitors"]}  # type: ignore[attr-defined]
    assert int(monitors["envoy.resource_monitors.fixed_heap"]["max_heap_size_bytes"]) == 1024**3
    connections = monitors["envoy.resource_monitors.global_downstream_max_connections"]
    assert int(connections["max_active_downstream_connections"]) == 50_000
    actions = {a["name"]: a["triggers"] for a in overload["actions"]}  # type: ignore[attr-defined]
    assert actions == {
        "envoy.overload_actions.shrink_heap": [
            {"name": "envoy.resource_monitors.fixed_heap", "threshold": {"value": 0.95}}
        ],
        "envoy.overload_actions.stop_accepting_requests": [
            {"name": "envoy.resource_monitors.fixed_heap", "threshold": {"value": 0.98}}
        ],
    }


@pytest.mark.parametrize(
    ("args", "heap", "connections"),
    [
        pytest.param(["--max-heap", "400Mi", "--max-connections", "1000"], 400 * 1024**2, 1000, id="both"),
        pytest.param(["--max-heap", "2GiB"], 2 * 1024**3, 50_000, id="gib-suffix"),
        pytest.param(["--max-heap", str(128 * 1024**2)], 128 * 1024**2, 50_000, id="bytes"),
        pytest.param(["--max-heap", "0"], None, 50_000, id="no-heap-monitor"),
        pytest.param(["--max-connections", "0"], 1024**3, None, id="no-connection-cap"),
    ],
)
def test_overload_flags(
    args: list[str], heap: int | None, connections: int | None, capsys: pytest.CaptureFixture[str]
) -> None:
    overload = overload_of(args, capsys)
    monitors = {m["name"]: m["typed_config"] for m in overload["resource_monitors"]}  # type: ignore[attr-defined]
    found_heap = monitors.get("envoy.resource_monitors.fixed_heap", {}).get("max_heap_size_bytes")
    found_connections = monitors.get("envoy.resource_monitors.global_downstream_max_connections", {}).get(
        "max_active_downstream_connections"
    )
    assert (found_heap and int(found_heap), found_connections and int(found_connections)) == (heap, connections)
    assert bool(overload.get("actions")) == (heap is not None)


def test_both_limits_off_leave_no_overload_manager(capsys: pytest.CaptureFixture[str]) -> None:
    assert overload_of(["--max-heap", "0", "--max-connections", "0"], capsys) == {}


def test_the_admin_interface_is_outside_the_connection_cap(capsys: pytest.CaptureFixture[str]) -> None:
    assert yaml.safe_load(render(SHIPPED_ARGS, capsys))["admin"]["ignore_global_conn_limit"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--max-heap", "1G"], "not a size", id="decimal-unit"),
        pytest.param(["--max-heap", "lots"], "not a size", id="words"),
        pytest.param(["--max-heap=-1Gi"], "not a size", id="negative"),
        pytest.param(["--max-heap", "16Mi"], "below 64Mi", id="too-small"),
        pytest.param(["--max-connections", "-5"], "whole number", id="negative-connections"),
        pytest.param(["--max-connections", "1e4"], "whole number", id="float-connections"),
        pytest.param(["--max-connections", "1\u00b2"], "whole number", id="superscript-connections"),
    ],
)
def test_bad_overload_flags_are_refused(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([*SHIPPED_ARGS, *args])
    assert message in capsys.readouterr().err


@pytest.mark.envoy
@pytest.mark.parametrize(
    ("xds", "extra"),
    [
        ("127.0.0.1:18000,127.0.0.2:18000", []),
        ("controlplane.controlplane-system.svc:18000", ["--api", "delta"]),
        ("10.0.0.1:18000", ["--xds-server-name", "cp.example"]),
    ],
)
def test_envoy_accepts_the_tls_bootstrap(
    xds: str, extra: list[str], envoy_binary: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki = make_pki(tmp_path / "pki")
    tls = [
        "--tls-cert",
        str(pki.gateway.cert_path),
        "--tls-key",
        str(pki.gateway.key_path),
        "--server-ca",
        str(pki.ca.path),
    ]
    path = tmp_path / "bootstrap.yaml"
    path.write_text(render([*SHIPPED_ARGS[:-1], xds, *tls, *extra], capsys))
    result = validate_file(envoy_binary, path)
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--max-heap", "64Mi", "--max-connections", "1"], id="smallest"),
        pytest.param(["--max-heap", "0"], id="connections-only"),
        pytest.param(["--max-connections", "0"], id="heap-only"),
        pytest.param(["--max-heap", "0", "--max-connections", "0"], id="none"),
    ],
)
def test_envoy_accepts_every_overload_variant(
    args: list[str], envoy_binary: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bootstrap.yaml"
    path.write_text(render([*SHIPPED_ARGS, *args], capsys))
    result = validate_file(envoy_binary, path)
    assert result.returncode == 0, result.stderr


def test_a_node_named_like_a_yaml_boolean_stays_a_string_for_envoy(
    envoy_binary: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """yaml-cpp reads a bare `n` or `y` as a boolean; PyYAML does not quote them by itself."""
    text = render(["bootstrap", "--node-id", "n", "--node-cluster", "y", "--xds", "127.0.0.1:18000"], capsys)
    assert "id: 'n'" in text and "cluster: 'y'" in text
    path = tmp_path / "bootstrap.yaml"
    path.write_text(text)
    result = validate_file(envoy_binary, path)
    assert result.returncode == 0, result.stderr
