"""The view the status server is given (built by the composition root)."""

from __future__ import annotations

from typing import Any, Protocol


class StatusView(Protocol):
    """What the status server may read, and the only actions it may take."""

    def ready(self) -> bool:
        """Whether a first complete snapshot is being served."""

    def config(self) -> dict[str, Any]:
        """Current config version, its sources, the last rejected edit's problems, recent changes."""

    def nodes(self) -> list[dict[str, Any]]:
        """Connected Envoys and, per resource type, what they were sent and acknowledged."""

    def active_alerts(self) -> list[dict[str, Any]]:
        """Alerts firing now, each with `silenced_until` (None when notified)."""

    def services(self) -> list[dict[str, Any]]:
        """Every service with its endpoints and traffic figures (rate, errors, latency, series)."""

    def debug_config(self, node_id: str) -> list[dict[str, Any]]:
        """What the streams of one Envoy were sent and accepted, resources included."""

    def metrics_text(self) -> bytes:
        """The Prometheus exposition of the process's metrics."""

    def history(self) -> list[dict[str, Any]]:
        """Published versions kept for rollback, newest last."""

    def history_config(self, version: str, node_cluster: str) -> dict[str, Any] | None:
        """The resources of a kept version for a node group, as Envoy's JSON; None if not kept."""

    def pin(self, version: str) -> str | None:
        """Action: serve a kept version until `unpin`; its full version, or None if not kept."""

    def unpin(self) -> None:
        """Action: lift a pin."""

    def silences(self) -> list[dict[str, Any]]:
        """Silences in force, soonest to end first."""

    def silence(self, name: str, labels: dict[str, str], seconds: float, comment: str) -> dict[str, Any]:
        """Action: stop notifying alerts `name` with these labels for `seconds`; the new silence."""

    def unsilence(self, silence_id: str) -> bool:
        """Action: end a silence now; False if there is none with that id."""
