"""Real Envoy routes live traffic by what `controlplane serve` sends, over SotW and delta ADS."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e import Upstream, gateway, listener, stopping, wait_for

pytestmark = pytest.mark.envoy


@pytest.fixture(params=["sotw", "delta"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_requests_are_routed_per_the_dsl(api: str, tmp_path: Path) -> None:
    api_v1, canary, web = Upstream("api").start(), Upstream("canary").start(), Upstream("web").start()

    def routes(port: int) -> str:
        return (
            listener(
                port,
                """\
      - match: {prefix: /api, headers: {x-canary: "1"}}
        to: canary
      - match: {prefix: /api, methods: [POST]}
        direct_response: {status: 405, body: read-only}
      - match: {prefix: /api}
        to: api
      - match: {path: /healthz}
        direct_response: {status: 200, body: ok}
      - match: {prefix: /}
        to: web
""",
            )
            + f"""services:
  api: {{endpoints: ['{api_v1.address}']}}
  canary: {{endpoints: ['{canary.address}']}}
  web: {{endpoints: ['{web.address}']}}
"""
        )

    with stopping(api_v1, canary, web), gateway(tmp_path, api, routes, "/api/x") as gw:
        assert gw.get("/api/users")[1] == "api"
        assert gw.get("/api/users", {"x-canary": "1"})[1] == "canary"
        assert gw.get("/api/users", method="POST")[0] == 405
        assert gw.get("/apiary")[1] == "web"  # a prefix matches whole path segments
        assert gw.get("/healthz")[0::2] == (200, "ok")
        assert gw.get("/")[1] == "web"
        nodes = gw.control_plane.get("/api/nodes")
        assert [(n["node_id"], n["api"]) for n in nodes] == [("gw-1", api)]
        acked = {t["type_url"].rsplit(".", 1)[-1]: t["acked_version"] for t in nodes[0]["types"]}
        assert all(acked[k] for k in ("Cluster", "ClusterLoadAssignment", "Listener", "RouteConfiguration")), acked


def test_round_robin_alternates_exactly(api: str, tmp_path: Path) -> None:
    a, b = Upstream("a").start(), Upstream("b").start()

    def routes(port: int) -> str:
        return listener(port, "      - match: {prefix: /}\n        to: app\n") + (
            f"services:\n  app: {{lb: round_robin, endpoints: ['{a.address}', '{b.address}']}}\n"
        )

    with stopping(a, b), gateway(tmp_path, api, routes) as gw:
        seen = gw.upstreams_of(20)
        assert all(seen[i] != seen[i + 1] for i in range(len(seen) - 1)), seen


def test_weighted_split_80_20(api: str, tmp_path: Path) -> None:
    stable, canary = Upstream("stable").start(), Upstream("canary").start()

    def routes(port: int) -> str:
        return listener(
            port, "      - match: {prefix: /}\n        to: [{service: s, weight: 80}, {service: c, weight: 20}]\n"
        ) + (f"services:\n  s: {{endpoints: ['{stable.address}']}}\n  c: {{endpoints: ['{canary.address}']}}\n")

    with stopping(stable, canary), gateway(tmp_path, api, routes) as gw:
        counts = Counter(gw.upstreams_of(1000))
        assert abs(counts["canary"] / 1000 - 0.20) <= 0.05, counts


def test_least_request_prefers_the_idle_upstream(api: str, tmp_path: Path) -> None:
    slow, fast = Upstream("slow", delay=0.3).start(), Upstream("fast").start()

    def routes(port: int) -> str:
        return listener(port, "      - match: {prefix: /}\n        to: app\n") + (
            f"services:\n  app: {{lb: least_request, lb_options: {{choices: 8}}, "
            f"endpoints: ['{slow.address}', '{fast.address}']}}\n"
        )

    with stopping(slow, fast), gateway(tmp_path, api, routes) as gw:
        seen: list[str] = []
        deadline = time.monotonic() + 2.0

        def client() -> None:
            while time.monotonic() < deadline:
                seen.append(gw.get()[1])

        workers = [threading.Thread(target=client) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=30)
        counts = Counter(seen)
        # While the slow endpoint holds a request, every pick sees it busier than the idle one;
        # round robin would send it every other request and so about half of the traffic.
        assert counts["fast"] >= 0.9 * len(seen), counts


def test_ring_hash_keeps_a_user_on_one_upstream(api: str, tmp_path: Path) -> None:
    ups = [Upstream(f"u{i}").start() for i in range(3)]

    def routes(port: int) -> str:
        endpoints = ", ".join(f"'{u.address}'" for u in ups)
        return listener(port, "      - match: {prefix: /}\n        to: app\n") + (
            f"services:\n  app: {{lb: ring_hash, hash_on: {{header: x-user}}, endpoints: [{endpoints}]}}\n"
        )

    with stopping(*ups), gateway(tmp_path, api, routes) as gw:
        homes = {}
        for user in range(20):
            seen = set(gw.upstreams_of(10, headers={"x-user": f"user-{user}"}))
            assert len(seen) == 1, (user, seen)
            homes[user] = seen.pop()
        assert len(set(homes.values())) >= 2, homes


def test_an_edit_to_the_file_changes_routing(api: str, tmp_path: Path) -> None:
    one, two = Upstream("one").start(), Upstream("two").start()

    def routes_to(target: str) -> object:
        def routes(port: int) -> str:
            return listener(port, f"      - match: {{prefix: /}}\n        to: {target}\n") + (
                f"services:\n  one: {{endpoints: ['{one.address}']}}\n  two: {{endpoints: ['{two.address}']}}\n"
            )

        return routes

    with stopping(one, two), gateway(tmp_path, api, routes_to("one")) as gw:  # type: ignore[arg-type]
        assert gw.get()[1] == "one"
        gw.control_plane.edit(routes_to("two")(gw.port))  # type: ignore[operator]
        wait_for(lambda: gw.get()[1] == "two", timeout=5, what="the edit to reach Envoy")
        good = gw.control_plane.get("/api/config")["version"]
        gw.control_plane.edit(routes_to("three")(gw.port))  # type: ignore[operator]
        problems = wait_for(lambda: gw.control_plane.get("/api/config")["problems"], what="the error reported")
        assert problems == [f"{gw.control_plane.routes_file}:7:13: listeners[0].routes[0].to: unknown service 'three'"]
        assert gw.control_plane.get("/api/config")["version"] == good
        assert gw.get()[1] == "two"  # the last good config keeps serving
        assert "unknown service 'three'" in gw.control_plane.log.read_text()
