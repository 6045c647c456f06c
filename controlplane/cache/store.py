"""The snapshot cache: the current snapshot of every node group, and who to tell when it changes."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from controlplane.cache.quarantine import Quarantine, QuarantineEntry
from controlplane.cache.snapshot import Snapshot

Listener = Callable[[], None]


class SnapshotCache:
    """Snapshots per node group (Envoy's node.cluster) with a default for every other group.

    Until the first `publish`, `get` returns None: a stream then waits rather than send an
    empty listener or cluster set, which would delete everything an Envoy already has.
    """

    def __init__(self) -> None:
        self._groups: dict[str, Snapshot] = {}
        self._default: Snapshot | None = None
        self._listeners: set[Listener] = set()
        self.quarantine = Quarantine()
        self.published_at = 0.0
        """When the last change was published (wall clock), for convergence figures."""
        self._overlays: dict[str, tuple[str, int, Snapshot]] = {}

    def get(self, node_group: str) -> Snapshot | None:
        """The snapshot for Envoys whose node.cluster is `node_group`, quarantine applied."""
        base = self.published(node_group)
        if base is None or not self.quarantine.entries:
            return base
        cached = self._overlays.get(node_group)
        if cached is None or cached[:2] != (base.version, self.quarantine.generation):
            cached = (base.version, self.quarantine.generation, self.quarantine.overlay(node_group, base))
            self._overlays[node_group] = cached
        return cached[2]

    def published(self, node_group: str) -> Snapshot | None:
        """The snapshot published for `node_group`, without the quarantine."""
        return self._groups.get(node_group, self._default)

    def hold_back(self, entries: list[QuarantineEntry]) -> None:
        """Quarantine rejected resources; streams then send the rest of the change."""
        if self.quarantine.add(entries):
            self._notify()

    def publish(self, default: Snapshot, groups: Mapping[str, Snapshot]) -> bool:
        """Replace every snapshot; tell subscribers only if something changed. True if it did."""
        for snapshot in (default, *groups.values()):
            problems = snapshot.problems()
            if problems:
                raise ValueError("inconsistent snapshot: " + "; ".join(problems))
        changed = self._default is None or self._default.version != default.version
        changed = changed or {k: v.version for k, v in groups.items()} != {
            k: v.version for k, v in self._groups.items()
        }
        self._default, self._groups = default, dict(groups)
        generation = self.quarantine.generation
        self.quarantine.prune(self._groups, default)
        if changed:
            self.published_at = time.time()
        if changed or generation != self.quarantine.generation:
            self._notify()
        return changed

    def _notify(self) -> None:
        for notify in list(self._listeners):
            notify()

    def subscribe(self, notify: Listener) -> Callable[[], None]:
        """Call `notify` after every change; returns the function that unsubscribes."""
        self._listeners.add(notify)
        return lambda: self._listeners.discard(notify)

    @property
    def ready(self) -> bool:
        """Whether a first complete snapshot has been published."""
        return self._default is not None

    def groups(self) -> list[str]:
        """Node groups that have a snapshot of their own."""
        return sorted(self._groups)
