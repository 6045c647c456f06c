"""NACK quarantine: a resource an Envoy rejected is held back for its node group, not the change.

When Envoy rejects a response, the resources its error names are quarantined for that node
group: the group keeps getting the last version it accepted (or, for a new resource, nothing),
so the rest of the change still goes out. A quarantine lifts by itself when the source changes
that resource (its version is no longer the rejected one) or removes it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controlplane.cache.snapshot import Resource, Snapshot, TypeSnapshot
from controlplane.translate.common import short_type

log = logging.getLogger(__name__)

_QUOTED = re.compile(r"'([^']{3,})'")
"""A value Envoy quotes in an error (`regex '^/a$' ...`, `cluster 'api' ...`); 3+ characters."""


@dataclass(frozen=True)
class QuarantineEntry:
    """One rejected resource, for one node group."""

    group: str
    type_url: str
    name: str
    rejected_version: str
    fallback: Resource | None
    """The version the group accepted before, or None for a resource it never had."""
    message: str
    """Envoy's error_detail message."""
    node_id: str
    at: float


class Quarantine:
    """The current quarantine, keyed by (group, type URL, name)."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str, str], QuarantineEntry] = {}
        self.generation = 0

    def add(self, entries: Iterable[QuarantineEntry]) -> bool:
        """Record entries; True if any is new."""
        added = False
        for entry in entries:
            key = (entry.group, entry.type_url, entry.name)
            if self.entries.get(key, None) is None or self.entries[key].rejected_version != entry.rejected_version:
                self.entries[key] = entry
                added = True
                log.error(
                    "quarantined %s %s for node group %r: %s",
                    short_type(entry.type_url),
                    entry.name,
                    entry.group,
                    entry.message,
                )
        if added:
            self.generation += 1
        return added

    def prune(self, snapshot_of: dict[str, Snapshot], default: Snapshot) -> None:
        """Lift entries whose resource the source changed or removed."""
        for key, entry in list(self.entries.items()):
            current = snapshot_of.get(entry.group, default).get(entry.type_url).resources.get(entry.name)
            if current is None or current.version != entry.rejected_version:
                del self.entries[key]
                self.generation += 1
                log.info("quarantine of %s %s lifted: the source changed it", short_type(entry.type_url), entry.name)

    def overlay(self, group: str, snapshot: Snapshot) -> Snapshot:
        """`snapshot` with the group's quarantined resources replaced by their fallbacks."""
        held = [e for e in self.entries.values() if e.group == group]
        if not held:
            return snapshot
        types = {t: dict(ts.resources) for t, ts in snapshot.types.items()}
        for entry in held:
            resources = types.setdefault(entry.type_url, {})
            if resources.get(entry.name) is None or resources[entry.name].version != entry.rejected_version:
                continue
            if entry.fallback is None:
                del resources[entry.name]
            else:
                resources[entry.name] = entry.fallback
        result = Snapshot({t: TypeSnapshot(t, r) for t, r in types.items()})
        return snapshot if result.problems() else result


def rejected_names(message: str, changed: Mapping[str, Resource]) -> list[str]:
    """Which of the `changed` resources of a rejected response Envoy's `message` points at.

    Listener and cluster errors name the resource ("Error adding/updating listener(s) second:
    ..."), route configuration errors usually do not: Envoy reports what it could not build,
    e.g. "regex '^/o/[0-9]{1,12}$' RE2 program size of 27 > max program size of 20 ...". So, in
    order: the resources the message names; else those holding a value the message quotes; else,
    when only one resource changed, that one, since nothing else in the response was new.
    """
    named = sorted(name for name in changed if mentions(message, name))
    if named:
        return named
    quoted = quoted_values(message)
    holding = sorted(name for name, r in changed.items() if any(q in r.serialized for q in quoted))
    if holding:
        return holding
    return list(changed) if len(changed) == 1 else []


def quoted_values(message: str) -> list[bytes]:
    """The values Envoy's message quotes, as they appear in a serialized resource."""
    return [q.encode() for q in _QUOTED.findall(message)]


def mentions(message: str, name: str) -> bool:
    """Whether `name` appears in `message` as a whole word (resource names may hold . - _)."""
    return re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", message) is not None
