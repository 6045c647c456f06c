"""Running totals -> increments, per Envoy, for the counters Envoys push as cumulative values.

Why totals and not Envoy's deltas: Envoy computes a delta by latching the counter, and its
per-endpoint counters are latched by every read of its admin `/stats` as well (measured with
Envoy 1.40: one `curl /stats` between two pushes and the next push carried 0 requests per
endpoint). A total is not changed by a read, so the control plane subtracts totals itself.

A series is (metric name, attributes). The first totals of an Envoy are counted in full only
when that Envoy started moments ago (its `server.uptime`); otherwise the control plane has just
started under a running Envoy and the totals are only a baseline, not traffic of this moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Series = tuple[str, tuple[tuple[str, str], ...]]
"""(metric name, sorted attributes)."""

FRESH_UPTIME_SECONDS = 60.0
"""An Envoy first heard from within this long of its start: its totals are all recent traffic."""
FORGET_AFTER_SECONDS = 600.0
"""The totals of an Envoy that has not pushed this long are dropped (memory stays bounded)."""


@dataclass
class _Node:
    """The totals of one Envoy's previous export, and what is being read from the current one."""

    seen_at: float
    uptime: float | None
    count_new_series: bool
    previous: dict[Series, int] = field(default_factory=dict)
    current: dict[Series, int] = field(default_factory=dict)


@dataclass
class CounterDeltas:
    """Previous totals by Envoy; `begin`, then `delta` for each counter, then `end`, per export."""

    nodes: dict[str, _Node] = field(default_factory=dict)

    def begin(self, node_id: str, uptime: float | None, now: float) -> None:
        """Start reading an export of `node_id`; an Envoy whose uptime went back restarted."""
        node = self.nodes.get(node_id)
        restarted = node is not None and uptime is not None and node.uptime is not None and uptime < node.uptime
        if node is None or restarted:
            fresh = uptime is not None and uptime <= FRESH_UPTIME_SECONDS
            node = self.nodes[node_id] = _Node(seen_at=now, uptime=uptime, count_new_series=fresh)
        node.seen_at, node.uptime, node.current = now, uptime, {}

    def delta(self, node_id: str, series: Series, total: int) -> int:
        """How much `total` grew since the previous export; a counter that went back was reset."""
        node = self.nodes[node_id]
        node.current[series] = total
        previous = node.previous.get(series)
        if previous is None:
            return total if node.count_new_series else 0
        return total - previous if total >= previous else total

    def end(self, node_id: str) -> None:
        """Keep only the series this export carried: one that vanished and returns starts at zero."""
        node = self.nodes[node_id]
        node.previous, node.current = node.current, {}
        # After a first export every later series is new traffic: a counter Envoy did not send
        # before was unused (or did not exist) at that push.
        node.count_new_series = True

    def forget_idle(self, now: float) -> None:
        """Drop the totals of Envoys that stopped pushing."""
        for node_id in [n for n, node in self.nodes.items() if now - node.seen_at > FORGET_AFTER_SECONDS]:
            del self.nodes[node_id]
