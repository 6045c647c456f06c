"""Services and EndpointSlices -> model ports: table-driven, for both EndpointSlice versions."""

from __future__ import annotations

import random
from typing import Any

import pytest

from controlplane.dsl import AddressPolicy, load_texts
from controlplane.errors import ConfigError
from controlplane.model import DiscoveredPort, Endpoint, KubernetesRef, KubernetesState, Model, Protocol, Service
from controlplane.sources.kubernetes.mapping import discovered_ports
from tests.kube.build import lines_from_deb822, lines_from_list


def svc(name: str = "users", ports: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    ports = ports if ports is not None else [{"name": "http", "port": 80}]
    return {"metadata": {"namespace": "shop", "name": name}, "spec": {"ports": ports, **spec}}


def slice_of(
    endpoints: list[dict[str, Any]], port: int = 8080, name: str = "s1", port_name: str = "http"
) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "shop", "name": name, "labels": {"kubernetes.io/service-name": "users"}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
    }


def ep(address: str, **conditions: bool) -> dict[str, Any]:
    return {"addresses": [address], "conditions": conditions}


READY = Endpoint("10.0.0.1", 8080)
DRAINING = Endpoint("10.0.0.1", 8080, draining=True)

CONDITIONS = [
    ("ready", {"ready": True}, (READY,)),
    ("unset means ready", {}, (READY,)),
    ("terminating but serving drains", {"ready": False, "serving": True, "terminating": True}, (DRAINING,)),
    ("terminating, not serving: gone", {"ready": False, "serving": False, "terminating": True}, ()),
    ("not ready: gone", {"ready": False}, ()),
]


@pytest.mark.parametrize(("case", "conditions", "expected"), CONDITIONS, ids=[c[0] for c in CONDITIONS])
def test_endpoint_conditions(case: str, conditions: dict[str, bool], expected: tuple[Endpoint, ...]) -> None:
    ports, refusals = discovered_ports([svc()], [slice_of([ep("10.0.0.1", **conditions)])], AddressPolicy())
    assert ports[0].endpoints == expected
    assert refusals == []


@pytest.mark.parametrize(
    ("endpoint", "zone"),
    [
        ({"addresses": ["10.0.0.1"], "zone": "eu-1a"}, "eu-1a"),  # discovery.k8s.io/v1
        ({"addresses": ["10.0.0.1"], "topology": {"topology.kubernetes.io/zone": "eu-1b"}}, "eu-1b"),  # v1beta1
    ],
)
def test_zone_from_either_version(endpoint: dict[str, Any], zone: str) -> None:
    ports, _ = discovered_ports([svc()], [slice_of([endpoint])], AddressPolicy())
    assert ports[0].endpoints == (Endpoint("10.0.0.1", 8080, zone=zone),)


def test_ready_copy_wins_over_draining_copy_in_another_slice() -> None:
    slices = [
        slice_of([ep("10.0.0.1", ready=False, serving=True, terminating=True)], name="old"),
        slice_of([ep("10.0.0.1", ready=True)], name="new"),
    ]
    for order in (slices, slices[::-1]):
        assert discovered_ports([svc()], order, AddressPolicy())[0][0].endpoints == (READY,)


def test_ports_by_name_udp_skipped_and_app_protocol() -> None:
    ports_spec = [
        {"name": "grpc", "port": 9000, "appProtocol": "grpc"},
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "h2", "port": 81, "appProtocol": "kubernetes.io/h2c"},
    ]
    slices = [slice_of([ep("10.0.0.1")], port=9090, port_name="grpc", name="a")]
    ports, _ = discovered_ports([svc(ports=ports_spec)], slices, AddressPolicy())
    assert [(p.port_name, p.protocol, len(p.endpoints)) for p in ports] == [  # sorted by port number
        ("h2", Protocol.HTTP2, 0),
        ("grpc", Protocol.GRPC, 1),
    ]
    assert ports[1].endpoints[0].port == 9090


