"""Shared records of the protocol core."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Protocol

from controlplane.translate import CLUSTER_TYPE, LISTENER_TYPE

WILDCARD_TYPES = (CLUSTER_TYPE, LISTENER_TYPE)
"""Types whose first request with no names means "everything" (xDS spec: wildcard subscriptions)."""


@dataclass(frozen=True)
class Nack:
    """Envoy rejected a response: what we sent, and Envoy's reason."""

    version: str
    nonce: str
    message: str
    code: int
    at: float
    """Wall-clock seconds when the NACK arrived (the caller's clock)."""


@dataclass(frozen=True)
class TypeStatus:
    """What one stream knows of one resource type, for the status page and /debug/config."""

    type_url: str
    sent_version: str
    acked_version: str
    acked_at: float
    """When the last ACK arrived (the server's wall clock; 0 if none yet)."""
    nonce: str
    in_flight: bool
    subscribed: tuple[str, ...] | None
    """None for a wildcard subscription."""
    last_nack: Nack | None

    def as_dict(self) -> dict[str, Any]:
        """As `dataclasses.asdict` gives it, without its deep copy (the status API lists every
        stream's types, and the page and benchmarks poll it)."""
        nack = self.last_nack
        return {
            "type_url": self.type_url,
            "sent_version": self.sent_version,
            "acked_version": self.acked_version,
            "acked_at": self.acked_at,
            "nonce": self.nonce,
            "in_flight": self.in_flight,
            "subscribed": self.subscribed,
            "last_nack": None if nack is None else {k: getattr(nack, k) for k in _NACK_FIELDS},
        }

    @classmethod
    def of(cls, state: Any) -> TypeStatus:
        """The status of a SotW or delta type state (both keep these fields)."""
        return cls(
            type_url=state.type_url,
            sent_version=state.sent_version,
            acked_version=state.acked_version,
            acked_at=state.acked_at,
            nonce=state.nonce,
            in_flight=state.in_flight,
            subscribed=None if state.wildcard else tuple(sorted(state.names)),
            last_nack=state.last_nack,
        )


_NACK_FIELDS = tuple(f.name for f in fields(Nack))


class Observer(Protocol):
    """Told about protocol events, for metrics; the xDS layer itself knows no metrics library."""

    def pushed(self, type_url: str) -> None:
        """A response was sent."""

    def acked(self, type_url: str, round_trip: float, since_publish: float) -> None:
        """A response was ACKed `round_trip` s after it was sent, `since_publish` s after its config."""

    def nacked(self, type_url: str) -> None:
        """A response was rejected."""


class NoObserver:
    """The default observer: ignores everything."""

    def pushed(self, type_url: str) -> None:
        pass

    def acked(self, type_url: str, round_trip: float, since_publish: float) -> None:
        pass

    def nacked(self, type_url: str) -> None:
        pass
