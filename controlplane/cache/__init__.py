"""Immutable snapshots of Envoy resources, versioned by content, held per node group."""

from controlplane.cache.snapshot import Resource, Snapshot, TypeSnapshot
from controlplane.cache.store import SnapshotCache

__all__ = ["Resource", "Snapshot", "SnapshotCache", "TypeSnapshot"]
