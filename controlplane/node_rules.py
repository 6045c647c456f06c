"""`--node-authorization FILE`: which client certificate may claim which Envoy node.

Operator configuration, read once at start; never part of the route DSL, because route tables
can come from namespaced Kubernetes objects and a namespace must not grant identities.

    rules:
      - identity: spiffe://cluster.local/ns/edge/sa/gateway   # exact, or a prefix ending in *
        node_clusters: [edge]                                   # node.cluster values it may claim
        node_ids: ["gateway-*"]                                 # optional globs on node.id

Every problem is reported as `FILE:LINE:COL: field: message`, all of them at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controlplane.dsl.yamltext import Located, format_path, read_yaml
from controlplane.dsl.yamltext import Path as YamlPath
from controlplane.errors import ConfigError, Problem
from controlplane.xds.authorization import NodeAuthorization, NodeRule

RULE_FIELDS = ("identity", "node_clusters", "node_ids")


def load_node_authorization(path: Path) -> NodeAuthorization:
    """The rules in `path`; raises ConfigError with every problem found."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(str(path), 0, 0, "", f"cannot read: {exc}")]) from None
    return parse_node_authorization(text, str(path))


def parse_node_authorization(text: str, source: str) -> NodeAuthorization:
    """Rules from YAML text (`source` names it in problems); raises ConfigError."""
    doc = read_yaml(text, source)
    if doc.problems:
        raise ConfigError(doc.problems)
    reader = _Reader(doc, source)
    rules = reader.rules()
    if reader.problems:
        raise ConfigError(reader.problems)
    return NodeAuthorization(rules=tuple(rules))


class _Reader:
    """Checks one parsed document, collecting problems with their positions."""

    def __init__(self, doc: Located, source: str) -> None:
        self.doc, self.source = doc, source
        self.problems: list[Problem] = []

    def problem(self, path: YamlPath, message: str, *, key: bool = False) -> None:
        line, column = self.doc.position(path, key=key)
        self.problems.append(Problem(self.source, line, column, format_path(path), message))

    def rules(self) -> list[NodeRule]:
        value = self.doc.value
        if not isinstance(value, dict):
            self.problem((), "expected a mapping with a `rules` list")
            return []
        for key in sorted(value.keys() - {"rules"}):
            self.problem((key,), "unknown field (expected: rules)", key=True)
        items = value.get("rules")
        if not isinstance(items, list) or not items:
            self.problem(("rules",), "expected a non-empty list of rules (for none, leave --node-authorization out)")
            return []
        found = [self.rule(item, ("rules", i)) for i, item in enumerate(items)]
        return [rule for rule in found if rule is not None]

    def rule(self, item: Any, path: YamlPath) -> NodeRule | None:
        if not isinstance(item, dict):
            self.problem(path, "expected a mapping with identity and node_clusters")
            return None
        for key in sorted(item.keys() - set(RULE_FIELDS)):
            self.problem((*path, key), f"unknown field (expected: {', '.join(RULE_FIELDS)})", key=True)
        identity = self.identity(item.get("identity"), (*path, "identity"))
        clusters = self.names(item.get("node_clusters"), (*path, "node_clusters"), required=True)
        node_ids = self.names(item.get("node_ids"), (*path, "node_ids"), required=False)
        if identity is None or clusters is None or node_ids is None:
            return None
        line, _ = self.doc.position(path)
        return NodeRule(identity, clusters, node_ids, origin=f"{self.source}:{line}")

    def identity(self, value: Any, path: YamlPath) -> str | None:
        if value is None:
            self.problem(path[:-1], "identity is required (a spiffe:// URI or a certificate common name)")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(path, "expected a spiffe:// URI or a common name")
            return None
        if "*" in value[:-1]:
            self.problem(path, "`*` is allowed only at the end (a prefix match)")
            return None
        return value

    def names(self, value: Any, path: YamlPath, *, required: bool) -> tuple[str, ...] | None:
        if value is None and not required:
            return ()
        if value is None:
            self.problem(path[:-1], f"{path[-1]} is required: the node clusters this identity may claim")
            return None
        if not isinstance(value, list) or not value:
            self.problem(path, f"expected a non-empty list, e.g. [{'edge' if required else 'gateway-*'}]")
            return None
        bad = [i for i, name in enumerate(value) if not isinstance(name, str) or not name]
        for i in bad:
            self.problem((*path, i), "expected a non-empty string")
        return None if bad else tuple(value)
