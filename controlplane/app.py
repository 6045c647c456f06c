"""The composition root: wires sources, pipeline, cache, xDS server and status server.

Everything runs under one asyncio TaskGroup; no module-level state.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import uvicorn

from controlplane import alerting
from controlplane.app_kubernetes import KubernetesParts, kubernetes_parts
from controlplane.cache import SnapshotCache
from controlplane.cache.checkpoint import CheckpointError, load
from controlplane.dsl import AddressPolicy
from controlplane.errors import Problem
from controlplane.fileio import AFTER_THE_PUSH, LatestWriter
from controlplane.pipeline import Debounce, Pipeline
from controlplane.registry.v1 import registry_pb2_grpc
from controlplane.sources.files import FileSource
from controlplane.sources.kubernetes.source import KubernetesOptions
from controlplane.sources.registry import RegistryState, dump_leases
from controlplane.sources.registry_api import RegistryService, expire_leases
from controlplane.status.server import create_app
from controlplane.telemetry.alerts import AlertEngine
from controlplane.telemetry.counters import CounterDeltas
from controlplane.telemetry.metrics import Metrics, Readings
from controlplane.telemetry.otel import add_collector
from controlplane.telemetry.traffic import TrafficStore
from controlplane.tls import TlsError, TlsFiles, plaintext_refusal, read_tls, server_credentials
from controlplane.view import TRAFFIC_WINDOW, View
from controlplane.xds.authorization import NodeAuthorization
from controlplane.xds.grpc_server import create_server, set_serving
from controlplane.xds.limits import Limits
from controlplane.xds.registry import NodeRegistry
from controlplane.xds.server import DiscoveryServer

log = logging.getLogger(__name__)

REGISTRY_FILE = "registry.json"
SHUTDOWN_DEADLINE = 5.0
"""Seconds a graceful shutdown may take (Kubernetes' default grace period is 30s)."""


@dataclass(frozen=True)
class ServeOptions:
    """Settings of `controlplane serve`."""

    config_paths: tuple[str, ...]
    xds_address: str = "127.0.0.1:18000"
    status_address: str = "127.0.0.1:9000"
    policy: AddressPolicy = field(default_factory=AddressPolicy)
    debounce: Debounce = field(default_factory=Debounce)
    poll_interval: float = 0.05
    state_dir: Path | None = None
    """Where checkpoints are kept; None: no checkpoints."""
    admin_token: str | None = None
    """Bearer token for state-changing API calls (rollback); None: they are refused."""
    kubernetes: KubernetesOptions | None = None
    """Watch Kubernetes Services and EndpointSlices; None: files (and the registry) only."""
    limits: Limits = field(default_factory=Limits)
    """Streams, connections and names clients may hold on the xDS port."""
    tls: TlsFiles | None = None
    """mTLS on the xDS port (server certificate, key, CA of client certificates); None: plaintext."""
    insecure: bool = False
    """Allow plaintext xDS on a non-loopback address."""
    node_authorization: NodeAuthorization = field(default_factory=NodeAuthorization)
    """Which client certificate may claim which node (off: any certificate from the CA, any node)."""


def xds_credentials(options: ServeOptions) -> grpc.ServerCredentials | None:
    """The xDS port's credentials (None: plaintext), after refusing unsafe combinations (raises TlsError)."""
    if options.tls is None:
        _check_plaintext(options)
        return None
    if options.insecure:
        raise TlsError("--insecure contradicts --tls-cert: give one or the other")
    credentials = server_credentials(read_tls(options.tls))
    if not options.node_authorization.enabled:
        log.warning("node authorization is off: any certificate from %s may claim any node", options.tls.ca)
    return credentials


def _check_plaintext(options: ServeOptions) -> None:
    """Plaintext only on loopback, or anywhere with a loud --insecure; never with node authorization."""
    if options.node_authorization.enabled:
        raise TlsError("--node-authorization needs --tls-cert, --tls-key and --client-ca (identities are certificates)")
    if (refusal := plaintext_refusal(options.xds_address, options.insecure)) is not None:
        raise TlsError(refusal)
    if options.insecure:
        log.warning(
            "INSECURE: xDS in plaintext on %s (--insecure): whoever reaches it reads every route, "
            "claims any node and registers endpoints; see docs/security.md to turn on mTLS",
            options.xds_address,
        )


async def serve(options: ServeOptions) -> None:
    """Run until SIGINT or SIGTERM."""
    credentials = xds_credentials(options)
    cache, registry = SnapshotCache(), NodeRegistry()
    pipeline = Pipeline(cache, options.policy, options.debounce, state_dir=options.state_dir)
    source = FileSource(options.config_paths, options.poll_interval)
    kubernetes = kubernetes_parts(options.kubernetes, pipeline, options.policy) if options.kubernetes else None
    contacts = functools.partial(_contacts, source, kubernetes)
    leases, registry_api, lease_file = _registry(pipeline, options.policy, options.state_dir)
    traffic = TrafficStore()
    metrics = _metrics(cache, pipeline, registry, contacts, leases, traffic)
    initial = source.poll()
    if initial is None or not pipeline.apply(initial) or not cache.ready:
        _restore_or_wait(pipeline, options.state_dir)
    discovery = DiscoveryServer(
        cache, registry, observer=metrics, limits=options.limits, authorization=options.node_authorization
    )
    grpc_server = await _start_xds(options, discovery, credentials, registry_api, traffic)
    engine = AlertEngine()
    metrics.alert_counts = lambda: collections.Counter(a.name for a in engine.active.values())
    view = View(cache, pipeline, registry, metrics, traffic, engine)
    view.xds_security = _xds_security(options)
    view.source_checked_at = lambda: source.checked_at
    view.kubernetes = kubernetes.report if kubernetes else None
    metrics.endpoint_figures = view.endpoint_figures
    status = _status_server(view, options.status_address, options.admin_token)
    stop = asyncio.Event()
    _on_signals(stop)
    try:
        async with asyncio.TaskGroup() as group:
            gather = functools.partial(alerting.facts, discovery, pipeline, contacts, traffic)
            loops = [
                source.run(pipeline.submit),
                pipeline.run(),
                expire_leases(leases, registry_api),
                alerting.watch(engine, gather, pipeline),
            ]
            if kubernetes is not None:
                loops += kubernetes.loops(pipeline)
            tasks = [group.create_task(loop) for loop in loops]
            group.create_task(status.serve())
            await stop.wait()
            _exit_if_stuck(SHUTDOWN_DEADLINE)
            status.should_exit = True
            for task in tasks:
                task.cancel()
    finally:
        await grpc_server.stop(grace=1.0)
        _flush_state(pipeline.checkpoints, lease_file)


def _flush_state(*writers: LatestWriter | None) -> None:
    """Write what a change of the last 100 ms left to write (its delayed write was cancelled)."""
    for writer in writers:
        if writer is not None:
            writer.flush()


async def _start_xds(
    options: ServeOptions,
    discovery: DiscoveryServer,
    credentials: grpc.ServerCredentials | None,
    registry_api: Any,
    traffic: TrafficStore,
) -> grpc.aio.Server:
    """The xDS port (discovery, registry, stats collector, gRPC health), started; its health
    turns SERVING once the cache holds a first complete snapshot."""
    cache = discovery.cache
    grpc_server, health, port = create_server(discovery, options.xds_address, options.limits, credentials)
    registry_pb2_grpc.add_RegistryServicer_to_server(registry_api, grpc_server)
    add_collector(grpc_server, traffic, time.time, CounterDeltas(), admit=discovery.guard.admit)
    await grpc_server.start()
    await set_serving(health, cache.ready)
    background: set[asyncio.Task[None]] = set()

    def mark_serving() -> None:
        task = asyncio.ensure_future(set_serving(health, True))
        background.add(task)
        task.add_done_callback(background.discard)

    cache.subscribe(mark_serving)
    log.info("xDS listening on %s (port %d, %s)", options.xds_address, port, "mTLS" if credentials else "plaintext")
    return grpc_server


def _xds_security(options: ServeOptions) -> dict[str, Any]:
    """What the status API says about the xDS port's protection."""
    rules = options.node_authorization.rules
    return {
        "transport": "mTLS" if options.tls else "plaintext",
        "node_authorization": "on" if rules is not None else "off",
        "rules": len(rules or ()),
    }


def _metrics(
    cache: SnapshotCache,
    pipeline: Pipeline,
    registry: NodeRegistry,
    contacts: Callable[[], dict[str, float]],
    leases: RegistryState,
    traffic: TrafficStore,
) -> Metrics:
    """The process's metrics, reading gauges from the running parts at scrape time."""
    connections = registry.connections
    readings = Readings(
        connected=lambda: len(connections),
        behind=lambda: sum(1 for c in connections.values() if any(s.in_flight for s in c.session.states.values())),
        config_valid=lambda: cache.ready and not pipeline.state.problems,
        source_age=lambda: {name: time.time() - at if at else 0.0 for name, at in contacts().items()},
        registrations=lambda: len(leases.leases),
        quarantined=lambda: len(cache.quarantine.entries),
        services=lambda: _service_figures(traffic),
    )
    metrics = Metrics(readings)
    pipeline.on_build, pipeline.on_reject = metrics.build.observe, metrics.rejected.inc
    return metrics


def _contacts(files: FileSource, kubernetes: KubernetesParts | None) -> dict[str, float]:
    """When each source was last read or heard from (its sync age)."""
    found = {"files": files.checked_at}
    if kubernetes is not None:
        found["kubernetes"] = kubernetes.source.last_contact()
    return found


def _service_figures(traffic: TrafficStore) -> dict[str, tuple[float, float, float | None]]:
    now = time.time()
    result = {}
    for service in traffic.services():
        f = traffic.figures(service, now, TRAFFIC_WINDOW)
        result[service] = (f.rate, f.error_rate, f.p99_ms)
    return result


def _restore_or_wait(pipeline: Pipeline, state_dir: Path | None) -> None:
    """Without a valid config at start: serve the checkpoint if there is a sound one."""
    try:
        checkpoint = load(state_dir) if state_dir else None
    except CheckpointError as exc:
        log.error("checkpoint ignored: %s", exc)
        pipeline.state.problems.append(Problem(str(state_dir), 0, 0, "", f"checkpoint ignored: {exc}"))
        checkpoint = None
    if checkpoint is None:
        waiting = "the first Kubernetes sync" if pipeline.kubernetes is not None else "the files are fixed"
        log.error("no config to serve yet: Envoys will wait until %s", waiting)
        return
    pipeline.restore(checkpoint)


def _registry(
    pipeline: Pipeline, policy: AddressPolicy, state_dir: Path | None
) -> tuple[RegistryState, RegistryService, LatestWriter | None]:
    """The registry source, feeding its endpoints to the pipeline on every change; and the
    writer of its leases file (None without a state directory).

    With a state directory, leases survive a restart: registered endpoints stay in every Envoy
    instead of vanishing until their clients renew.
    """

    def declared() -> frozenset[str]:
        return pipeline.model.registry_services() if pipeline.model else frozenset()

    state = RegistryState(policy, declared)
    saved = state_dir / REGISTRY_FILE if state_dir else None
    if saved is not None and saved.exists():
        try:
            log.info("restored %d registry leases from %s", state.restore(saved.read_text("utf-8"), time.time()), saved)
            pipeline.discovered = state.endpoints()
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.error("registry leases in %s ignored: %s", saved, exc)

    # Register answers once the leases are on disk, which it waits for after the push.
    lease_file = LatestWriter(saved, AFTER_THE_PUSH) if saved is not None else None

    def changed() -> Awaitable[bool] | None:
        pipeline.submit_discovered(state.endpoints())
        if lease_file is None:
            return None
        leases = state.registrations()  # now: the state changes on; rendered by the writer
        return lease_file.submit(lambda: dump_leases(leases))

    return state, RegistryService(state, changed), lease_file


def _status_server(view: View, address: str, admin_token: str | None) -> uvicorn.Server:
    host, _, port = address.rpartition(":")
    app = create_app(view, admin_token)
    # Without a timeout uvicorn waits for every open connection to close before it exits.
    config = uvicorn.Config(
        app, host=host, port=int(port), log_level="warning", lifespan="off", timeout_graceful_shutdown=2
    )
    return uvicorn.Server(config)


def _exit_if_stuck(deadline: float) -> None:
    """Exit anyway if a graceful shutdown has not finished within `deadline` seconds."""

    def force() -> None:
        log.error("shutdown took longer than %.0fs: exiting now", deadline)
        os._exit(1)

    timer = threading.Timer(deadline, force)
    timer.daemon = True
    timer.start()


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
