"""Who is connected: one entry per open stream, read by the status page and /debug/config."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from controlplane.xds.authorization import PLAINTEXT
from controlplane.xds.session import Session
from controlplane.xds.types import Nack

MAX_NACK_EVENTS = 200


@dataclass
class Connection:
    """One open stream from one Envoy."""

    stream_id: int
    node_id: str
    node_group: str
    envoy_version: str
    peer: str
    api: str
    """`sotw` or `delta`."""
    connected_at: float
    session: Session
    identity: str = PLAINTEXT
    """The verified client certificate's identity (SPIFFE ID or CN), or `plaintext`."""


@dataclass(frozen=True)
class NackEvent:
    """A rejection, kept after the stream that received it is gone."""

    node_id: str
    node_group: str
    type_url: str
    nack: Nack


@dataclass
class NodeRegistry:
    """Open streams and recent NACKs."""

    connections: dict[int, Connection] = field(default_factory=dict)
    nacks: collections.deque[NackEvent] = field(default_factory=lambda: collections.deque(maxlen=MAX_NACK_EVENTS))
    _next_id: int = 0

    def open(
        self, node: Any, peer: str, api: str, now: float, session: Session, identity: str = PLAINTEXT
    ) -> Connection:
        """Record a stream whose first request carried `node` (from a peer proven to be `identity`)."""
        self._next_id += 1
        connection = Connection(
            stream_id=self._next_id,
            node_id=node.id,
            node_group=node.cluster,
            envoy_version=_envoy_version(node),
            peer=peer,
            api=api,
            connected_at=now,
            session=session,
            identity=identity,
        )
        self.connections[connection.stream_id] = connection
        return connection

    def close(self, connection: Connection) -> None:
        """Forget a stream that ended."""
        self.connections.pop(connection.stream_id, None)

    def record_nack(self, connection: Connection, type_url: str, nack: Nack) -> None:
        """Keep a NACK for the status page."""
        self.nacks.append(NackEvent(connection.node_id, connection.node_group, type_url, nack))


def _envoy_version(node: Any) -> str:
    """Envoy's version from the node's build metadata, e.g. `1.40.0`."""
    version = node.user_agent_build_version.version
    if node.HasField("user_agent_build_version") and (version.major_number or version.minor_number):
        return f"{version.major_number}.{version.minor_number}.{version.patch}"
    return node.user_agent_version or ""
