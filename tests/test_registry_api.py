"""The Registry gRPC API of a running `controlplane serve` (no Envoy)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from controlplane.registry.v1 import registry_pb2, registry_pb2_grpc
from tests.e2e import ControlPlane

ROUTES = "services:\n  billing: {discovery: registry}\n"


@pytest.fixture
def control_plane(tmp_path: Path) -> Iterator[ControlPlane]:
    cp = ControlPlane(ROUTES, tmp_path).start()
    try:
        yield cp
    finally:
        cp.stop()


def stub(cp: ControlPlane) -> registry_pb2_grpc.RegistryStub:
    return registry_pb2_grpc.RegistryStub(grpc.insecure_channel(f"127.0.0.1:{cp.xds_port}"))


def good(**changes: object) -> registry_pb2.RegisterRequest:
    fields = {"service": "billing", "address": "10.0.0.1", "port": 8080, "ttl_ms": 10_000, **changes}
    return registry_pb2.RegisterRequest(**fields)


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        pytest.param(good(service=""), grpc.StatusCode.INVALID_ARGUMENT, "service must be a non-empty", id="empty"),
        pytest.param(good(port=0), grpc.StatusCode.INVALID_ARGUMENT, "port 0 is out of range", id="port-0"),
        pytest.param(good(ttl_ms=0), grpc.StatusCode.INVALID_ARGUMENT, "ttl_ms 0 is out of range", id="ttl-0"),
        pytest.param(good(ttl_ms=10**9), grpc.StatusCode.INVALID_ARGUMENT, "out of range 1000-300000", id="ttl-max"),
        pytest.param(
            good(metadata={f"k{i}": "" for i in range(1000)}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "metadata has 1000 keys",
            id="metadata-keys",
        ),
        pytest.param(good(service="nope"), grpc.StatusCode.FAILED_PRECONDITION, "not declared", id="undeclared"),
    ],
)
def test_bad_requests_are_refused_with_a_clear_message_and_change_nothing(
    control_plane: ControlPlane, request_: registry_pb2.RegisterRequest, code: grpc.StatusCode, message: str
) -> None:
    registry = stub(control_plane)
    with pytest.raises(grpc.RpcError) as refused:
        registry.Register(request_, timeout=5)
    assert refused.value.code() == code
    assert message in refused.value.details()
    assert list(registry.List(registry_pb2.ListRequest(), timeout=5).registrations) == []


def test_a_million_metadata_keys_is_refused_before_it_costs_memory(control_plane: ControlPlane) -> None:
    registry = stub(control_plane)
    with pytest.raises(grpc.RpcError) as refused:
        registry.Register(good(metadata={f"k{i}": "" for i in range(1_000_000)}), timeout=30)
    # Larger than the server's 4 MiB message limit: gRPC refuses it before the registry sees it.
    assert refused.value.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INVALID_ARGUMENT)
    assert list(registry.List(registry_pb2.ListRequest(), timeout=5).registrations) == []


def test_register_list_renew_deregister(control_plane: ControlPlane) -> None:
    registry = stub(control_plane)
    lease = registry.Register(good(metadata={"version": "v2"}, weight=2, zone="a"), timeout=5)
    listed = registry.List(registry_pb2.ListRequest(service="billing"), timeout=5).registrations
    assert [(r.address, r.port, r.weight, r.zone, dict(r.metadata), r.draining) for r in listed] == [
        ("10.0.0.1", 8080, 2, "a", {"version": "v2"}, False)
    ]
    assert registry.Renew(registry_pb2.RenewRequest(lease_id=lease.lease_id), timeout=5).ttl_ms == 10_000
    registry.Deregister(registry_pb2.DeregisterRequest(lease_id=lease.lease_id, drain_ms=60_000), timeout=5)
    assert [r.draining for r in registry.List(registry_pb2.ListRequest(), timeout=5).registrations] == [True]
    with pytest.raises(grpc.RpcError) as unknown:
        registry.Renew(registry_pb2.RenewRequest(lease_id="no-such-lease"), timeout=5)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_watch_and_keepalive_streams(control_plane: ControlPlane) -> None:
    async def scenario() -> tuple[list[int], int]:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{control_plane.xds_port}") as channel:
            registry = registry_pb2_grpc.RegistryStub(channel)
            watch = registry.Watch(registry_pb2.ListRequest(service="billing"))
            sizes = [len((await watch.read()).registrations)]
            lease = await registry.Register(good(ttl_ms=1000))
            sizes.append(len((await asyncio.wait_for(watch.read(), 5)).registrations))
            keepalive = registry.KeepAlive()
            for _ in range(4):  # 2s of renewals every 0.5s keep a 1s lease alive
                await keepalive.write(registry_pb2.RenewRequest(lease_id=lease.lease_id))
                await keepalive.read()
                await asyncio.sleep(0.5)
            alive = len((await registry.List(registry_pb2.ListRequest())).registrations)
            watch.cancel()
            keepalive.cancel()
            return sizes, alive

    sizes, alive = asyncio.run(scenario())
    assert sizes == [0, 1]
    assert alive == 1


def test_an_ok_from_register_means_the_lease_is_on_disk(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cp = ControlPlane(ROUTES, tmp_path, extra_args=("--state-dir", str(state))).start()
    try:
        for port in (9001, 9002):
            stub(cp).Register(good(port=port), timeout=5)
            saved = json.loads((state / "registry.json").read_text(encoding="utf-8"))  # at once: no waiting
            assert port in [lease["port"] for lease in saved]
    finally:
        cp.stop()


def test_a_lease_that_cannot_be_written_is_reported_not_acknowledged(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "registry.json").mkdir(parents=True)  # the write's rename onto it fails
    cp = ControlPlane(ROUTES, tmp_path, extra_args=("--state-dir", str(state))).start()
    try:
        with pytest.raises(grpc.RpcError) as refused:
            stub(cp).Register(good(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "could not be written to the state directory" in str(refused.value.details())
        listed = stub(cp).List(registry_pb2.ListRequest(service="billing"), timeout=5)
        assert [r.port for r in listed.registrations] == [8080]  # served all the same
    finally:
        cp.stop()
