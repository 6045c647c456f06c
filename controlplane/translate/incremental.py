"""Translation that re-uses the protobufs of unchanged model objects.

Translation is pure, so equal inputs give equal resources: caching each resource by the model
values it is built from means an endpoint change re-translates only the ClusterLoadAssignments
whose endpoints changed. The snapshot then re-uses every other resource's serialization, and
its version stays the same, so only EDS is pushed. Entries the latest model no longer uses are
dropped, so the cache never outgrows the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Iterable, Mapping
from operator import attrgetter
from typing import Any

from controlplane.model import Listener, Model, Service
from controlplane.model.routes import referenced_services
from controlplane.translate.clusters import cluster
from controlplane.translate.common import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from controlplane.translate.endpoints import cluster_load_assignment
from controlplane.translate.listeners import listener
from controlplane.translate.routes import route_configuration

Resources = dict[str, tuple[Any, ...]]
_MISSING: Any = object()


class IncrementalTranslator:
    """Builds resources for node groups, memoized by the model values each resource depends on."""

    def __init__(self) -> None:
        self._cache: dict[Hashable, Any] = {}
        self._next: dict[Hashable, Any] = {}
        self.built = 0
        """How many resources were translated (not taken from the cache) by the last `build`."""

    def build(self, model: Model, groups: Iterable[str | None]) -> dict[str | None, Resources]:
        """Resources per node group (None: every listener), as `build_resources` would give."""
        self._next, self.built = {}, 0
        result = {group: self._resources(model, group) for group in groups}
        # Only what this build used is kept: a second dict filled as we go costs one lookup per
        # key, where pruning afterwards would hash and compare every (large) key once more.
        self._cache, self._next = self._next, {}
        return result

    def _resources(self, model: Model, group: str | None) -> Resources:
        listeners = [item for item in model.listeners if item.serves(group)]
        by_name = {s.name: s for s in model.services}
        used = [by_name[name] for name in sorted(referenced_services(listeners))]
        return {
            CLUSTER_TYPE: tuple(self._get(("c", _cluster_key(s)), cluster, s) for s in used),
            ENDPOINT_TYPE: tuple(
                self._get(("e", s.name, s.endpoints), cluster_load_assignment, s) for s in used if not s.dns_name
            ),
            LISTENER_TYPE: tuple(self._get(("l", item), listener, item) for item in listeners),
            ROUTE_TYPE: tuple(self._routes(item, by_name) for item in listeners),
        }

    def _routes(self, item: Listener, services: Mapping[str, Service]) -> Any:
        """Routes depend on their listener and on the hash policies of the services they use."""
        hashing = tuple(sorted((n, services[n].hash_on) for n in referenced_services([item])))
        return self._get(("r", item, hashing), lambda _: route_configuration(item, services), item)

    def _get(self, key: Hashable, build: Callable[[Any], Any], value: Any) -> Any:
        found = self._next.get(key, _MISSING)
        if found is _MISSING:
            found = self._cache.get(key, _MISSING)
            if found is _MISSING:
                found = build(value)
                self.built += 1
            self._next[key] = found
        return found


def _cluster_key(service: Service) -> tuple[Any, ...]:
    """Every field of the service but its endpoints: what its Cluster depends on (kept on the object).

    A tuple of the fields, not a copy of the service: `dataclasses.replace` on every service
    cost more than building its Cluster.
    """
    cached: tuple[Any, ...] | None = service.__dict__.get("_cluster_key")
    if cached is None:
        cached = _SERVICE_FIELDS(service)
        object.__setattr__(service, "_cluster_key", cached)
    return cached


_SERVICE_FIELDS = attrgetter(*(f.name for f in dataclasses.fields(Service) if f.compare and f.name != "endpoints"))