@pytest.mark.parametrize(
    ("external", "refused"),
    [
        ("db.example.internal", ""),
        ("localhost", "loopback"),
        ("127.0.0.1", "loopback"),
        ("169.254.169.254", "denied network"),
        ("", "needs spec.externalName"),
    ],
)
def test_external_name(external: str, refused: str) -> None:
    service = svc(name="db", ports=[{"name": "sql", "port": 5432}], type="ExternalName", externalName=external)
    ports, refusals = discovered_ports([service], [], AddressPolicy())
    if refused:
        assert ports == () and refused in refusals[0].message
    else:
        assert ports[0].dns_name == external and ports[0].endpoints == ()


def test_denied_endpoint_is_refused_and_reported() -> None:
    ports, refusals = discovered_ports([svc()], [slice_of([ep("169.254.169.254")])], AddressPolicy())
    assert ports[0].endpoints == ()
    assert refusals[0].object == "EndpointSlice shop/s1" and "denied" in refusals[0].message


def test_order_of_objects_does_not_change_the_result() -> None:
    services = [svc(name=f"s{i}") for i in range(5)]
    slices = [slice_of([ep(f"10.0.0.{i}")], name=f"x{i}") for i in range(5)]
    first = discovered_ports(services, slices, AddressPolicy())
    rng = random.Random(7)
    for _ in range(3):
        rng.shuffle(services)
        rng.shuffle(slices)
        assert discovered_ports(services, slices, AddressPolicy()) == first


def test_model_joins_ports_by_name_number_and_declared_service() -> None:
    port = DiscoveredPort("shop", "users", 80, "http", endpoints=(READY,))
    declared = Service(name="users", discovery="kubernetes", kubernetes=KubernetesRef("shop", "users", "80"))
    model = Model(services=(declared,)).with_kubernetes(KubernetesState(ports=(port,), synced=True))
    by_name = {s.name: s for s in model.services}
    assert by_name["users"].endpoints == (READY,)
    assert by_name["shop/users:http"].endpoints == (READY,)


def test_deb822_sources_become_deb_and_deb_src_lines() -> None:
    text = (
        "Types: deb\n# a comment\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/k.gpg\n\nTypes: deb\nURIs: http://x.invalid/d\n"
        "Suites: s\nComponents: main\nEnabled: no\n"
    )
    assert lines_from_deb822(text) == [
        "deb [signed-by=/usr/share/keyrings/k.gpg] http://mirror.invalid/debian bookworm main",
        "deb-src [signed-by=/usr/share/keyrings/k.gpg] http://mirror.invalid/debian bookworm main",
        "deb [signed-by=/usr/share/keyrings/k.gpg] http://mirror.invalid/debian bookworm-updates main",
        "deb-src [signed-by=/usr/share/keyrings/k.gpg] http://mirror.invalid/debian bookworm-updates main",
    ]
    assert lines_from_list("deb http://m.invalid/debian bookworm main # x\n#deb-src y\n") == [
        "deb http://m.invalid/debian bookworm main",
        "deb-src http://m.invalid/debian bookworm main",
    ]


def test_a_route_table_reaches_only_services_in_its_own_namespace() -> None:
    text = (
        "listeners:\n- name: l\n  port: 8080\n  routes:\n  - match: {prefix: /}\n    to: billing/ledger:http\n"
        "services:\n  s:\n    kubernetes: {namespace: billing, name: ledger, port: http}\n"
    )
    load_texts([("RouteTable billing/r", text)], namespaces={"RouteTable billing/r": "billing"})
    with pytest.raises(ConfigError) as refused:
        load_texts([("RouteTable shop/r", text)], namespaces={"RouteTable shop/r": "shop"})
    assert [str(p) for p in refused.value.problems] == [
        "RouteTable shop/r:6:9: listeners[0].routes[0].to: this RouteTable is in namespace 'shop': "
        "it cannot use Services in 'billing'",
        "RouteTable shop/r:9:29: services.s.kubernetes.namespace: this RouteTable is in namespace 'shop': "
        "it cannot use Services in 'billing'",
    ]
