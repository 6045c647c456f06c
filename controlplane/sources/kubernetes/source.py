"""The Kubernetes source: Services and EndpointSlices in, `KubernetesState` values out.

Which EndpointSlice version to watch is read from the server's API discovery: `v1` when it has
it, `v1beta1` (Kubernetes 1.17-1.20) otherwise. Watches run in threads; a change wakes one task
on the event loop that maps everything and hands the state to the pipeline, so a burst of events
costs one mapping.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controlplane.dsl.policy import AddressPolicy
from controlplane.model import KubernetesState
from controlplane.sources.kubernetes import route_objects
from controlplane.sources.kubernetes.client import JSON, KubeClient, KubeError
from controlplane.sources.kubernetes.mapping import Refusal, discovered_ports
from controlplane.sources.kubernetes.route_objects import RouteObject
from controlplane.sources.kubernetes.watch import ListWatch, WatchTiming

log = logging.getLogger(__name__)

DISCOVERY_GROUP = "discovery.k8s.io"


@dataclass(frozen=True)
class KubernetesOptions:
    """What `serve --kubernetes` watches."""

    kubeconfig: str | None = None
    """None: in-cluster config, else the default kubeconfig."""
    namespaces: tuple[str, ...] = ()
    """Only these namespaces; empty: all (or those `namespace_selector` picks)."""
    namespace_selector: str = ""
    """A label selector on Namespaces, e.g. `gateway=enabled`."""
    timing: WatchTiming = field(default_factory=WatchTiming)
    leader_namespace: str = field(default_factory=lambda: os.environ.get("POD_NAMESPACE", "default"))
    """Where the leader-election Lease lives (the pod's own namespace when deployed)."""
    leader_name: str = "controlplane-leader"


def endpoint_slice_version(client: KubeClient) -> str:
    """`v1` when the server serves it, else `v1beta1` (read from API discovery, not guessed)."""
    group = client.get(f"/apis/{DISCOVERY_GROUP}")
    versions = [v.get("version") for v in group.get("versions", [])]
    if "v1" in versions:
        return "v1"
    if "v1beta1" in versions:
        return "v1beta1"
    raise KubeError(404, f"the API server serves no EndpointSlice version ({DISCOVERY_GROUP}: {versions})")


class KubernetesSource:
    """Watches, maps and reports; `run` hands each new state to `submit`."""

    def __init__(self, client: KubeClient, options: KubernetesOptions, policy: AddressPolicy) -> None:
        self.client, self.options, self.policy = client, options, policy
        self.slice_version = ""
        self.watches: dict[str, ListWatch] = {}
        self.refusals: list[Refusal] = []
        self.state = KubernetesState()
        self.routes: tuple[RouteObject, ...] = ()
        self.discovery_error = ""
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def synced(self) -> bool:
        """True once every watch has listed at least once."""
        return bool(self.watches) and all(w.synced for w in self.watches.values())

    def last_contact(self) -> float:
        """The oldest of the watches' last contact: how stale the view may be."""
        return min((w.last_contact for w in self.watches.values() if not w.absent), default=0.0)

    def errors(self) -> list[str]:
        found = [f"{name}: {w.error}" for name, w in sorted(self.watches.items()) if w.error]
        return [f"API discovery: {self.discovery_error}", *found] if self.discovery_error else found

    def report(self) -> dict[str, Any]:
        """The source's state for the status page and `/api/config`."""
        contact = self.last_contact()
        return {
            "synced": self.synced(),
            "sync_age": time.time() - contact if contact else None,
            "endpoint_slices": f"{DISCOVERY_GROUP}/{self.slice_version}" if self.slice_version else "",
            "errors": self.errors(),
            "ports": len(self.state.ports),
            "relists": sum(w.relists for w in self.watches.values()),
            "refused": [f"{r.object}: {r.message}" for r in self.refusals],
        }

    async def run(
        self, submit: Callable[[KubernetesState], None], submit_routes: Callable[[tuple[RouteObject, ...]], None]
    ) -> None:
        """Start the watches, then map and submit after every change, until cancelled."""
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        await self._discover()
        for name, path, selector in self._paths():
            optional = name.startswith("routetables")
            self.watches[name] = ListWatch(self.client, path, self._changed, self.options.timing, selector, optional)
        for watch in self.watches.values():
            watch.start()
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self.synced():
                    routes = self._route_objects()
                    if routes != self.routes:
                        self.routes = routes
                        submit_routes(routes)
                    self.state = self._map()
                    submit(self.state)
        finally:
            for watch in self.watches.values():
                watch.stop()

    async def _discover(self) -> None:
        """Find the EndpointSlice version, retrying while the server is unreachable."""
        delay = self.options.timing.backoff_min
        while not self.slice_version:
            try:
                self.slice_version = await asyncio.to_thread(endpoint_slice_version, self.client)
                self.discovery_error = ""
                log.info("watching EndpointSlices as %s/%s", DISCOVERY_GROUP, self.slice_version)
            except KubeError as exc:
                self.discovery_error = str(exc)
                log.warning("Kubernetes API discovery failed (retrying in %.1fs): %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.options.timing.backoff_max)

    def _paths(self) -> list[tuple[str, str, str]]:
        """(name, path, label selector) of every list-watch: per namespace when filtered."""
        slices = f"/apis/{DISCOVERY_GROUP}/{self.slice_version}"
        found: list[tuple[str, str, str]] = []
        for namespace in self.options.namespaces or ("",):
            scope = f"/namespaces/{namespace}" if namespace else ""
            suffix = f" {namespace}" if namespace else ""
            found += [
                (f"services{suffix}", f"/api/v1{scope}/services", ""),
                (f"endpointslices{suffix}", f"{slices}{scope}/endpointslices", ""),
                (f"routetables{suffix}", route_objects.path(namespace), ""),
            ]
        if self.options.namespace_selector:
            found.append(("namespaces", "/api/v1/namespaces", self.options.namespace_selector))
        return found

    def _changed(self) -> None:
        """Called from a watch thread: wake the mapping task."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _map(self) -> KubernetesState:
        services, slices = [], []
        for name, watch in self.watches.items():
            if name.startswith("services"):
                services += watch.snapshot()
            elif name.startswith("endpointslices"):
                slices += watch.snapshot()
        ports, refusals = discovered_ports(services, slices, self.policy, self._namespace_filter())
        for refusal in set(refusals) - set(self.refusals):
            log.warning("%s left out: %s", refusal.object, refusal.message)
        self.refusals = refusals
        return KubernetesState(ports=ports, synced=True)

    def _route_objects(self) -> tuple[RouteObject, ...]:
        wanted = self._namespace_filter()
        found = [
            route_objects.route_object(item)
            for name, watch in self.watches.items()
            if name.startswith("routetables")
            for item in watch.snapshot()
        ]
        return tuple(sorted(o for o in found if wanted(o.namespace)))

    def route_table(self, namespace: str, name: str) -> JSON | None:
        """The RouteTable as last seen (for its current status)."""
        for watch_name, watch in self.watches.items():
            if watch_name.startswith("routetables"):
                with watch.lock:
                    found = watch.objects.get(f"{namespace}/{name}")
                if found is not None:
                    return found
        return None

    def _namespace_filter(self) -> Callable[[str], bool]:
        selected = self.watches.get("namespaces")
        if selected is None:
            return lambda namespace: True
        names = {item.get("metadata", {}).get("name") for item in selected.snapshot()}
        return names.__contains__
