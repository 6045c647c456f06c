"""The read-only view the status server is given (built by the composition root)."""

from __future__ import annotations

from typing import Any, Protocol


class StatusView(Protocol):
    """What the status server may read."""

    def ready(self) -> bool:
        """Whether a first complete snapshot is being served."""

    def config(self) -> dict[str, Any]:
        """Current config version, its sources, the last rejected edit's problems, recent changes."""

    def nodes(self) -> list[dict[str, Any]]:
        """Connected Envoys and, per resource type, what they were sent and acknowledged."""
