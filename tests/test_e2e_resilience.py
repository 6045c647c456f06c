"""Failover, health and rejection behaviour with real Envoy, real upstreams and live traffic."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e import Load, Upstream, gateway, listener, stopping, wait_for

pytestmark = pytest.mark.envoy


@pytest.fixture(params=["sotw", "delta"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _two_services(old: Upstream, new: Upstream, target: str, port: int) -> str:
    return listener(port, f"      - match: {{prefix: /}}\n        to: {target}\n") + (
        f"services:\n  old: {{endpoints: ['{old.address}']}}\n  new: {{endpoints: ['{new.address}']}}\n"
    )


def test_moving_a_route_to_a_new_service_under_load_loses_nothing(api: str, tmp_path: Path) -> None:
    old, new = Upstream("old").start(), Upstream("new").start()
    with stopping(old, new), gateway(tmp_path, api, lambda p: _two_services(old, new, "old", p)) as gw:
        with Load(gw.port) as load:
            time.sleep(0.5)
            gw.control_plane.edit(_two_services(old, new, "new", gw.port))
            wait_for(lambda: load.results and load.results[-1][1] == "new", timeout=5, what="traffic on new")
            time.sleep(0.5)
        assert len(load.results) > 100
        assert load.failures() == []
        assert {u for _, u in load.results} == {"old", "new"}


def test_a_config_envoy_rejects_is_recorded_and_not_resent(api: str, tmp_path: Path) -> None:
    app, squatter = Upstream("app").start(), Upstream("squatter").start()

    def routes(port: int, extra_port: int | None = None) -> str:
        text = listener(port, "      - match: {prefix: /}\n        to: app\n")
        if extra_port is not None:
            text += (
                f"  - name: second\n    port: {extra_port}\n    address: 127.0.0.1\n"
                "    routes:\n      - match: {prefix: /}\n        to: app\n"
            )
        return text + f"services:\n  app: {{endpoints: ['{app.address}']}}\n"

    with stopping(app, squatter), gateway(tmp_path, api, routes) as gw:
        # Valid to controlplane, refused by Envoy: the port is already taken on this host.
        gw.control_plane.edit(routes(gw.port, squatter.port))
        nack = wait_for(lambda: _last_nack(gw.control_plane.get("/api/nodes"), "Listener"), what="LDS NACK")
        assert squatter.address.split(":")[1] in nack["message"] or "bind" in nack["message"], nack
        rejected = gw.envoy.stat("listener_manager.lds.update_rejected")
        time.sleep(1.0)
        assert gw.envoy.stat("listener_manager.lds.update_rejected") == rejected  # never re-sent
        assert gw.get()[1] == "app"  # the last accepted config keeps serving
        gw.control_plane.edit(routes(gw.port))
        time.sleep(0.5)
        assert gw.get()[1] == "app"


def _last_nack(nodes: list[dict[str, object]], kind: str) -> dict[str, object] | None:
    for node in nodes:
        for state in node["types"]:  # type: ignore[attr-defined]
            if state["type_url"].endswith(kind) and state["last_nack"]:
                return dict(state["last_nack"])
    return None


def test_outlier_detection_ejects_a_failing_upstream_and_retries_hide_it(api: str, tmp_path: Path) -> None:
    ups = [Upstream("good-1").start(), Upstream("good-2").start(), Upstream("bad", failing=True).start()]

    def routes(port: int) -> str:
        endpoints = ", ".join(f"'{u.address}'" for u in ups)
        return listener(
            port, "      - match: {prefix: /}\n        to: app\n        retries: {attempts: 2, on: [5xx]}\n"
        ) + (
            f"services:\n  app:\n    endpoints: [{endpoints}]\n"
            "    outlier_detection: {consecutive_5xx: 2, interval: 100ms, base_ejection_time: 30s,"
            " max_ejection_percent: 50}\n"
        )

    with stopping(*ups), gateway(tmp_path, api, routes) as gw:
        results = [gw.get() for _ in range(300)]
        assert [r for r in results if r[0] != 200] == []
        wait_for(lambda: gw.envoy.stat("cluster.app.outlier_detection.ejections_active") == 1, what="ejection")
        assert Counter(r[1] for r in results)["bad"] == 0


def test_health_checks_mark_a_killed_upstream_unhealthy(api: str, tmp_path: Path) -> None:
    a, b = Upstream("a").start(), Upstream("b").start()

    def routes(port: int) -> str:
        return listener(port, "      - match: {prefix: /}\n        to: app\n") + (
            f"services:\n  app:\n    endpoints: ['{a.address}', '{b.address}']\n"
            "    health_check: {http: /healthz, interval: 100ms, timeout: 100ms, unhealthy: 2, healthy: 1,"
            " no_traffic_interval: 100ms}\n"
        )

    with stopping(a, b), gateway(tmp_path, api, routes) as gw:
        wait_for(lambda: gw.envoy.stat("cluster.app.membership_healthy") == 2, what="both healthy")
        a.stop()
        wait_for(
            lambda: f"{a.address}::health_flags::/failed_active_hc" in gw.envoy.admin("/clusters"),
            what="killed upstream marked unhealthy",
        )
        assert gw.envoy.stat("cluster.app.membership_healthy") == 1
        assert set(gw.upstreams_of(20)) == {"b"}


def test_losing_every_primary_moves_traffic_to_the_backup(api: str, tmp_path: Path) -> None:
    p1, p2, backup = Upstream("p1").start(), Upstream("p2").start(), Upstream("backup").start()

    def routes(port: int) -> str:
        return listener(
            port,
            "      - match: {prefix: /}\n        to: app\n"
            "        retries: {attempts: 2, on: [connect-failure, reset]}\n",
        ) + (
            f"services:\n  app:\n    endpoints: ['{p1.address}', '{p2.address}',"
            f" {{address: '{backup.address}', backup: true}}]\n"
            "    health_check: {http: /healthz, interval: 100ms, timeout: 100ms, unhealthy: 1, healthy: 1,"
            " no_traffic_interval: 100ms}\n"
        )

    with stopping(p1, p2, backup), gateway(tmp_path, api, routes) as gw:
        wait_for(lambda: gw.envoy.stat("cluster.app.membership_healthy") == 3, what="all healthy")
        assert set(gw.upstreams_of(20)) == {"p1", "p2"}  # the backup idles while primaries are up
        p1.stop()
        p2.stop()
        # Once health checks have marked both primaries down, priority 1 takes all the traffic.
        wait_for(lambda: gw.envoy.stat("cluster.app.membership_healthy") == 1, what="primaries marked down")
        results = [gw.get() for _ in range(100)]
        wanted = ("health_flags", "cx_connect_fail", "rq_total")
        lines = gw.envoy.admin("/clusters").splitlines()
        hosts = [line for line in lines if line.startswith("app::1") and any(k in line for k in wanted)]
        assert [r for r in results if r[0] != 200] == [], hosts
        assert {r[1] for r in results} == {"backup"}
