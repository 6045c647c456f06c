"""Protobufs -> plain data with Envoy's own field names, for people and golden files."""

from __future__ import annotations

import json
from typing import Any

import yaml
from google.protobuf import json_format

from controlplane.translate import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, Resources

TYPE_KEYS = {
    CLUSTER_TYPE: "clusters",
    ENDPOINT_TYPE: "endpoints",
    LISTENER_TYPE: "listeners",
    ROUTE_TYPE: "routes",
}
"""Short names used in rendered output and golden file names."""


def message_to_data(message: Any) -> dict[str, Any]:
    """A protobuf as Envoy's JSON (snake_case field names, `@type` on every Any)."""
    text = json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None)
    data: dict[str, Any] = json.loads(text)
    return data


def resources_to_data(resources: Resources) -> dict[str, list[dict[str, Any]]]:
    """{"clusters": [...], "endpoints": [...], "listeners": [...], "routes": [...]}."""
    return {TYPE_KEYS[type_url]: [message_to_data(r) for r in items] for type_url, items in resources.items()}


YAML11_BOOLEANS_PYYAML_LEAVES_BARE = frozenset({"y", "Y", "n", "N"})
"""Envoy reads YAML with yaml-cpp, which takes `y` and `n` as booleans (YAML 1.1); PyYAML quotes
`yes`, `no`, `on`, `off` but not these, so a node id `n` would reach Envoy as `false`."""


class _EnvoySafeDumper(yaml.SafeDumper):
    """SafeDumper that also quotes the strings yaml-cpp would read as something else."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "'" if value in YAML11_BOOLEANS_PYYAML_LEAVES_BARE else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_EnvoySafeDumper.add_representer(str, _represent_str)


def dump(data: Any, output: str) -> str:
    """`yaml` or `json` text; the YAML reads back the same in PyYAML and in Envoy's yaml-cpp."""
    if output == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.dump(data, Dumper=_EnvoySafeDumper, sort_keys=False, default_flow_style=False, width=100)
