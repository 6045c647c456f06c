"""Snapshots: every resource serialized once, versioned by a hash of its bytes.

Versions are content hashes, never counters or clocks: two replicas, or one replica after a
restart, compute the same versions from the same inputs, so a reconnecting Envoy sees no change.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controlplane.cache.consistency import consistency_problems
from controlplane.translate import TYPE_ORDER, Resources


def content_hash(*parts: bytes) -> str:
    """A short, stable hex digest of `parts` (64 bits: collisions are not a practical concern)."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(len(part).to_bytes(8, "big"))
        hasher.update(part)
    return hasher.hexdigest()[:16]


def resources_version(resources: Mapping[str, Resource]) -> str:
    """The version of a set of resources: a hash of every name and resource version in it."""
    return content_hash(*(f"{n}={resources[n].version}".encode() for n in sorted(resources)))


@dataclass(frozen=True)
class Resource:
    """One named resource with its deterministic serialization and that serialization's hash."""

    name: str
    message: Any
    serialized: bytes
    version: str

    @classmethod
    def of(cls, name: str, message: Any) -> Resource:
        """Serialize `message` deterministically and version it by content."""
        data = message.SerializeToString(deterministic=True)
        return cls(name, message, data, content_hash(data))


@dataclass(frozen=True)
class TypeSnapshot:
    """All resources of one type, by name; `version` covers every name and resource version."""

    type_url: str
    resources: Mapping[str, Resource]
    version: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "version", resources_version(self.resources))


@dataclass(frozen=True)
class Snapshot:
    """One consistent set of resources of every type for one node group."""

    types: Mapping[str, TypeSnapshot]
    version: str = field(init=False)

    def __post_init__(self) -> None:
        versions = [f"{t}={self.types[t].version}".encode() for t in sorted(self.types)]
        object.__setattr__(self, "version", content_hash(*versions))

    @classmethod
    def from_resources(cls, resources: Resources, reuse: Snapshot | None = None) -> Snapshot:
        """Build from translator output; unchanged resources are taken from `reuse` as they are."""
        types: dict[str, TypeSnapshot] = {}
        for type_url in TYPE_ORDER:
            previous = reuse.types.get(type_url) if reuse else None
            items = {_name(m): _reuse_or_build(m, previous) for m in resources.get(type_url, ())}
            unchanged = previous is not None and _same_resources(items, previous.resources)
            types[type_url] = previous if unchanged and previous is not None else TypeSnapshot(type_url, items)
        return cls(types)

    def get(self, type_url: str) -> TypeSnapshot:
        """The resources of `type_url` (empty when the snapshot has none of that type)."""
        return self.types.get(type_url) or TypeSnapshot(type_url, {})

    def problems(self) -> list[str]:
        """Why this snapshot must not be published (dangling EDS or RDS references); empty if none."""
        return consistency_problems({t: [r.message for r in ts.resources.values()] for t, ts in self.types.items()})


def _same_resources(items: Mapping[str, Resource], previous: Mapping[str, Resource]) -> bool:
    """Whether `items` are exactly the resource objects of `previous` (so its version stands)."""
    return len(items) == len(previous) and all(previous.get(name) is r for name, r in items.items())


def _name(message: Any) -> str:
    """The resource's name, interned: every stream's subscription then shares these strings."""
    return sys.intern(str(message.cluster_name if hasattr(message, "cluster_name") else message.name))


def _reuse_or_build(message: Any, previous: TypeSnapshot | None) -> Resource:
    name = _name(message)
    old = previous.resources.get(name) if previous else None
    if old is not None and (old.message is message or old.message == message):
        return old
    return Resource.of(name, message)
