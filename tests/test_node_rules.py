"""Node authorization rules: who may claim which node, and the errors of a rules file (FILE:LINE:COL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from controlplane.errors import ConfigError
from controlplane.node_rules import load_node_authorization, parse_node_authorization
from controlplane.xds.authorization import NodeAuthorization, NodeRule, PeerIdentity, identity_from_pem
from tests.certs import Authority

GATEWAY = "spiffe://cluster.local/ns/edge/sa/gateway"
EDGE_ANY = NodeRule("spiffe://cluster.local/ns/edge/sa/*", ("edge",))
GATEWAY_IDS = NodeRule(GATEWAY, ("edge", "edge-canary"), ("gateway-*",))
OPS = NodeRule("ops-tool", ("ops",))
EVERYONE = NodeRule("*", ("public",))


def spiffe(*names: str) -> PeerIdentity:
    return PeerIdentity(names)


@pytest.mark.parametrize(
    ("rules", "identity", "node_id", "cluster", "refused"),
    [
        pytest.param((EDGE_ANY,), spiffe(GATEWAY), "gw-1", "edge", None, id="prefix-wildcard"),
        pytest.param(
            (EDGE_ANY,),
            spiffe(GATEWAY),
            "gw-1",
            "payments",
            f"{GATEWAY} may not claim node cluster payments",
            id="other-cluster",
        ),
        pytest.param(
            (EDGE_ANY,),
            spiffe("spiffe://cluster.local/ns/edgy/sa/x"),
            "gw-1",
            "edge",
            "may not claim node cluster edge",
            id="prefix-is-not-a-substring",
        ),
        pytest.param(
            (EDGE_ANY,),
            spiffe("spiffe://cluster.local/ns/edge/sa"),
            "gw-1",
            "edge",
            "may not claim",
            id="prefix-needs-the-slash",
        ),
        pytest.param((GATEWAY_IDS,), spiffe(GATEWAY), "gateway-7", "edge-canary", None, id="exact-and-node-id-glob"),
        pytest.param(
            (GATEWAY_IDS,),
            spiffe(GATEWAY),
            "laptop",
            "edge",
            f"{GATEWAY} may not claim node id 'laptop' in node cluster edge",
            id="node-id-outside-glob",
        ),
        pytest.param(
            (GATEWAY_IDS,),
            spiffe(GATEWAY + "-2"),
            "gateway-1",
            "edge",
            "may not claim node cluster edge",
            id="exact-is-exact",
        ),
        pytest.param((OPS,), spiffe("ops-tool"), "anything", "ops", None, id="common-name"),
        pytest.param((OPS,), spiffe("OPS-TOOL"), "anything", "ops", "may not claim", id="case-sensitive"),
        pytest.param(
            (EDGE_ANY,), spiffe("spiffe://other/x", GATEWAY), "gw-1", "edge", None, id="any-of-several-spiffe-ids"
        ),
        pytest.param((EVERYONE,), spiffe("whoever"), "x", "public", None, id="star-alone-matches-any-identity"),
        pytest.param((EVERYONE,), spiffe(), "x", "public", "may not claim", id="star-needs-some-name"),
        pytest.param(
            (EDGE_ANY,),
            spiffe(),
            "x",
            "edge",
            "a certificate without SPIFFE ID or common name may not claim",
            id="no-name",
        ),
        pytest.param(
            (EDGE_ANY, OPS),
            spiffe("ops-tool"),
            "x",
            "edge",
            "ops-tool may not claim node cluster edge",
            id="rules-do-not-mix",
        ),
        pytest.param(None, spiffe(GATEWAY), "x", "payments", None, id="no-rules-authorization-off"),
        pytest.param((EDGE_ANY,), None, "x", "payments", None, id="plaintext-has-no-identity-to-check"),
    ],
)
def test_who_may_claim_which_node(
    rules: tuple[NodeRule, ...] | None, identity: PeerIdentity | None, node_id: str, cluster: str, refused: str | None
) -> None:
    reason = NodeAuthorization(rules).refusal(identity, node_id, cluster)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason


def test_a_query_without_node_needs_an_identity_some_rule_names() -> None:
    authorization = NodeAuthorization((EDGE_ANY,))
    assert authorization.refusal_without_node(spiffe(GATEWAY)) is None
    assert authorization.refusal_without_node(spiffe("stranger")) == "stranger matches no node authorization rule"
    assert NodeAuthorization().refusal_without_node(spiffe("stranger")) is None


def test_the_identity_is_the_spiffe_ids_else_the_common_name(tmp_path: Path) -> None:
    ca = Authority(tmp_path, "ca")
    both = ca.client("both", spiffe=GATEWAY, cn="gateway-cn")
    cn_only = ca.client("cn", cn="gateway-cn")
    web_uri = ca.issue("web", [x509.UniformResourceIdentifier("https://x")], ExtendedKeyUsageOID.CLIENT_AUTH, cn="w")
    nothing = ca.issue("nothing", [], ExtendedKeyUsageOID.CLIENT_AUTH)
    assert identity_from_pem(both.cert_pem) == spiffe(GATEWAY)
    assert identity_from_pem(cn_only.cert_pem) == spiffe("gateway-cn")
    assert identity_from_pem(web_uri.cert_pem) == spiffe("w")  # only spiffe:// URIs are identities
    assert identity_from_pem(nothing.cert_pem) == spiffe()
    assert str(spiffe()) == "a certificate without SPIFFE ID or common name"
    assert identity_from_pem(b"-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n") == spiffe()


VALID = """\
rules:
  - identity: spiffe://cluster.local/ns/edge/sa/*
    node_clusters: [edge]
  - identity: ops-tool
    node_clusters: [ops, ops-canary]
    node_ids: ["ops-*"]
