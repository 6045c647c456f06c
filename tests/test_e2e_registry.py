"""Registered endpoints through real Envoy: join, expire without failures, drain on deregister."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from controlplane.registry.v1 import registry_pb2, registry_pb2_grpc
from tests.conftest import ROOT
from tests.e2e import (
    ControlPlane,
    Envoy,
    Gateway,
    Load,
    Upstream,
    free_port,
    gateway,
    listener,
    request,
    stopping,
    wait_for,
)

pytestmark = pytest.mark.envoy

NO_ENDPOINT_YET = (503).__eq__
"""The route exists once Envoy answers 503 (no healthy upstream) rather than refusing or 404."""


def routes(port: int) -> str:
    return listener(
        port,
        "      - match: {prefix: /}\n        to: billing\n"
        "        retries: {attempts: 2, on: [connect-failure, reset]}\n",
    ) + ("services:\n  billing: {discovery: registry}\n")


def registry(gw: Gateway) -> registry_pb2_grpc.RegistryStub:
    return registry_pb2_grpc.RegistryStub(grpc.insecure_channel(f"127.0.0.1:{gw.control_plane.xds_port}"))


def host_flags(gw: Gateway, upstream: Upstream) -> str | None:
    """Envoy's health flags for `upstream` in cluster billing, or None when Envoy does not have it."""
    for line in gw.envoy.admin("/clusters").splitlines():
        if line.startswith(f"billing::{upstream.address}::health_flags::"):
            return line.rsplit("::", 1)[1]
    return None


def register_process(upstream: Upstream, gw: Gateway, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "controlplane",
        "register",
        "--service",
        "billing",
        "--address",
        upstream.address,
        "--registry",
        f"127.0.0.1:{gw.control_plane.xds_port}",
        *extra,
    ]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_registered_endpoint_receives_traffic(tmp_path: Path) -> None:
    vm = Upstream("vm-1").start()
    with stopping(vm), gateway(tmp_path, "sotw", routes, ready_status=NO_ENDPOINT_YET) as gw:
        assert gw.get()[0] == 503  # no endpoint yet
        joiner = register_process(vm, gw, "--ttl", "2s")
        try:
            wait_for(lambda: gw.get()[1] == "vm-1", what="the registered endpoint to serve")
        finally:
            joiner.terminate()
            joiner.wait(timeout=10)


def test_an_endpoint_that_stops_renewing_is_removed_within_its_ttl_without_failures(tmp_path: Path) -> None:
    stays, dies = Upstream("stays").start(), Upstream("dies").start()
    with stopping(stays, dies), gateway(tmp_path, "delta", routes, ready_status=NO_ENDPOINT_YET) as gw:
        keeper = register_process(stays, gw, "--ttl", "2s")
        try:
            # `dies` never renews its 1 s lease: register it only once the keeper (a process that
            # takes a while to start) serves, or the lease may run out before both are seen.
            wait_for(lambda: gw.get()[1] == "stays", what="the keeper's endpoint serving")
            lease = registry(gw).Register(
                registry_pb2.RegisterRequest(service="billing", address="127.0.0.1", port=dies.port, ttl_ms=1000),
                timeout=5,
            )
            wait_for(lambda: {gw.get()[1] for _ in range(6)} == {"stays", "dies"}, what="both serving")
            with Load(gw.port) as load:
                dies.stop()  # the process dies and so stops renewing lease `lease`
                died_at = time.monotonic()
                wait_for(lambda: host_flags(gw, dies) is None, timeout=5, what="the expired endpoint removed")
                removed_after = time.monotonic() - died_at
            assert load.failures() == []
            assert removed_after < 1.0 + 0.5, removed_after  # TTL + debounce + push, with margin
            assert lease.lease_id not in {
                r.lease_id for r in registry(gw).List(registry_pb2.ListRequest()).registrations
            }
        finally:
            keeper.terminate()
            keeper.wait(timeout=10)


