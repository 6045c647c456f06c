"""What the control plane tells about itself and its Envoys: /metrics, /debug/config, CSDS, status."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from envoy.service.status.v3 import csds_pb2, csds_pb2_grpc

from tests.conftest import ROOT
from tests.e2e import (
    ControlPlane,
    Envoy,
    Gateway,
    Upstream,
    free_port,
    gateway,
    listener,
    metrics_of,
    request,
    stopping,
    wait_for,
)

pytestmark = pytest.mark.envoy


def metrics(gw: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return metrics_of(gw.control_plane.status_port)


def status_table(gw: Gateway) -> str:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "controlplane",
            "status",
            "--status-address",
            f"127.0.0.1:{gw.control_plane.status_port}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout


def test_metrics_debug_config_csds_and_status(tmp_path: Path) -> None:
    app, squatter = Upstream("app").start(), Upstream("squatter").start()

    def routes(port: int, extra: int | None = None) -> str:
        text = listener(port, "      - match: {prefix: /}\n        to: app\n")
        if extra:
            text += (
                f"  - name: second\n    port: {extra}\n    address: 127.0.0.1\n"
                "    routes:\n      - match: {prefix: /}\n        to: app\n"
            )
        return text + f"services:\n  app: {{endpoints: ['{app.address}']}}\n"

    with stopping(app, squatter), gateway(tmp_path, "sotw", routes) as gw:
        values = wait_for(lambda: (m := metrics(gw)) and m.get(("controlplane_xds_connected_proxies", ())) == 1 and m)
        assert values[("controlplane_xds_pushes_total", (("type", "Listener"),))] >= 1
        assert values[("controlplane_xds_convergence_seconds_count", (("type", "RouteConfiguration"),))] >= 1
        assert values[("controlplane_config_valid", ())] == 1
        assert values[("controlplane_snapshot_build_seconds_count", ())] >= 1

        debug = gw.control_plane.get("/debug/config?node=gw-1")
        listeners = next(t for t in debug[0]["types"] if t["type_url"].endswith("Listener"))
        assert [item["name"] for item in listeners["accepted"]] == ["public"]

        with grpc.insecure_channel(f"127.0.0.1:{gw.control_plane.xds_port}") as channel:
            csds = csds_pb2_grpc.ClientStatusDiscoveryServiceStub(channel)
            answer = csds.FetchClientStatus(csds_pb2.ClientStatusRequest(), timeout=5)
        (client,) = answer.config
        assert client.node.id == "gw-1"
        assert {c.type_url.rsplit(".", 1)[-1] for c in client.generic_xds_configs} == {
            "Cluster",
            "ClusterLoadAssignment",
            "Listener",
            "RouteConfiguration",
        }
        assert {c.config_status for c in client.generic_xds_configs} == {csds_pb2.SYNCED}

        row = next(line for line in status_table(gw).splitlines() if line.startswith("gw-1"))
        assert row.split()[4:8] == ["SYNCED"] * 4

        gw.control_plane.edit(routes(gw.port, squatter.port))  # Envoy cannot bind it: a NACK
        wait_for(lambda: metrics(gw).get(("controlplane_xds_nacks_total", (("type", "Listener"),)), 0) >= 1)
        # The rejected listener is quarantined; what Envoy holds already equals what is served, so
        # nothing is re-sent and LDS keeps showing the NACK until the source is fixed.
        table = wait_for(lambda: (s := status_table(gw)) and "1 quarantined" in s and s)
        row = next(line for line in table.splitlines() if line.startswith("gw-1"))
        assert row.split()[4:8] == ["SYNCED", "SYNCED", "NACKED", "SYNCED"]


def test_traffic_through_envoy_shows_up_per_service(tmp_path: Path) -> None:
    ok, bad = Upstream("ok").start(), Upstream("bad", failing=True).start()
    port = free_port()
    text = listener(
        port, "      - match: {prefix: /bad}\n        to: failing\n      - match: {prefix: /}\n        to: fine\n"
    ) + (f"services:\n  fine: {{endpoints: ['{ok.address}']}}\n  failing: {{endpoints: ['{bad.address}']}}\n")
    cp = ControlPlane(text, tmp_path).start()
    envoy = Envoy(tmp_path, cp.xds_port, "gw-1", "sotw", bootstrap_args=("--stats-interval", "1s")).start()
    with stopping(ok, bad, cp, envoy):
        envoy.wait_listening(port)
        wait_for(lambda: request(port)[0] == 200, what="traffic flowing")
        sent_ok, sent_bad = (
            1 + sum(request(port)[0] == 200 for _ in range(49)),
            sum(request(port, "/bad")[0] == 500 for _ in range(10)),
        )
        assert (sent_ok, sent_bad) == (50, 10)

        def figures() -> dict[str, dict[str, object]]:
            return {s["name"]: s["traffic"] for s in cp.get("/api/services")}

        seen = wait_for(
            lambda: (f := figures()) and f["fine"]["requests"] >= 50 and f["failing"]["requests"] >= 10 and f,
            timeout=10,
            what="the pushed stats",
        )
        assert (seen["fine"]["requests"], seen["fine"]["errors"]) == (50, 0)
        assert (seen["failing"]["requests"], seen["failing"]["errors"], seen["failing"]["error_rate"]) == (10, 10, 1.0)
        assert seen["fine"]["p50_ms"] is not None and seen["fine"]["p99_ms"] >= seen["fine"]["p50_ms"]
        service = next(s for s in cp.get("/api/services") if s["name"] == "fine")
        (endpoint,) = service["endpoints"]
        assert {k: endpoint[k] for k in ("address", "zone", "priority", "weight", "draining")} == {
            "address": ok.address,
            "zone": "",
            "priority": 0,
            "weight": 1,
            "draining": False,
        }
        assert (endpoint["requests"], endpoint["errors"], endpoint["health"]) == (50, 0, "healthy")
        assert sum(point["rate"] for point in service["series"]) > 0
        exported = metrics_of(cp.status_port)
        assert exported[("controlplane_service_error_ratio", (("service", "failing"),))] == 1.0
        assert exported[("controlplane_service_request_rate", (("service", "fine"),))] == pytest.approx(50 / 60)


def test_per_endpoint_traffic_and_health_pushed_by_envoy(tmp_path: Path) -> None:
    """Three upstreams behind one service, one answering 500, and a health-checked service with a
    sick endpoint: each endpoint's requests and 5xx match what the upstream itself counted, the
    failing one is shown ejected and the sick one failing health checks, within a few pushes,
    even though Envoy's admin /stats is read in between (it latches Envoy's per-host counters)."""
    one, two, bad = Upstream("one").start(), Upstream("two").start(), Upstream("bad", failing=True).start()
    three, sick = Upstream("three").start(), Upstream("sick", failing=True).start()
    port = free_port()
    text = listener(
        port, "      - match: {prefix: /checked}\n        to: checked\n      - match: {prefix: /}\n        to: app\n"
    )
    text += (
        f"services:\n  app:\n    endpoints: ['{one.address}', '{two.address}', '{bad.address}']\n"
        "    outlier_detection:\n"
        "      {consecutive_5xx: 3, interval: 100ms, base_ejection_time: 60s, max_ejection_percent: 50}\n"
        f"  checked:\n    endpoints: ['{three.address}', '{sick.address}']\n"
        "    health_check: {http: /healthz, interval: 200ms, timeout: 200ms, unhealthy: 1, healthy: 1}\n"
    )
    cp = ControlPlane(text, tmp_path).start()
    envoy = Envoy(tmp_path, cp.xds_port, "gw-1", "sotw", bootstrap_args=("--stats-interval", "1s")).start()
    with stopping(one, two, bad, three, sick, cp, envoy):
        envoy.wait_listening(port)
        wait_for(lambda: request(port, "/checked")[0] == 200, what="the health-checked service answering")
        statuses = [request(port)[0] for _ in range(60)] + [request(port, "/checked")[0] for _ in range(20)]
        envoy.admin("/stats")  # a reader of Envoy's own stats must not take counts from the pushes
        sent_at = time.monotonic()
        assert (statuses.count(500), bad.hits) == (3, 3)  # ejected after its 3rd consecutive 5xx
        upstreams = {u.address: u for u in (one, two, bad, three, sick)}

        def endpoints() -> dict[str, dict[str, object]]:
            return {e["address"]: e for s in cp.get("/api/services") for e in s["endpoints"]}

        def matches_upstreams() -> dict[str, dict[str, object]] | None:
            seen = endpoints()
            counted = all(seen[a]["requests"] == u.hits for a, u in upstreams.items())
            return seen if counted and seen[bad.address]["health"] == "unhealthy" else None

        seen = wait_for(matches_upstreams, timeout=10, what="per-endpoint figures equal to the upstreams' counts")
        visible_after = time.monotonic() - sent_at
        assert one.hits + two.hits + bad.hits == 60 and three.hits == 21 and sick.hits == 0
        assert [seen[u.address]["errors"] for u in (one, two, bad, three, sick)] == [0, 0, 3, 0, 0]
        assert seen[bad.address]["error_rate"] == 1.0
        assert (seen[bad.address]["unhealthy_in"], seen[bad.address]["causes"]) == (
            ["gw-1"],
            ["ejected by outlier detection"],
        )
        assert (seen[sick.address]["health"], seen[sick.address]["causes"]) == ("unhealthy", ["failing health checks"])
        assert {seen[u.address]["health"] for u in (one, two, three)} == {"healthy"}
        assert visible_after < 5, f"took {visible_after:.1f}s with Envoy pushing every 1s"

        exported = metrics_of(cp.status_port)
        labels = (("endpoint", bad.address), ("service", "app"))
        assert exported[("controlplane_endpoint_error_ratio", labels)] == 1.0
        assert exported[("controlplane_endpoint_unhealthy_envoys", labels)] == 1
        assert exported[("controlplane_endpoint_request_rate", (("endpoint", one.address), ("service", "app")))] == (
            pytest.approx(one.hits / 60)
        )
        page = urllib.request.urlopen(f"http://127.0.0.1:{cp.status_port}/", timeout=5).read().decode()
        row = page[page.index(f"data-endpoint={bad.address}") :]
        assert "unhealthy in gw-1: ejected by outlier detection" in row[: row.index("</tr>")]
