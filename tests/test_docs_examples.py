"""Every YAML example in the README and docs/ is real: route files, RouteTables and node authorization rules."""

from __future__ import annotations

import re

import pytest
import yaml

from controlplane.dsl import load_texts
from controlplane.node_rules import parse_node_authorization
from controlplane.sources.kubernetes.route_objects import KIND, route_object
from tests.conftest import ROOT

BLOCK = re.compile(r"```ya?ml\n(.*?)```", re.S)
DSL_KEYS = {"listeners", "services", "alerts"}


def examples() -> list[tuple[str, str]]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 2
            found.append((f"{path.relative_to(ROOT)}:{line}", match.group(1)))
    return found


def test_the_docs_have_examples() -> None:
    assert len(examples()) >= 6


@pytest.mark.parametrize(("where", "text"), examples(), ids=[w for w, _ in examples()])
def test_example_is_valid(where: str, text: str) -> None:
    data = yaml.safe_load(text)
    assert isinstance(data, dict), f"{where}: an example is a mapping"
    if set(data) <= DSL_KEYS:
        load_texts([(where, text)])  # raises ConfigError with every problem
    elif set(data) == {"rules"}:
        parse_node_authorization(text, where)  # --node-authorization FILE; raises ConfigError
    elif data.get("kind") == KIND:
        obj = route_object(data)
        load_texts([(obj.source, obj.text)], namespaces={obj.source: obj.namespace})
    else:
        assert {"apiVersion", "kind"} <= set(data), f"{where}: neither a route file nor a Kubernetes object"


def test_a_broken_example_would_fail() -> None:
    broken = "listeners:\n  - name: x\n    port: 99999\n"
    with pytest.raises(Exception, match="port"):
        test_example_is_valid("broken.md:1", broken)
