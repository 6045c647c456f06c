"""Real Envoys over mTLS to `controlplane serve --tls-cert ... --node-authorization ...`.

One Envoy claims the node cluster its certificate allows: it is served, ACKs, routes traffic and
its stats pushes (same cluster, same mTLS) are taken. Another, with the same certificate, claims
another cluster: it is refused and gets nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.certs import GATEWAY_ID, make_pki
from tests.e2e import ControlPlane, Envoy, Upstream, free_port, listener, request, stopping, wait_for

pytestmark = pytest.mark.envoy

RULES = "rules:\n  - identity: spiffe://cluster.local/ns/edge/sa/*\n    node_clusters: [edge]\n"


def test_envoy_over_mtls_is_served_and_a_wrong_claim_gets_nothing(tmp_path: Path) -> None:
    """SotW only: delta differs above the transport, and its refusal is tested in process (test_xds_tls.py)."""
    api = "sotw"
    pki = make_pki(tmp_path / "pki")
    rules = tmp_path / "node-authorization.yaml"
    rules.write_text(RULES, encoding="utf-8")
    app, port = Upstream("app").start(), free_port()
    routes = listener(port, "      - match: {prefix: /}\n        to: app\n") + (
        f"services:\n  app: {{endpoints: ['{app.address}']}}\n"
    )
    server = ("--tls-cert", str(pki.server.cert_path), "--tls-key", str(pki.server.key_path))
    trust = ("--client-ca", str(pki.ca.path), "--node-authorization", str(rules))
    control_plane = ControlPlane(routes, tmp_path, extra_args=(*server, *trust))
    client = ("--tls-cert", str(pki.gateway.cert_path), "--tls-key", str(pki.gateway.key_path))
    tls = (*client, "--server-ca", str(pki.ca.path), "--stats-interval", "1s")
    good = Envoy(tmp_path, control_plane.xds_port, "gw-1", api, bootstrap_args=tls)
    wrong = Envoy(tmp_path, control_plane.xds_port, "gw-2", api, node_cluster="payments", bootstrap_args=tls)
    with stopping(app, control_plane.start(), good.start(), wrong.start()):
        good.wait_listening(port)
        wait_for(lambda: request(port)[1] == "app", what="a request routed over the mTLS-served config")
        wait_for(lambda: "node=gw-2 cluster=payments" in control_plane.log.read_text(), what="the refusal logged")
        [node] = control_plane.get("/api/nodes")
        assert (node["node_id"], node["identity"]) == ("gw-1", GATEWAY_ID)
        assert all(t["acked_version"] for t in node["types"]), node["types"]
        assert control_plane.get("/api/config")["xds_security"] == {
            "transport": "mTLS",
            "node_authorization": "on",
            "rules": 1,
        }
        refusal = next(line for line in control_plane.log.read_text().splitlines() if "node=gw-2" in line)
        assert f"identity={GATEWAY_ID}" in refusal and "may not claim node cluster payments" in refusal
        assert wrong.stat("cluster_manager.cds.update_success") == 0
        assert wrong.admin("/listeners?format=json").count('"name"') == 0
        wait_for(lambda: services_traffic(control_plane)["app"] > 0, what="stats pushed over mTLS")


def services_traffic(control_plane: ControlPlane) -> dict[str, int]:
    """Requests per service that the Envoys' stats pushes reported (last minute)."""
    return {s["name"]: s["traffic"]["requests"] for s in control_plane.get("/api/services")}
