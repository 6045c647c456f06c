"""`controlplane serve` as a process, without Envoy: readiness, gRPC health, per-type services."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.cluster.v3 import cds_pb2_grpc
from envoy.service.discovery.v3 import discovery_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from controlplane.translate import CLUSTER_TYPE
from tests.e2e import ControlPlane, wait_for
from tests.xds_harness import resource_name, services_yaml


def readyz(cp: ControlPlane) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{cp.status_port}/readyz", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def grpc_health(cp: ControlPlane) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{cp.xds_port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return int(stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status)


def test_not_ready_until_a_valid_config_then_ready(tmp_path: Path) -> None:
    cp = ControlPlane(services_yaml("a").replace("port: 10000", "port: 0"), tmp_path)
    cp.start(ready=False)
    try:
        wait_for(lambda: cp.get("/api/config")["problems"], what="problems reported")
        assert readyz(cp) == 503
        assert grpc_health(cp) == health_pb2.HealthCheckResponse.NOT_SERVING
        cp.edit(services_yaml("a"))
        wait_for(lambda: readyz(cp) == 200, what="ready")
        wait_for(lambda: grpc_health(cp) == health_pb2.HealthCheckResponse.SERVING, what="SERVING")
        assert cp.get("/api/config")["problems"] == []
    finally:
        cp.stop()


def test_the_per_type_cluster_service_answers(tmp_path: Path) -> None:
    cp = ControlPlane(services_yaml("a", "b"), tmp_path).start()

    async def fetch() -> list[str]:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{cp.xds_port}") as channel:
            call = cds_pb2_grpc.ClusterDiscoveryServiceStub(channel).StreamClusters()
            await call.write(discovery_pb2.DiscoveryRequest(type_url=CLUSTER_TYPE, node=base_pb2.Node(id="x")))
            response = await asyncio.wait_for(call.read(), 5)
            call.cancel()
            return sorted(resource_name(r) for r in response.resources)

    try:
        assert asyncio.run(fetch()) == ["a", "b"]
    finally:
        cp.stop()


def test_sigterm_exits_promptly_even_with_a_client_holding_a_connection(tmp_path: Path) -> None:
    import http.client
    import time

    cp = ControlPlane(services_yaml("a"), tmp_path).start()
    held = http.client.HTTPConnection("127.0.0.1", cp.status_port, timeout=5)
    held.request("GET", "/api/config")  # keep-alive: the connection stays open after the answer
    held.getresponse().read()
    process = cp.process
    assert process is not None
    started = time.monotonic()
    process.terminate()
    process.wait(timeout=15)
    cp.process = None
    held.close()
    assert time.monotonic() - started < 6.0
