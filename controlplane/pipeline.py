"""From source inputs to published snapshots: debounce, validate, translate, publish.

Bad input never replaces good: when validation fails the problems are logged and kept for the
status page, and the last good snapshots keep serving.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.cache import Snapshot, SnapshotCache
from controlplane.cache.checkpoint import FILE_NAME as CHECKPOINT_FILE
from controlplane.cache.checkpoint import Checkpoint, encode
from controlplane.dsl import AddressPolicy, load_texts
from controlplane.errors import ConfigError, Problem
from controlplane.fileio import AFTER_THE_PUSH, LatestWriter
from controlplane.history import History, Published
from controlplane.model import Endpoint, KubernetesState, Model
from controlplane.sources.files import FileInputs
from controlplane.sources.kubernetes.route_objects import RouteObject
from controlplane.translate import IncrementalTranslator

log = logging.getLogger(__name__)

DEFAULT_GROUP = ""
"""The snapshot for Envoys whose node.cluster no listener names: only unrestricted listeners."""


@dataclass(frozen=True)
class Debounce:
    """Wait until inputs are quiet for `quiet` seconds, but never longer than `max_delay`.

    Pushes also draw from a token bucket (`burst` tokens, one back every `min_interval`): a few
    edits go out at once, while sustained churn (an endpoint change every few milliseconds)
    becomes at most one push per `min_interval`, so Envoys apply far fewer updates than changes.

    The quiet wait is for changes that may be incomplete: a config of several files, saved one
    after the other, or a file the safety poll found (a writer may not be done). Registry and
    Kubernetes states, and a lone route file read after its writer closed it, arrive whole:
    after `max_delay` without a push the first one goes out at once, and only the ones that
    follow it closely are gathered.
    """

    quiet: float = 0.01
    max_delay: float = 0.1
    min_interval: float = 0.15
    burst: int = 10


class TokenBucket:
    """`capacity` tokens, one more every `interval` seconds; `take` waits while it is empty."""

    def __init__(self, capacity: int, interval: float, clock: Callable[[], float]) -> None:
        self.capacity, self.interval, self.clock = capacity, interval, clock
        self.tokens, self.updated = float(capacity), clock()

    async def take(self) -> None:
        self._refill()
        if self.tokens < 1:
            await asyncio.sleep((1 - self.tokens) * self.interval)
            self._refill()
        self.tokens -= 1

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) / self.interval)
        self.updated = now


@dataclass
class ConfigState:
    """What the status page shows about configuration: current version, errors, history."""

    version: str = ""
    applied_at: float = 0.0
    problems: list[Problem] = field(default_factory=list)
    rejected_at: float = 0.0
    history: list[tuple[float, str]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    serving: str = ""
    """`files` once a valid config was published; `checkpoint` while a restored one serves;
    `pinned` while a rollback holds an earlier version."""
    held_version: str = ""
    """While pinned: the version the sources would give now (not served)."""


class Pipeline:
    """Turns file inputs into snapshots for every node group."""

    def __init__(
        self,
        cache: SnapshotCache,
        policy: AddressPolicy,
        debounce: Debounce = Debounce(),
        clock: Callable[[], float] = time.time,
        state_dir: Path | None = None,
    ) -> None:
        self.cache = cache
        self.policy = policy
        self.debounce = debounce
        self.clock = clock
        self.state = ConfigState()
        self._pending: FileInputs | None = None
        self._discovered_pending: Mapping[str, tuple[Endpoint, ...]] | None = None
        self._kubernetes_pending: KubernetesState | None = None
        self.kubernetes: KubernetesState | None = None
        """None without `--kubernetes`; until its first full sync nothing is published."""
        self._objects_pending: tuple[RouteObject, ...] | None = None
        self.route_objects: tuple[RouteObject, ...] = ()
        """RouteTable objects: route files kept in Kubernetes, validated one by one."""
        self.object_problems: dict[str, list[Problem]] = {}
        """Each RouteTable's problems after the last apply (empty: accepted)."""
        self.on_objects_checked: Callable[[], None] = lambda: None
        self._files = FileInputs(())
        self._wake = asyncio.Event()
        self.model: Model | None = None
        """The last good model from the files (without discovered endpoints)."""
        self.discovered: Mapping[str, tuple[Endpoint, ...]] = {}
        """Endpoints of `discovery: registry` services, by service name."""
        self._snapshots: dict[str, Snapshot] = {}
        self.translator = IncrementalTranslator()
        self.history = History()
        self.on_build: Callable[[float], None] = lambda seconds: None
        """Told how long each translate-and-snapshot took (for metrics)."""
        self.on_reject: Callable[[], None] = lambda: None
        self.pinned: str | None = None
        self.state_dir = state_dir
        self.checkpoints = LatestWriter(state_dir / CHECKPOINT_FILE, AFTER_THE_PUSH) if state_dir else None
        """Writes the checkpoint after each publish (None without a state directory)."""
        self._inputs: dict[str, str] = {}

    def submit(self, inputs: FileInputs) -> None:
        """Record new inputs; the run loop applies the latest after the debounce."""
        self._pending = inputs
        self._wake.set()

    def submit_discovered(self, endpoints: Mapping[str, tuple[Endpoint, ...]]) -> None:
        """Record the current registry endpoints; applied, debounced, like file edits."""
        self._discovered_pending = endpoints
        self._wake.set()

    def submit_kubernetes(self, state: KubernetesState) -> None:
        """Record the Kubernetes source's current state; applied, debounced, like file edits."""
        self._kubernetes_pending = state
        self._wake.set()

    def submit_route_objects(self, objects: tuple[RouteObject, ...]) -> None:
        """Record the current RouteTable objects; applied with the files, debounced."""
        self._objects_pending = objects
        self._wake.set()

    async def run(self) -> None:
        """Apply inputs as they come, debounced, until cancelled."""
        clock = asyncio.get_running_loop().time
        bucket = TokenBucket(self.debounce.burst, self.debounce.min_interval, clock)
        last_push = -float("inf")
        while True:
            await self._wake.wait()
            if not (self._whole_pending() and clock() - last_push >= self.debounce.max_delay):
                await self._settle()
            await bucket.take()
            last_push = clock()
            inputs, self._pending = self._pending, None
            discovered, self._discovered_pending = self._discovered_pending, None
            kubernetes, self._kubernetes_pending = self._kubernetes_pending, None
            objects, self._objects_pending = self._objects_pending, None
            self._wake.clear()
            if objects is not None:
                self.route_objects = objects
                inputs = inputs or self._files
            if discovered is not None:
                self.discovered = discovered
            if kubernetes is not None:
                self.kubernetes = kubernetes
            if inputs is not None:
                self.apply(inputs)
            elif (discovered is not None or kubernetes is not None) and self.model is not None:
                self.publish(self.model)

    def _whole_pending(self) -> bool:
        """Whether what waits is complete as it is (see Debounce): no more of it may be coming."""
        files_whole = self._pending is None or self._pending.whole
        return files_whole and self._objects_pending is None

    async def _settle(self) -> None:
        """Sleep until no new inputs arrived for `quiet`, or `max_delay` passed since the first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.debounce.max_delay
        while True:
            self._wake.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self._wake.wait(), min(self.debounce.quiet, remaining))
            except TimeoutError:
                return

    def apply(self, inputs: FileInputs) -> bool:
        """Validate and publish `inputs`; returns whether they became the served config."""
        self._files = inputs
        self.state.sources = [path for path, _ in inputs.texts] + [o.source for o in self.route_objects]
        try:
            if inputs.unreadable:
                raise ConfigError([Problem(p, 0, 0, "", f"cannot read: {why}") for p, why in inputs.unreadable])
            model = self._load(inputs)
        except ConfigError as exc:
            self._reject(exc.problems)
            return False
        finally:
            self.on_objects_checked()
        self.model = model
        self._inputs = {path: hashlib.sha256(text.encode()).hexdigest() for path, text in inputs.texts}
        self.publish(model)
        return True

    def _load(self, inputs: FileInputs) -> Model:
        """Files and RouteTables as one config; an invalid RouteTable is left out, not the rest.

        Problems in files reject everything (the last good config keeps serving), as before.
        Problems only in RouteTables drop those objects and the rest is loaded again; each round
        drops at least one object, so this ends.
        """
        objects = {o.source: o for o in self.route_objects}
        excluded: dict[str, list[Problem]] = {}
        try:
            while True:
                texts = [*inputs.texts, *((s, o.text) for s, o in objects.items() if s not in excluded)]
                try:
                    return load_texts(texts, self.policy, {s: o.namespace for s, o in objects.items()})
                except ConfigError as exc:
                    blamed = _by_source(p for p in exc.problems if p.path in objects)
                    excluded.update(blamed)
                    if not blamed or any(p.path not in objects for p in exc.problems):
                        raise
        finally:
            self.object_problems = {source: excluded.get(source, []) for source in objects}
            for source, problems in excluded.items():
                log.error("%s left out: %s", source, "; ".join(map(str, problems)))

    def publish(self, model: Model) -> None:
        """Translate `model`, with the discovered endpoints, for every node group and publish."""
        if self.kubernetes is not None and not self.kubernetes.synced:
            log.info("config valid; publishing once Kubernetes is synced")
            return
        started = time.perf_counter()
        model = model.with_discovered(self.discovered)
        if self.kubernetes is not None:
            model = model.with_kubernetes(self.kubernetes)
        groups = [DEFAULT_GROUP, *sorted({g for item in model.listeners for g in item.node_clusters})]
        built = self.translator.build(model, groups)
        snapshots = {
            group: Snapshot.from_resources(resources, self._snapshots.get(group))
            for group, resources in built.items()
            if group is not None
        }
        self._snapshots = snapshots
        self.on_build(time.perf_counter() - started)
        self.state.problems, self.state.applied_at = [], self.clock()
        if self.pinned is not None:
            self.state.held_version = snapshots[DEFAULT_GROUP].version
            log.info("config %s held: rollback pins %s", self.state.held_version, self.pinned)
            return
        if self._serve(snapshots):
            self._save_checkpoint()
            self.history.add(Published(self.state.version, self.state.applied_at, snapshots))
            self.state.history = [*self.state.history[-49:], (self.state.applied_at, self.state.version)]
            log.info("config %s published (%d node groups)", self.state.version, len(snapshots))
        self.state.serving = "files"

    def served_services(self) -> tuple[str, ...]:
        """Services Envoys are sent: declared in the files, or Kubernetes ports that routes use."""
        if self.model is None:
            return ()
        used = {ref.cluster_name for ref in self.model.kubernetes_targets()}
        return tuple(sorted({s.name for s in self.model.services} | used))

    def _serve(self, snapshots: Mapping[str, Snapshot]) -> bool:
        """Publish `snapshots` to the cache; True if anything changed."""
        default = snapshots[DEFAULT_GROUP]
        self.state.version = default.version
        return self.cache.publish(default, {g: s for g, s in snapshots.items() if g != DEFAULT_GROUP})

    def pin(self, version: str) -> str | None:
        """Serve an earlier version until `unpin`; returns its full version, None if not in history."""
        entry = self.history.find(version)
        if entry is None:
            return None
        self.pinned = entry.version
        self._serve(entry.groups)
        self.state.serving, self.state.held_version = "pinned", self._snapshots[DEFAULT_GROUP].version
        log.warning("rollback: serving %s until the pin is lifted", entry.version)
        return entry.version

    def unpin(self) -> None:
        """Lift a pin: serve what the sources give now."""
        if self.pinned is None:
            return
        self.pinned, self.state.held_version = None, ""
        self._serve(self._snapshots)
        self.state.serving = "files"
        log.warning("rollback lifted: serving %s", self.state.version)

    def restore(self, checkpoint: Checkpoint) -> None:
        """Serve a checkpoint until the sources give a valid config (marked on the status page)."""
        groups = dict(checkpoint.groups)
        default = groups.pop(DEFAULT_GROUP)
        self.cache.publish(default, groups)
        self._snapshots = dict(checkpoint.groups)
        self.state.version, self.state.serving = default.version, "checkpoint"
        log.warning(
            "serving checkpoint %s written at %.0f until the sources are valid", default.version, checkpoint.written_at
        )

    def _save_checkpoint(self) -> None:
        """Write the published snapshots to the state directory, after the pushes they start.

        Encoding and two fsyncs take milliseconds to seconds (a big mesh, a slow disk): done in a
        worker thread, never on the loop that pushes, and only once the push is usually over
        (AFTER_THE_PUSH). Changes that come faster are written newest only.
        """
        if self.checkpoints is not None:
            self.checkpoints.submit(functools.partial(encode, Checkpoint(self._snapshots, self.clock(), self._inputs)))

    def _reject(self, problems: list[Problem]) -> None:
        self.on_reject()
        self.state.problems, self.state.rejected_at = problems, self.clock()
        for problem in problems:
            log.error("invalid config, still serving the last good one: %s", problem)


def _by_source(problems: Iterable[Problem]) -> dict[str, list[Problem]]:
    found: dict[str, list[Problem]] = {}
    for problem in problems:
        found.setdefault(problem.path, []).append(problem)
    return found
