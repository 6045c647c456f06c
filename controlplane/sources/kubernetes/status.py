"""Writes each RouteTable's `Accepted` condition back, from the leader only.

Every replica validates every RouteTable and serves the same config; only the Lease holder
writes, so replicas never fight over status. A write happens only when the condition differs
from what the object already says, so a steady state costs no API calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from controlplane.errors import Problem
from controlplane.sources.kubernetes import route_objects
from controlplane.sources.kubernetes.client import JSON, KubeClient, KubeError
from controlplane.sources.kubernetes.route_objects import RouteObject

log = logging.getLogger(__name__)

RECHECK = 5.0
"""Seconds between checks without a wake-up: catches a lost write or a newly won Lease."""


class StatusWriter:
    """Compares wanted and current conditions and patches the difference."""

    def __init__(
        self,
        client: KubeClient,
        checked: Callable[[], dict[str, list[Problem]]],
        objects: Callable[[], tuple[RouteObject, ...]],
        current: Callable[[str, str], JSON | None],
        is_leader: Callable[[], bool],
    ) -> None:
        self.client, self.checked, self.objects, self.current, self.is_leader = (
            client, checked, objects, current, is_leader
        )  # fmt: skip
        self.wake = asyncio.Event()
        self.written = 0

    async def run(self) -> None:
        """Until cancelled: after every validation (or every RECHECK seconds), write what changed."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), RECHECK)
            self.wake.clear()
            if self.is_leader():
                await asyncio.to_thread(self.write_all)

    def write_all(self) -> None:
        problems = self.checked()
        for obj in self.objects():
            if obj.source not in problems:
                continue  # not validated yet
            current = self.current(obj.namespace, obj.name)
            wanted = route_objects.condition(obj, problems[obj.source])
            if current is None or not route_objects.needs_update(current, wanted):
                continue
            try:
                status_path = f"{route_objects.path(obj.namespace)}/{obj.name}/status"
                self.client.patch_merge(status_path, route_objects.status_patch(current, wanted))
                self.written += 1
            except KubeError as exc:
                log.warning("could not write the status of %s: %s", obj.source, exc)
