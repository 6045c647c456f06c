"""Envoy's overload manager for the generated bootstrap: a heap ceiling and a global connection cap.

Envoy's "Configuring Envoy as an edge proxy" page asks for both. Without a heap monitor an
Envoy under a flood of slow requests grows until the kernel or the container runtime kills it,
dropping every connection at once; with one it first returns memory to the system, then answers
new requests with 503 while the ones in flight finish. Without a global connection limit Envoy
1.40 warns at start-up ("There is no configured limit to the number of allowed active downstream
connections") and accepts connections until it runs out of file descriptors, at which point it
can no longer reach its upstreams or the control plane either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from envoy.config.overload.v3 import overload_pb2
from envoy.extensions.resource_monitors.downstream_connections.v3 import downstream_connections_pb2
from envoy.extensions.resource_monitors.fixed_heap.v3 import fixed_heap_pb2

from controlplane.translate.common import duration, pack

FIXED_HEAP = "envoy.resource_monitors.fixed_heap"
GLOBAL_CONNECTIONS = "envoy.resource_monitors.global_downstream_max_connections"
"""The name Envoy 1.40 names in its start-up warning; it replaces the runtime key
`overload.global_downstream_max_connections`, deprecated since Envoy 1.30."""
SHRINK_HEAP = "envoy.overload_actions.shrink_heap"
STOP_ACCEPTING_REQUESTS = "envoy.overload_actions.stop_accepting_requests"

DEFAULT_MAX_HEAP_BYTES = 1024 * 1024 * 1024
"""1 GiB: room for tens of thousands of connections with 32 KiB buffers. Set it to about 80% of
the container's memory limit (the Kubernetes gateway passes `--max-heap 400Mi` for its 512Mi)."""
MIN_MAX_HEAP_BYTES = 64 * 1024 * 1024
"""An idle Envoy 1.40 with one worker and a small config holds about 10 MiB of heap (measured with
its admin `/memory`), more with more workers and routes; below 64 MiB a ceiling would leave too
little for traffic and refuse requests under ordinary load."""
DEFAULT_MAX_CONNECTIONS = 50_000
"""The value of Envoy's own edge example; keep it under half the process's file descriptor limit,
since every proxied connection also holds an upstream socket."""
SHRINK_HEAP_AT = 0.95
STOP_ACCEPTING_REQUESTS_AT = 0.98
REFRESH_INTERVAL_MS = 250
"""Envoy samples its monitors every second by default; a burst can fill the last 5% faster."""

_SIZE = re.compile(r"(\d+)\s*(Ki|Mi|Gi)?(?:B)?", re.IGNORECASE)
_UNITS = {"": 1, "ki": 1024, "mi": 1024**2, "gi": 1024**3}


@dataclass(frozen=True)
class OverloadOptions:
    """Limits of the overload manager; 0 turns the matching monitor off."""

    max_heap_bytes: int = DEFAULT_MAX_HEAP_BYTES
    max_connections: int = DEFAULT_MAX_CONNECTIONS


def overload_manager(options: OverloadOptions) -> overload_pb2.OverloadManager | None:
    """The overload manager for `options`, or None when both limits are off."""
    if not options.max_heap_bytes and not options.max_connections:
        return None
    result = overload_pb2.OverloadManager(refresh_interval=duration(REFRESH_INTERVAL_MS))
    if options.max_heap_bytes:
        heap = fixed_heap_pb2.FixedHeapConfig(max_heap_size_bytes=options.max_heap_bytes)
        result.resource_monitors.add(name=FIXED_HEAP, typed_config=pack(heap))
        result.actions.extend(
            [
                _at_heap_share(SHRINK_HEAP, SHRINK_HEAP_AT),
                _at_heap_share(STOP_ACCEPTING_REQUESTS, STOP_ACCEPTING_REQUESTS_AT),
            ]
        )
    if options.max_connections:
        # A proactive monitor: Envoy refuses the connection over the limit at accept time, so it
        # needs no action (and no refresh) to take effect.
        limit = downstream_connections_pb2.DownstreamConnectionsConfig(
            max_active_downstream_connections=options.max_connections
        )
        result.resource_monitors.add(name=GLOBAL_CONNECTIONS, typed_config=pack(limit))
    return result


def _at_heap_share(action: str, share: float) -> overload_pb2.OverloadAction:
    """`action` once the heap holds `share` of its maximum."""
    trigger = overload_pb2.Trigger(name=FIXED_HEAP, threshold=overload_pb2.ThresholdTrigger(value=share))
    return overload_pb2.OverloadAction(name=action, triggers=[trigger])


def parse_max_heap(text: str) -> int:
    """`1073741824`, `400Mi`, `1Gi` or `1GiB` -> bytes; 0 means "no heap limit"."""
    found = _SIZE.fullmatch(text.strip())
    if not found:
        raise ValueError(f"{text!r} is not a size: write bytes or a number with Ki, Mi or Gi (e.g. 400Mi)")
    size = int(found[1]) * _UNITS[(found[2] or "").lower()]
    if 0 < size < MIN_MAX_HEAP_BYTES:
        raise ValueError(f"{text} is below 64Mi: an idle Envoy already holds about 10Mi of heap, leaving too little")
    return size
