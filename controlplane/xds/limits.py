"""What one client may make the xDS server hold: streams, connections, names, message text.

Every limit is far above what real Envoys need, so reaching one means a broken or hostile client.
Checks run before the work they guard: a request's name counts are read (O(1) on protobuf
repeated fields) before any name is copied into a set.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_STREAMS_PER_PEER = 2_000
"""Open RPCs from one IP address, over all its connections. An Envoy holds one ADS stream (about
five without ADS) plus short stats exports, so this leaves room for 2,000 Envoys (400 without ADS)
behind one NAT address, and for the 1,000 synthetic clients the benchmarks run from 127.0.0.1."""
MAX_STREAMS = 10_000
"""Open RPCs on the port from everyone (grpcio's `maximum_concurrent_rpcs`): five full peers.
A synced ADS stream costs about 0.5 MB with 1,000 clusters (docs/performance.md, S5), so this
bounds streams at a few GB; lower it on smaller machines."""
MAX_CONNECTIONS = 10_000
"""Open TCP connections (gRPC's `grpc.max_allowed_incoming_connections`; extra ones are closed at
once). Every Envoy needs one connection holding at least one stream, so more connections than
streams would only be idle ones."""
HANDSHAKE_TIMEOUT_MS = 10_000
"""A connection must send the HTTP/2 preface and SETTINGS within this (gRPC's default: 120 s), so
silent or half-open connections free their slot quickly; Envoy sends both at once."""
MAX_CONNECTION_IDLE_MS = 300_000
"""A connection without any RPC for this long is closed with GOAWAY. Envoy's xDS connection always
holds its stream; a gRPC client that is merely idle reconnects by itself on its next call."""
MAX_NAMES_PER_REQUEST = 50_000
"""Resource names one request may carry (SotW `resource_names`; delta subscribe + unsubscribe +
`initial_resource_versions`). The largest mesh we claim, 10,000 services, makes an ADS stream
name at most ~30,000 (a delta reconnect echoes clusters and endpoints, and re-subscribes to
endpoints); a request that size is about 1 MB, well under the 4 MiB receive limit."""
MAX_NAMES_PER_STREAM = 50_000
"""Names one stream may hold over all its types (subscriptions plus delta's initial versions)."""
MAX_NAME_BYTES = 512
"""Longest resource name or type URL kept. Served names are DSL names (at most 63 characters) or
Kubernetes `namespace/name`-style ones; a longer name can match nothing we serve."""
MAX_TYPES_PER_STREAM = 16
"""Distinct type URLs on one stream. Envoy asks ADS for at most ~10 kinds (CDS, EDS, LDS, RDS,
SDS, RTDS, ECDS, VHDS, SRDS, LEDS); we answer four and remember the rest without answering."""
MAX_NACK_MESSAGE_BYTES = 16 * 1024
"""Envoy's NACK text kept (logged, shown, matched for quarantine): Envoy's own messages are a few
hundred bytes; without a cap, 200 kept NACKs of 4 MiB each would hold 800 MB."""
REFUSAL_LOG_INTERVAL = 10.0
"""Seconds between two log lines about refused streams; the ones in between are counted."""


@dataclass(frozen=True)
class Limits:
    """The limits a server runs with (the `serve` flags; the rest are the constants above)."""

    streams_per_peer: int = MAX_STREAMS_PER_PEER
    streams: int = MAX_STREAMS
    connections: int = MAX_CONNECTIONS
    names_per_stream: int = MAX_NAMES_PER_STREAM
    handshake_timeout_ms: int = HANDSHAKE_TIMEOUT_MS
    connection_idle_ms: int = MAX_CONNECTION_IDLE_MS


class LimitExceeded(Exception):
    """A client went over a limit: its stream ends with `code` (a gRPC status name) and `message`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_request(request: Any) -> None:
    """Refuse a request carrying too many names, before any of them is looked at one by one."""
    if hasattr(request, "resource_names_subscribe"):
        count = (
            len(request.resource_names_subscribe)
            + len(request.resource_names_unsubscribe)
            + len(request.initial_resource_versions)
        )
    else:
        count = len(request.resource_names)
    if count > MAX_NAMES_PER_REQUEST:
        raise LimitExceeded(
            "RESOURCE_EXHAUSTED", f"request carries {count} resource names; at most {MAX_NAMES_PER_REQUEST} allowed"
        )
    if len(request.type_url) > MAX_NAME_BYTES:
        raise LimitExceeded("INVALID_ARGUMENT", f"type_url is longer than {MAX_NAME_BYTES} bytes")


def check_names(names: Any) -> None:
    """Refuse names no served resource can have (run only on a request that passed `check_request`)."""
    if any(len(name) > MAX_NAME_BYTES for name in names):
        raise LimitExceeded("INVALID_ARGUMENT", f"a resource name is longer than {MAX_NAME_BYTES} bytes")


def clip(message: str) -> str:
    """Envoy's error text, cut to MAX_NACK_MESSAGE_BYTES characters."""
    if len(message) <= MAX_NACK_MESSAGE_BYTES:
        return message
    return message[:MAX_NACK_MESSAGE_BYTES] + f"... ({len(message) - MAX_NACK_MESSAGE_BYTES} more characters)"


def peer_address(peer: str) -> str:
    """The IP address in a gRPC peer string (`ipv4:10.0.0.1:5000`, `ipv6:[::1]:5000`); else the string."""
    kind, _, rest = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return peer
    host = rest.rpartition(":")[0]
    return host.strip("[]")


class ThrottledLog:
    """Warnings about one kind of event, at most one line per `interval`; the others are counted.

    A hostile client can cause thousands of refusals a second; one line each would flood the log.
    """

    def __init__(
        self, log: logging.Logger, interval: float = REFUSAL_LOG_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._log, self._interval, self._clock = log, interval, clock
        self._logged_at: float | None = None
        self._skipped = 0

    def warning(self, message: str) -> bool:
        """Log `message` unless a line went out within the interval; True if it was logged."""
        now = self._clock()
        since = now - self._logged_at if self._logged_at is not None else None
        if since is not None and since < self._interval:
            self._skipped += 1
            return False
        more = f" (and {self._skipped} more like it in the last {since:.0f}s)" if since and self._skipped else ""
        self._log.warning("%s%s", message, more)
        self._logged_at, self._skipped = now, 0
        return True


class PeerStreams:
    """Open RPCs per peer address; refuses a new one beyond the limit, logging refusals sparingly."""

    def __init__(self, limit: int, log: ThrottledLog) -> None:
        self.limit = limit
        self.open: dict[str, int] = {}
        self.refused = 0
        self._log = log

    def acquire(self, peer: str) -> bool:
        """Count a new RPC from `peer`; False (and nothing counted) when the peer is at its limit."""
        address = peer_address(peer)
        held = self.open.get(address, 0)
        if held >= self.limit:
            self.refused += 1
            self._log.warning(f"refused a new RPC from {address}: it holds {held} (--max-streams-per-peer)")
            return False
        self.open[address] = held + 1
        return True

    def release(self, peer: str) -> None:
        """An RPC counted by `acquire` ended."""
        address = peer_address(peer)
        held = self.open.get(address, 0) - 1
        if held > 0:
            self.open[address] = held
        else:
            self.open.pop(address, None)
