"""RouteTable objects: the route DSL as Kubernetes objects, and the status written back to them.

Each object's `spec` is a route file. It is rendered as YAML and validated with the files, so an
object gets exactly the errors `controlplane validate` prints: `RouteTable NS/NAME:LINE:COL:
field: message`, where the line and column are those of the spec rendered as YAML (block style,
keys in the object's order) and the field path is exact. Pure functions: no client here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from controlplane.errors import Problem
from controlplane.sources.kubernetes.client import JSON

GROUP = "controlplane.dev"
VERSION = "v1alpha1"
PLURAL = "routetables"
KIND = "RouteTable"
CONDITION = "Accepted"
MAX_MESSAGE = 4000
"""Condition messages stay well under etcd's object size limit."""


@dataclass(frozen=True, order=True)
class RouteObject:
    """One RouteTable as the pipeline needs it: where it is, and its spec as route-file text."""

    source: str
    """`RouteTable NAMESPACE/NAME`: the name its problems carry."""
    namespace: str
    name: str
    generation: int
    text: str


def path(namespace: str = "") -> str:
    """The collection's API path, cluster-wide or in one namespace."""
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"/apis/{GROUP}/{VERSION}{scope}/{PLURAL}"


def route_object(item: JSON) -> RouteObject:
    """The object's spec as YAML text (the key order of the object, so lines follow it)."""
    meta = item.get("metadata", {})
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    spec = item.get("spec") or {}
    text = yaml.safe_dump(spec, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return RouteObject(f"{KIND} {namespace}/{name}", namespace, name, int(meta.get("generation", 0)), text)


def condition(obj: RouteObject, problems: list[Problem], now: datetime | None = None) -> JSON:
    """The `Accepted` condition for `obj`: True, or False with every problem, one per line."""
    at = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    if not problems:
        return _condition("True", "Valid", "accepted: its listeners and services are served", obj, at)
    message = "\n".join(str(p) for p in sorted(problems))
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 20] + "\n... (more problems)"
    return _condition("False", "Invalid", message, obj, at)


def _condition(status: str, reason: str, message: str, obj: RouteObject, at: str) -> JSON:
    return {
        "type": CONDITION,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": obj.generation,
        "lastTransitionTime": at,
    }


def needs_update(current: JSON, wanted: JSON) -> bool:
    """Whether the object's status differs from `wanted` (the transition time aside)."""
    for existing in (current.get("status") or {}).get("conditions") or []:
        if existing.get("type") == CONDITION:
            return any(existing.get(k) != wanted[k] for k in ("status", "reason", "message", "observedGeneration"))
    return True


def status_patch(current: JSON, wanted: JSON) -> dict[str, Any]:
    """A merge patch of status.conditions: `wanted` replaces ours; others' conditions stay.

    The transition time moves only when the status flips, as Kubernetes conventions ask.
    """
    others, previous = [], None
    for existing in (current.get("status") or {}).get("conditions") or []:
        if existing.get("type") == CONDITION:
            previous = existing
        else:
            others.append(existing)
    if previous is not None and previous.get("status") == wanted["status"] and previous.get("lastTransitionTime"):
        wanted = {**wanted, "lastTransitionTime": previous["lastTransitionTime"]}
    return {"status": {"conditions": [*others, wanted]}}
