"""How one Envoy stands on one resource type, in the words of istioctl proxy-status."""

from __future__ import annotations

from typing import Any

TYPES = (("CDS", "Cluster"), ("EDS", "ClusterLoadAssignment"), ("LDS", "Listener"), ("RDS", "RouteConfiguration"))


def type_state(state: dict[str, Any] | None) -> str:
    """SYNCED, STALE (sent, not yet ACKed), NACKED, or NOT SENT, as istioctl proxy-status says."""
    if state is None or not (state["acked_version"] or state["sent_version"]):
        return "NOT SENT"
    nack = state["last_nack"]
    if nack and nack["at"] >= state["acked_at"]:
        return "NACKED"
    return "STALE" if state["in_flight"] else "SYNCED"
