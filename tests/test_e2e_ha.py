"""High availability with real Envoy: replicas, restarts, every request's outcome recorded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e import (
    ControlPlane,
    Envoy,
    Load,
    TcpProxy,
    Upstream,
    free_port,
    listener,
    request,
    stopping,
    wait_for,
)
from tests.synthetic import Fleet

pytestmark = pytest.mark.envoy

CHURN_STATS = (
    "listener_manager.listener_modified",
    "listener_manager.listener_added",
    "listener_manager.listener_removed",
    "cluster_manager.cluster_modified",
    "cluster_manager.cluster_added",
    "cluster_manager.cluster_removed",
)


@pytest.fixture(params=["sotw", "delta"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def routes(port: int, ups: list[Upstream]) -> str:
    endpoints = ", ".join(f"'{u.address}'" for u in ups)
    return listener(
        port,
        "      - match: {prefix: /}\n        to: app\n"
        "        retries: {attempts: 2, on: [connect-failure, reset, 5xx]}\n",
    ) + (f"services:\n  app: {{endpoints: [{endpoints}], health_check: {{http: /healthz, interval: 1s}}}}\n")


def test_killing_the_connected_replica_loses_nothing_and_changes_nothing(api: str, tmp_path: Path) -> None:
    ups = [Upstream(f"u{i}").start() for i in range(3)]
    port = free_port()
    replicas = [ControlPlane(routes(port, ups), tmp_path, name=f"cp{i}").start() for i in range(2)]
    envoy = Envoy(tmp_path, [cp.xds_port for cp in replicas], "gw-1", api).start()
    with stopping(*ups, *replicas, envoy):
        envoy.wait_listening(port)
        wait_for(lambda: request(port)[0] == 200, what="traffic flowing")
        connected = wait_for(lambda: next((cp for cp in replicas if cp.nodes()), None), what="a stream")
        survivor = next(cp for cp in replicas if cp is not connected)
        before = {stat: envoy.stat(stat) for stat in CHURN_STATS}
        with Load(port, rate=200) as load:
            time.sleep(1.0)
            killed_at = time.monotonic()
            connected.kill()
            wait_for(survivor.nodes, timeout=5, what="Envoy on the other replica")
            reconnect_s = time.monotonic() - killed_at
            time.sleep(1.0)
        assert load.failures() == []
        assert len(load.results) >= 300
        print(f"reconnect {reconnect_s * 1000:.0f} ms, {len(load.results)} requests, 0 failed")
        assert reconnect_s < 2.0, reconnect_s
        assert {stat: envoy.stat(stat) for stat in CHURN_STATS} == before  # nothing re-applied
        states = survivor.nodes()[0]["types"]
        assert all(s["nonce"] == "" for s in states), states  # the survivor had nothing to send


def test_a_restart_without_sources_serves_the_checkpoint(api: str, tmp_path: Path) -> None:
    ups = [Upstream(f"u{i}").start() for i in range(2)]
    port = free_port()
    state = tmp_path / "state"
    cp = ControlPlane(routes(port, ups), tmp_path, extra_args=("--state-dir", str(state))).start()
    envoy = Envoy(tmp_path, cp.xds_port, "gw-1", api).start()
    with stopping(*ups, cp, envoy):
        envoy.wait_listening(port)
        wait_for(lambda: request(port)[0] == 200, what="traffic flowing")
        version = cp.get("/api/config")["version"]
        before = {stat: envoy.stat(stat) for stat in CHURN_STATS}
        with Load(port, rate=200) as load:
            cp.kill()
            cp.routes_file.unlink()  # the source is gone when the control plane comes back
            cp.start()
            config = cp.get("/api/config")
            wait_for(cp.nodes, timeout=5, what="Envoy reconnected")
            time.sleep(0.5)
        assert (config["serving"], config["version"]) == ("checkpoint", version)
        assert config["problems"]  # the missing file is reported
        assert load.failures() == []
        assert {stat: envoy.stat(stat) for stat in CHURN_STATS} == before
        newcomer = Envoy(tmp_path, cp.xds_port, "gw-2", api).start()  # a fresh Envoy gets all of it
        with stopping(newcomer):
            wait_for(lambda: newcomer.stat("listener_manager.total_listeners_active") == 1, what="full config")
            assert newcomer.stat("cluster_manager.active_clusters") == envoy.stat("cluster_manager.active_clusters")


def test_a_damaged_checkpoint_is_never_served(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "checkpoint.json").write_text('{"sha256": "0", "format": 1, "groups": {}}', encoding="utf-8")
    cp = ControlPlane("listeners: [oops", tmp_path, extra_args=("--state-dir", str(state)))
    with stopping(cp):
        cp.start(ready=False)
        config = wait_for(lambda: cp.get("/api/config")["problems"] and cp.get("/api/config"))
        assert any("checkpoint ignored" in p and "checksum mismatch" in p for p in config["problems"])
        assert config["serving"] == ""


def test_the_only_control_plane_down_for_30s_loses_nothing(tmp_path: Path) -> None:
    """Envoy keeps its last config while the control plane is gone, and re-syncs without churn."""
    ups = [Upstream(f"u{i}").start() for i in range(2)]
    port = free_port()
    cp = ControlPlane(routes(port, ups), tmp_path).start()
    envoy = Envoy(tmp_path, cp.xds_port, "gw-1", "delta").start()
    with stopping(*ups, cp, envoy):
        envoy.wait_listening(port)
        wait_for(lambda: request(port)[0] == 200, what="traffic flowing")
        before = {stat: envoy.stat(stat) for stat in (*CHURN_STATS, "listener_manager.total_listeners_draining")}
        with Load(port, rate=200) as load:
            cp.kill()
            time.sleep(30)
            down = len(load.results)
            cp.start()
            wait_for(cp.nodes, timeout=10, what="Envoy back on the control plane")
            time.sleep(1.0)
        assert load.failures() == []
        assert down >= 30 * 150  # traffic really flowed while the control plane was down
        after = {stat: envoy.stat(stat) for stat in (*CHURN_STATS, "listener_manager.total_listeners_draining")}
        assert after == before


def test_killing_one_of_three_upstreams_under_load_is_invisible_with_retries(tmp_path: Path) -> None:
    ups = [Upstream(f"u{i}").start() for i in range(3)]
    port = free_port()
    cp = ControlPlane(routes(port, ups), tmp_path).start()
    envoy = Envoy(tmp_path, cp.xds_port, "gw-1", "sotw").start()
    with stopping(*ups, cp, envoy):
        envoy.wait_listening(port)
        wait_for(lambda: request(port)[0] == 200, what="traffic flowing")
        with Load(port, rate=200) as load:
            time.sleep(1.0)
            ups[0].stop()  # like kill -9: the listener and every open connection go at once
            time.sleep(2.0)
        assert load.failures() == []
        after = [u for _, u in load.results[len(load.results) // 2 :]]
        assert "u0" not in after[-100:]
        assert len(load.results) >= 500


def test_a_silent_partition_is_detected_and_envoy_moves_to_another_replica(tmp_path: Path) -> None:
    ups = [Upstream(f"u{i}").start() for i in range(2)]
    port = free_port()
    behind = ControlPlane(routes(port, ups), tmp_path, name="behind-proxy").start()
    proxy = TcpProxy(behind.xds_port).start()
    other = ControlPlane(routes(port, ups), tmp_path, name="other")
    keepalive = ("--keepalive-interval", "2s", "--keepalive-timeout", "1s")
    envoy = Envoy(tmp_path, [proxy.port, other.xds_port], "gw-1", "sotw", bootstrap_args=keepalive).start()
    with stopping(*ups, behind, proxy, other, envoy):
        envoy.wait_listening(port)
        wait_for(behind.nodes, what="Envoy connected through the proxy")  # `other` is not up yet
        other.start()
        before = {stat: envoy.stat(stat) for stat in CHURN_STATS}
        with Load(port, rate=200) as load:
            partitioned_at = time.monotonic()
            proxy.blackhole()
            wait_for(other.nodes, timeout=15, what="Envoy on the other replica")
            moved_s = time.monotonic() - partitioned_at
            time.sleep(0.5)
        print(f"partition detected and Envoy moved in {moved_s:.2f}s; {len(load.results)} requests, 0 failed")
        assert load.failures() == []
        assert moved_s < 6.0, moved_s  # ping interval + timeout + reconnect back-off, with margin
        assert {stat: envoy.stat(stat) for stat in CHURN_STATS} == before
        other.edit(routes(port, ups[:1]))  # control is back: a change made now reaches Envoy
        try:
            wait_for(lambda: {request(port)[1] for _ in range(6)} == {"u0"}, what="the change applied")
        except AssertionError:
            raise AssertionError(([request(port)[:2] for _ in range(4)], envoy.admin("/clusters"))) from None


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_500_synthetic_clients_and_3_envoys_reconnecting_at_once_all_converge(tmp_path: Path) -> None:
    ups = [Upstream(f"u{i}").start() for i in range(2)]
    port = free_port()
    cp = ControlPlane(routes(port, ups), tmp_path, extra_args=("--log-level", "info")).start()
    envoys = [Envoy(tmp_path, cp.xds_port, f"gw-{i}", "sotw").start() for i in range(3)]
    fleet = Fleet(cp.xds_port, 500).start()
    with stopping(*ups, cp, *envoys, fleet):
        wait_for(lambda: len(fleet.synced) == 500, timeout=60, what="the fleet in sync")
        wait_for(lambda: len(cp.nodes()) == 503, timeout=30, what="503 streams")
        cp.kill()
        cp.start()  # everyone reconnects at once
        restarted = time.monotonic()
        wait_for(lambda: _real_envoys_synced(cp, 3), timeout=10, what="real Envoys back in sync", every=0.05)
        real_s = time.monotonic() - restarted
        wait_for(lambda: fleet.resynced(2), timeout=60, what="the fleet back in sync on new streams")
        all_s = time.monotonic() - restarted
        memory = rss_mb(cp.process.pid)  # type: ignore[union-attr]
        print(
            f"real Envoys in sync {real_s:.2f}s, all 503 in {all_s:.2f}s after restart; control plane {memory:.0f} MB"
        )
        assert real_s < 2.0
        assert memory < 400
        assert request(port)[0] == 200


def _real_envoys_synced(cp: ControlPlane, count: int) -> bool:
    version = cp.get("/api/config")["version"]
    real = [n for n in cp.nodes() if n["node_id"].startswith("gw-")]
    return (
        version != ""
        and len(real) == count
        and all(t["acked_version"] and not t["in_flight"] for n in real for t in n["types"])
    )


def test_a_rejected_listener_is_quarantined_while_the_rest_of_the_change_goes_out(api: str, tmp_path: Path) -> None:
    app, squatter = Upstream("app").start(), Upstream("squatter").start()
    port, free = free_port(), free_port()

    def config(second_port: int | None, probe: bool) -> str:
        extra = "      - match: {path: /probe}\n        direct_response: {status: 200, body: new}\n" if probe else ""
        text = listener(port, extra + "      - match: {prefix: /}\n        to: app\n")
        if second_port is not None:
            text += (
                f"  - name: second\n    port: {second_port}\n    address: 127.0.0.1\n"
                "    routes:\n      - match: {prefix: /}\n        to: app\n"
            )
        return text + f"services:\n  app: {{endpoints: ['{app.address}']}}\n"

    cp = ControlPlane(config(None, probe=False), tmp_path).start()
    envoy = Envoy(tmp_path, cp.xds_port, "gw-1", api).start()
    with stopping(app, squatter, cp, envoy):
        envoy.wait_listening(port)
        wait_for(lambda: request(port)[0] == 200, what="traffic flowing")
        with Load(port, rate=200) as load:
            cp.edit(config(squatter.port, probe=True))  # one edit: a listener Envoy refuses, and a new route
            held = wait_for(lambda: cp.get("/api/config")["quarantined"], what="the listener quarantined")
            wait_for(lambda: request(port, "/probe")[0::2] == (200, "new"), what="the rest of the change")
        assert load.failures() == []
        assert [(q["type"], q["name"], q["kept"]) for q in held] == [("Listener", "second", "not sent")]
        assert held[0]["source"].endswith("routes.yaml:10")  # where listener "second" starts
        assert str(squatter.port) in held[0]["message"] or "bind" in held[0]["message"]
        cp.edit(config(free, probe=True))  # the fix lifts the quarantine
        envoy.wait_listening(free)
        wait_for(lambda: cp.get("/api/config")["quarantined"] == [], what="quarantine lifted")
        assert request(free)[1] == "app"