"""


def test_a_valid_file_gives_its_rules_in_order() -> None:
    authorization = parse_node_authorization(VALID, "rules.yaml")
    assert authorization.rules == (
        NodeRule("spiffe://cluster.local/ns/edge/sa/*", ("edge",), (), origin="rules.yaml:2"),
        NodeRule("ops-tool", ("ops", "ops-canary"), ("ops-*",), origin="rules.yaml:4"),
    )


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        pytest.param("- a\n", ["f.yaml:1:1: expected a mapping with a `rules` list"], id="not-a-mapping"),
        pytest.param(
            "",
            ["f.yaml:1:1: rules: expected a non-empty list of rules (for none, leave --node-authorization out)"],
            id="empty-file",
        ),
        pytest.param(
            "rules: []\n",
            ["f.yaml:1:8: rules: expected a non-empty list of rules (for none, leave --node-authorization out)"],
            id="no-rules",
        ),
        pytest.param(
            "rule:\n  - identity: x\n",
            [
                "f.yaml:1:1: rule: unknown field (expected: rules)",
                "f.yaml:1:1: rules: expected a non-empty list of rules (for none, leave --node-authorization out)",
            ],
            id="misspelt-rules",
        ),
        pytest.param(
            "rules:\n  - just-a-string\n",
            ["f.yaml:2:5: rules[0]: expected a mapping with identity and node_clusters"],
            id="rule-not-a-mapping",
        ),
        pytest.param(
            "rules:\n  - identity: x\n    node_cluster: [edge]\n",
            [
                "f.yaml:2:5: rules[0]: node_clusters is required: the node clusters this identity may claim",
                "f.yaml:3:5: rules[0].node_cluster: unknown field (expected: identity, node_clusters, node_ids)",
            ],
            id="misspelt-field",
        ),
        pytest.param(
            "rules:\n  - node_clusters: [edge]\n",
            ["f.yaml:2:5: rules[0]: identity is required (a spiffe:// URI or a certificate common name)"],
            id="no-identity",
        ),
        pytest.param(
            "rules:\n  - identity: spiffe://c/ns/*/sa/gw\n    node_clusters: [edge]\n",
            ["f.yaml:2:15: rules[0].identity: `*` is allowed only at the end (a prefix match)"],
            id="inner-wildcard",
        ),
        pytest.param(
            "rules:\n  - identity: 42\n    node_clusters: [edge]\n",
            ["f.yaml:2:15: rules[0].identity: expected a spiffe:// URI or a common name"],
            id="identity-not-a-string",
        ),
        pytest.param(
            "rules:\n  - identity: x\n    node_clusters: edge\n",
            ["f.yaml:3:20: rules[0].node_clusters: expected a non-empty list, e.g. [edge]"],
            id="clusters-not-a-list",
        ),
        pytest.param(
            "rules:\n  - identity: x\n    node_clusters: [edge, 7, '']\n",
            [
                "f.yaml:3:27: rules[0].node_clusters[1]: expected a non-empty string",
                "f.yaml:3:30: rules[0].node_clusters[2]: expected a non-empty string",
            ],
            id="bad-cluster-names",
        ),
        pytest.param(
            "rules:\n  - identity: x\n    node_clusters: [edge]\n    node_ids: []\n",
            ["f.yaml:4:15: rules[0].node_ids: expected a non-empty list, e.g. [gateway-*]"],
            id="empty-node-ids",
        ),
        pytest.param(
            "rules:\n  - identity: x\n    identity: y\n    node_clusters: [edge]\n",
            ["f.yaml:3:5: rules[0].identity: duplicate key 'identity'"],
            id="duplicate-key",
        ),
        pytest.param(
            "rules:\n  - identity: [x\n",
            ["f.yaml:3:1: YAML syntax error: expected ',' or ']', but got '<stream end>'"],
            id="yaml-syntax",
        ),
        pytest.param(
            "rules:\n  - identity: a*b\n    node_clusters: [edge]\n  - identity: ok\n",
            [
                "f.yaml:2:15: rules[0].identity: `*` is allowed only at the end (a prefix match)",
                "f.yaml:4:5: rules[1]: node_clusters is required: the node clusters this identity may claim",
            ],
            id="every-problem-at-once",
        ),
    ],
)
def test_every_mistake_is_reported_with_its_position(text: str, problems: list[str]) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_node_authorization(text, "f.yaml")
    assert [str(p) for p in raised.value.problems] == problems


def test_a_missing_file_is_reported_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml:0:0: cannot read"):
        load_node_authorization(tmp_path / "missing.yaml")


def test_a_file_on_disk_is_read(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(VALID, encoding="utf-8")
    assert load_node_authorization(path).enabled
