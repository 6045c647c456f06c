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


def dump(data: Any, output: str) -> str:
    """`yaml` or `json` text."""
    if output == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)