def test_deregister_drains_then_removes(tmp_path: Path) -> None:
    a, b = Upstream("a").start(), Upstream("b").start()
    with stopping(a, b), gateway(tmp_path, "sotw", routes, ready_status=NO_ENDPOINT_YET) as gw:
        keep_a = register_process(a, gw)
        keep_b = register_process(b, gw, "--drain", "1500ms")
        try:
            wait_for(lambda: {gw.get()[1] for _ in range(6)} == {"a", "b"}, what="both serving")
            keep_b.send_signal(signal.SIGTERM)  # deregisters with a 1.5s drain
            flags = wait_for(
                lambda: host_flags(gw, b) if "draining" in (host_flags(gw, b) or "") else None,
                timeout=5,
                what="b draining",
            )
            assert "eds_status_draining" in flags
            assert {gw.get()[1] for _ in range(20)} == {"a"}  # no new requests to a draining endpoint
            wait_for(lambda: host_flags(gw, b) is None, timeout=5, what="b removed after the drain")
            assert keep_b.wait(timeout=10) == 0
        finally:
            for process in (keep_a, keep_b):
                process.terminate()
                process.wait(timeout=10)
        assert request(gw.port)[1] == "a"


def endpoint_count(gw: Gateway) -> int:
    return sum(
        1
        for line in gw.envoy.admin("/clusters").splitlines()
        if line.startswith("billing::127.0.0.1:") and line.endswith("::cx_total::0")
    )


def test_a_thousand_endpoint_changes_in_ten_seconds_cost_few_pushes(tmp_path: Path) -> None:
    with gateway(tmp_path, "delta", routes, ready_status=NO_ENDPOINT_YET) as gw:
        stub = registry(gw)
        updates_before = gw.envoy.stat("cluster.billing.update_success")
        started = time.monotonic()
        for n in range(1000):
            stub.Register(
                registry_pb2.RegisterRequest(service="billing", address="127.0.0.1", port=20000 + n, ttl_ms=300_000),
                timeout=5,
            )
            time.sleep(max(0.0, started + (n + 1) / 100 - time.monotonic()))  # 100 changes/s
        last_change = time.monotonic()
        wait_for(lambda: endpoint_count(gw) == 1000, timeout=5, what="all 1000 endpoints in Envoy", every=0.01)
        exact_after = time.monotonic() - last_change
        pushes = gw.envoy.stat("cluster.billing.update_success") - updates_before
        print(f"1000 changes in {last_change - started:.1f}s -> {pushes} EDS updates; exact {exact_after:.3f}s after")
        assert exact_after < 1.0
        assert pushes <= 100


def leases_on_disk(state: Path) -> list[str]:
    """host:port of every lease in the state directory's registry file."""
    path = state / "registry.json"
    saved = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    return [f"{lease['host']}:{lease['port']}" for lease in saved]


def test_registered_endpoints_survive_a_control_plane_restart(tmp_path: Path) -> None:
    vm = Upstream("vm").start()
    port = free_port()
    state = tmp_path / "state"
    cp = ControlPlane(routes(port), tmp_path, extra_args=("--state-dir", str(state))).start()
    envoy = Envoy(tmp_path, cp.xds_port, "gw-1", "delta").start()
    with stopping(vm, cp, envoy):
        envoy.wait_listening(port)
        joiner = register_process(vm, Gateway(cp, envoy, port), "--ttl", "30s")  # renews only every 10s
        try:
            wait_for(lambda: request(port)[1] == "vm", what="the registered endpoint serving")
            # The client's Register returns once the lease is on disk (just after the push).
            wait_for(lambda: leases_on_disk(state) == [vm.address], what="the lease on disk")
            with Load(port, rate=200) as load:
                cp.kill()
                cp.start()
                endpoints = [e["address"] for s in cp.get("/api/services") for e in s["endpoints"]]
                time.sleep(1.0)
            assert endpoints == [vm.address]  # back at once, long before the client's next renewal
            assert load.failures() == []
        finally:
            joiner.terminate()
            joiner.wait(timeout=10)
