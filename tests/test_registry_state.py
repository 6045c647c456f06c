"""The registry source without I/O: validation, leases, expiry, draining, and what Envoy gets."""

from __future__ import annotations

import dataclasses
import json

import pytest

from controlplane.dsl import AddressPolicy, load_texts
from controlplane.model import Endpoint
from controlplane.render import message_to_data
from controlplane.sources.registry import RegisterInput, RegistryError, RegistryState
from controlplane.translate import ENDPOINT_TYPE, build_resources


def state() -> RegistryState:
    return RegistryState(AddressPolicy(), lambda: frozenset({"billing"}))


def ok(**changes: object) -> RegisterInput:
    base = {"service": "billing", "address": "10.0.0.1", "port": 8080, "ttl_ms": 10_000}
    return RegisterInput(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("request_", "kind", "message"),
    [
        pytest.param(ok(service=""), "invalid", "service must be a non-empty name", id="empty-name"),
        pytest.param(ok(port=0), "invalid", "port 0 is out of range 1-65535", id="port-zero"),
        pytest.param(ok(port=70000), "invalid", "port 70000 is out of range", id="port-too-big"),
        pytest.param(ok(ttl_ms=0), "invalid", "ttl_ms 0 is out of range 1000-300000", id="ttl-zero"),
        pytest.param(ok(ttl_ms=300_001), "invalid", "ttl_ms 300001 is out of range", id="ttl-above-max"),
        pytest.param(ok(address="billing.local"), "invalid", "is not an IPv4 or IPv6 address", id="hostname"),
        pytest.param(ok(address="127.0.0.1", port=9901), "invalid", "Envoy's own admin port", id="admin-port"),
        pytest.param(ok(address="169.254.169.254"), "invalid", "denied network", id="metadata-address"),
        pytest.param(
            ok(metadata=tuple((f"k{i}", "") for i in range(1000))),
            "invalid",
            "metadata has 1000 keys; at most 64",
            id="too-many-metadata-keys",
        ),
        pytest.param(ok(metadata=(("k", "v" * 5000),)), "invalid", "metadata is 5001 bytes", id="metadata-too-big"),
        pytest.param(ok(weight=2_000_000), "invalid", "weight 2000000 is above", id="weight"),
        pytest.param(
            ok(service="payments"),
            "precondition",
            "is not declared with 'discovery: registry'",
            id="undeclared-service",
        ),
    ],
)
def test_bad_registrations_are_refused_and_change_nothing(request_: RegisterInput, kind: str, message: str) -> None:
    registry = state()
    with pytest.raises(RegistryError, match=message) as refused:
        registry.register(request_, now=0.0)
    assert refused.value.kind == kind
    assert (registry.leases, registry.version) == ({}, 0)


def test_a_lease_expires_unless_renewed() -> None:
    registry = state()
    lease = registry.register(ok(ttl_ms=2000), now=100.0)
    assert registry.next_expiry() == 102.0
    assert not registry.expire(now=101.0)
    registry.renew(lease.lease_id, now=101.5)
    assert not registry.expire(now=103.0)
    assert registry.expire(now=103.6)
    assert registry.endpoints() == {}
    with pytest.raises(RegistryError, match="no lease") as gone:
        registry.renew(lease.lease_id, now=104.0)
    assert gone.value.kind == "not_found"


def test_deregister_drains_then_removes() -> None:
    registry = state()
    lease = registry.register(ok(), now=0.0)
    registry.deregister(lease.lease_id, drain_ms=3000, now=1.0)
    assert registry.endpoints() == {"billing": (Endpoint("10.0.0.1", 8080, draining=True),)}
    with pytest.raises(RegistryError, match="draining"):
        registry.renew(lease.lease_id, now=2.0)
    assert not registry.expire(now=3.9)
    assert registry.expire(now=4.0)
    assert registry.endpoints() == {}


def test_registrations_become_model_endpoints_and_envoy_endpoints() -> None:
    registry = state()
    registry.register(ok(weight=3, zone="a", metadata=(("version", "v2"),)), now=0.0)
    draining = registry.register(ok(address="10.0.0.2"), now=0.0)
    registry.deregister(draining.lease_id, drain_ms=0, now=0.0)
    text = (
        "listeners:\n  - name: l\n    port: 10000\n    routes:\n      - match: {prefix: /}\n        to: billing\n"
        "services:\n  billing: {discovery: registry}\n"
    )
    model = load_texts([("r.yaml", text)]).with_discovered(registry.endpoints())
    cla = message_to_data(build_resources(model)[ENDPOINT_TYPE][0])
    no_zone, zone_a = cla["endpoints"]  # localities sort by (priority, region, zone)
    assert no_zone["lb_endpoints"] == [
        {
            "endpoint": {"address": {"socket_address": {"address": "10.0.0.2", "port_value": 8080}}},
            "health_status": "DRAINING",
        }
    ]
    assert zone_a["locality"] == {"zone": "a"}
    assert zone_a["lb_endpoints"][0]["load_balancing_weight"] == 3
    assert zone_a["lb_endpoints"][0]["metadata"] == {"filter_metadata": {"controlplane.registry": {"version": "v2"}}}


def test_static_services_are_left_alone() -> None:
    text = "services:\n  static: {endpoints: ['10.0.0.9:80']}\n  dyn: {discovery: registry}\n"
    model = load_texts([("r.yaml", text)])
    assert model.registry_services() == frozenset({"dyn"})
    merged = model.with_discovered({"static": (Endpoint("10.0.0.1", 1),), "dyn": (Endpoint("10.0.0.2", 2),)})
    assert [s.endpoints for s in merged.services] == [(Endpoint("10.0.0.2", 2),), (Endpoint("10.0.0.9", 80),)]


def test_leases_survive_a_restart_with_one_full_ttl() -> None:
    before = state()
    live = before.register(ok(ttl_ms=5000, metadata=(("v", "2"),)), now=100.0)
    gone = before.register(ok(address="10.0.0.3"), now=100.0)
    before.deregister(gone.lease_id, drain_ms=1000, now=101.0)  # drain ends at 102
    after = state()
    assert after.restore(before.dump(), now=200.0) == 1  # the finished drain is dropped
    restored = after.leases[live.lease_id]
    assert (restored.expires_at, restored.metadata) == (205.0, (("v", "2"),))
    after.renew(live.lease_id, now=201.0)  # the client renews on the new process as before
    assert [e.host for e in after.endpoints()["billing"]] == ["10.0.0.1"]


def test_lease_file_is_what_asdict_gives() -> None:
    """The lease file keeps its format: each lease's fields as dataclasses.asdict renders them."""
    registry = state()
    registry.register(ok(metadata=(("v", "2"), ("a", "b"))), now=100.0)
    registry.register(ok(address="10.0.0.3"), now=100.0)
    expected = json.dumps([dataclasses.asdict(lease) for lease in registry.registrations()], sort_keys=True)
    assert registry.dump() == expected
    assert json.loads(registry.dump())[0]["metadata"] == [["a", "b"], ["v", "2"]]
