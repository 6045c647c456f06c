"""Config history: the last published snapshot sets, for `history`, `diff` and `rollback`.

Snapshots share their unchanged resources with one another, so keeping the last N costs little
more than the resources that actually changed between them.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass

from controlplane.cache import Snapshot

HISTORY_SIZE = 20


@dataclass(frozen=True)
class Published:
    """One published config: its version (the default group's), when, and every group's snapshot."""

    version: str
    at: float
    groups: Mapping[str, Snapshot]


class History:
    """The last `size` published configs, newest last."""

    def __init__(self, size: int = HISTORY_SIZE) -> None:
        self.entries: collections.deque[Published] = collections.deque(maxlen=size)

    def add(self, entry: Published) -> None:
        self.entries.append(entry)

    def find(self, version: str) -> Published | None:
        """The newest entry with `version` (a unique prefix of at least 6 characters also works).

        A prefix that two different versions share names neither: None, as for an unknown one.
        """
        matches = [e for e in reversed(self.entries) if e.version == version]
        if not matches and len(version) >= 6:
            matches = [e for e in reversed(self.entries) if e.version.startswith(version)]
        return matches[0] if len({e.version for e in matches}) == 1 else None
