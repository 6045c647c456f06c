"""The `controlplane` command line: validate, render, serve, bootstrap, demo."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from controlplane import admin, cli_types, register
from controlplane.app import ServeOptions, serve
from controlplane.bootstrap import BootstrapOptions, XdsTls, bootstrap
from controlplane.demo.plan import Ports
from controlplane.demo.run import DemoError, DemoOptions
from controlplane.demo.run import run as run_demo
from controlplane.dsl import AddressPolicy, load_files
from controlplane.dsl.policy import DEFAULT_DENIED
from controlplane.errors import ConfigError
from controlplane.fileio import write_atomically
from controlplane.model import Model
from controlplane.node_rules import load_node_authorization
from controlplane.overload import DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HEAP_BYTES, OverloadOptions
from controlplane.pipeline import Debounce
from controlplane.render import dump, message_to_data, resources_to_data
from controlplane.sources.kubernetes.source import KubernetesOptions
from controlplane.tls import TlsError, TlsFiles, channel_credentials, read_tls, tls_files
from controlplane.translate import build_resources
from controlplane.translate.static_bootstrap import static_bootstrap
from controlplane.xds.authorization import NodeAuthorization
from controlplane.xds.limits import Limits

CLIENT_TLS_FLAGS = ("--tls-cert", "--tls-key", "--server-ca")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = _parser().parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        _parser().print_help()
        return 2
    try:
        result: int = handler(args)
    except BrokenPipeError:
        # `controlplane diff A B | head`: the reader left; say nothing more, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="controlplane", description="xDS control plane for Envoy.")
    commands = parser.add_subparsers(title="commands")
    validate = commands.add_parser("validate", help="check route files; print every problem")
    _add_input_arguments(validate)
    validate.set_defaults(handler=_validate)
    render = commands.add_parser("render", help="print the Envoy resources route files produce")
    _add_input_arguments(render)
    render.add_argument("--node-cluster", help="render what Envoys of this node.cluster receive")
    render.add_argument("--output", choices=("yaml", "json"), default="yaml")
    render.add_argument("--static", action="store_true", help="print a static Envoy bootstrap instead")
    render.set_defaults(handler=_render)
    _add_serve_command(commands)
    _add_bootstrap_command(commands)
    reg = commands.add_parser("register", help="keep an endpoint registered until interrupted")
    reg.add_argument("--service", required=True, help="a service declared with 'discovery: registry'")
    reg.add_argument("--address", required=True, metavar="HOST:PORT", help="the endpoint (an IP address)")
    reg.add_argument(
        "--registry", default="127.0.0.1:18000", metavar="HOST:PORT[,HOST:PORT...]", help="every control-plane replica"
    )
    reg.add_argument("--ttl", default="10s", type=cli_types.duration, help="lease time to live (renewed every ttl/3)")
    reg.add_argument("--drain", default="0s", type=cli_types.duration, help="drain time on exit (0: the server's)")
    reg.add_argument("--weight", type=int, default=1)
    reg.add_argument("--zone", default="")
    reg.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE")
    _add_client_tls_arguments(reg, "PEM")
    reg.add_argument("--server-name", default="", help="with --tls-cert: name the replicas' certificate carries")
    reg.set_defaults(handler=_register)
    admin.add_commands(commands)
    demo = commands.add_parser("demo", help="run a highly available gateway on loopback, with a guide")
    demo.add_argument("--config", type=Path, default=Path("examples/demo/routes.yaml"), help="the routes template")
    demo.add_argument("--workdir", type=Path, default=Path(".demo"), help="routes to edit, bootstraps, logs")
    demo.add_argument("--gateway-port", type=int, default=8080, help="the port both Envoy gateways serve")
    demo.add_argument("--status-port", type=int, default=9000, help="status page of replica 1 (replica 2: +1)")
    demo.add_argument("--port-base", type=int, default=18000, help="xDS, upstream and admin ports start here")
    demo.add_argument(
        "--fail-after", type=cli_types.duration, default="45s", help="when reviews-2 starts answering 500"
    )
    demo.add_argument("--rate", type=float, default=10.0, help="requests/s of the traffic generator (0: none)")
    demo.add_argument("--duration", type=cli_types.duration, help="stop by itself after this long (default: at Ctrl-C)")
    demo.set_defaults(handler=_demo)
    return parser


def _add_bootstrap_command(commands: Any) -> None:
    boot = commands.add_parser("bootstrap", help="print an Envoy bootstrap that connects to controlplane")
    boot.add_argument("--node-id", required=True)
    boot.add_argument("--node-cluster", required=True)
    boot.add_argument("--xds", required=True, metavar="HOST:PORT[,HOST:PORT...]", type=cli_types.xds_addresses)
    boot.add_argument("--admin-port", type=int, default=9901)
    boot.add_argument("--api", choices=("sotw", "delta"), default="sotw")
    boot.add_argument("--keepalive-interval", default="5s", type=cli_types.duration, help="HTTP/2 ping interval to xDS")
    boot.add_argument("--keepalive-timeout", default="3s", type=cli_types.duration, help="ping answer deadline")
    boot.add_argument("--stats-interval", default="5s", type=cli_types.duration, help="stats push interval (0s: none)")
    heap_help = "overload manager heap ceiling, e.g. 400Mi (default 1Gi; 0: none)"
    boot.add_argument(
        "--max-heap", default=DEFAULT_MAX_HEAP_BYTES, type=cli_types.max_heap, metavar="SIZE", help=heap_help
    )
    cap_help = f"global downstream connection cap (default {DEFAULT_MAX_CONNECTIONS}; 0: none)"
    boot.add_argument(
        "--max-connections", default=DEFAULT_MAX_CONNECTIONS, type=cli_types.count, metavar="N", help=cap_help
    )
    boot.add_argument("--output", type=Path, metavar="FILE", help="write it to FILE (atomically) instead of stdout")
    _add_client_tls_arguments(boot, "PEM, a path on Envoy's machine")
    boot.add_argument("--xds-server-name", default="", help="with --tls-cert: name the server certificate must carry")
    boot.set_defaults(handler=_bootstrap)


def _add_serve_command(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the control plane")
    serve.add_argument("--config", action="append", default=[], metavar="PATH", help="route file or directory")
    serve.add_argument("--xds-address", default="127.0.0.1:18000", metavar="HOST:PORT")
    serve.add_argument("--status-address", default="127.0.0.1:9000", metavar="HOST:PORT")
    serve.add_argument("--debounce", default="10ms", type=cli_types.duration, help="quiet time before applying edits")
    serve.add_argument(
        "--debounce-max", default="100ms", type=cli_types.duration, help="longest wait under steady edits"
    )
    serve.add_argument(
        "--min-push-interval", default="150ms", type=cli_types.duration, help="pushes under sustained churn"
    )
    serve.add_argument(
        "--poll-interval",
        default="20ms",
        type=cli_types.duration,
        help="file check interval where inotify is unavailable",
    )
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    serve.add_argument("--state-dir", type=Path, help="keep checkpoints here; served at start if the files fail")
    serve.add_argument("--admin-token-file", type=Path, help="bearer token for rollback (else: read-only API)")
    _add_tls_arguments(serve)
    _add_policy_arguments(serve)
    _add_kubernetes_arguments(serve)
    _add_limit_arguments(serve)
    serve.set_defaults(handler=_serve)


LIMIT_FLAGS = {
    "streams_per_peer": "open RPCs per client IP address on the xDS port",
    "streams": "open RPCs on the xDS port",
    "connections": "open connections to the xDS port",
    "names_per_stream": "resource names one xDS stream may subscribe to",
}
"""Fields of xds.limits.Limits, each set by `--max-<field>` (underscores as dashes)."""


def _add_limit_arguments(serve: argparse.ArgumentParser) -> None:
    defaults = Limits()
    for field, text in LIMIT_FLAGS.items():
        flag = "--max-" + field.replace("_", "-")
        serve.add_argument(flag, type=cli_types.positive, default=getattr(defaults, field), help=text)


def _add_tls_arguments(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--tls-cert", type=Path, help="serve xDS over mTLS: server certificate chain (PEM)")
    serve.add_argument("--tls-key", type=Path, help="with --tls-cert: its private key (PEM)")
    serve.add_argument("--client-ca", type=Path, help="with --tls-cert: CA of the Envoys' client certificates (PEM)")
    serve.add_argument(
        "--node-authorization", type=Path, metavar="FILE", help="with --tls-cert: which identity may claim which node"
    )
    serve.add_argument("--insecure", action="store_true", help="allow plaintext xDS on a non-loopback address")


def _add_client_tls_arguments(parser: argparse.ArgumentParser, whose: str) -> None:
    """mTLS to the control plane's xDS port: certificate, key and the CA of the server's certificate."""
    parser.add_argument("--tls-cert", metavar="FILE", help=f"mTLS to the xDS port: client certificate chain ({whose})")
    parser.add_argument("--tls-key", metavar="FILE", help="with --tls-cert: its private key (PEM)")
    parser.add_argument("--server-ca", metavar="FILE", help="with --tls-cert: CA of the control plane's certificate")


def _client_tls(args: argparse.Namespace, name_flag: str, name: str) -> TlsFiles | None:
    """The client's TLS files, or None; raises TlsError when only some are given, or a server name without them."""
    cert, key, ca = (Path(p) if p else None for p in (args.tls_cert, args.tls_key, args.server_ca))
    found = tls_files(cert, key, ca, flags=CLIENT_TLS_FLAGS)
    if found is None and name:
        raise TlsError(f"{name_flag} needs {', '.join(CLIENT_TLS_FLAGS)}")
    return found


def _add_kubernetes_arguments(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--kubernetes", action="store_true", help="discover Services and EndpointSlices")
    serve.add_argument("--kubeconfig", help="with --kubernetes: this kubeconfig (default: in-cluster, then ~/.kube)")
    serve.add_argument("--namespace", action="append", default=[], help="with --kubernetes: only this namespace")
    serve.add_argument("--namespace-selector", default="", help="with --kubernetes: namespaces with these labels")
    serve.add_argument("--leader-namespace", help="with --kubernetes: namespace of the Lease (default: POD_NAMESPACE)")
    serve.add_argument("--leader-lease", default="controlplane-leader", help="with --kubernetes: the Lease's name")


def _add_input_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="route files or directories of them")
    _add_policy_arguments(parser)


def _add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--envoy-admin-port", type=int, default=9901, help="refuse endpoints on this port")
    parser.add_argument(
        "--deny-cidr", action="append", default=[], type=cli_types.network, help="refuse endpoints here"
    )
    parser.add_argument("--allow-cidr", action="append", default=[], type=cli_types.network, help="only allow these")
    parser.add_argument("--allow-link-local", action="store_true", help="allow link-local and cloud metadata endpoints")
    parser.add_argument(
        "--allow-envoy-admin-port", action="store_true", help="allow loopback endpoints on --envoy-admin-port"
    )


def _policy(args: argparse.Namespace) -> AddressPolicy:
    return AddressPolicy(
        envoy_admin_port=None if args.allow_envoy_admin_port else args.envoy_admin_port,
        denied=(*(() if args.allow_link_local else DEFAULT_DENIED), *args.deny_cidr),
        allowed=tuple(args.allow_cidr),
    )


def _load(args: argparse.Namespace) -> Model | None:
    try:
        return load_files(args.paths, _policy(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def _validate(args: argparse.Namespace) -> int:
    model = _load(args)
    if model is None:
        return 1
    print(f"ok: {len(model.listeners)} listeners, {len(model.services)} services", file=sys.stderr)
    return 0


def _render(args: argparse.Namespace) -> int:
    model = _load(args)
    if model is None:
        return 1
    resources = build_resources(model, args.node_cluster)
    if args.static:
        node_cluster = args.node_cluster or "static"
        bootstrap = static_bootstrap(resources, node_cluster=node_cluster, admin_port=args.envoy_admin_port)
        data = message_to_data(bootstrap)
    else:
        data = resources_to_data(resources)
    sys.stdout.write(dump(data, args.output))
    return 0


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        options = _serve_options(args)
    except (TlsError, ConfigError) as exc:
        problems = exc.problems if isinstance(exc, ConfigError) else [exc]
        for problem in problems:
            print(f"controlplane serve: {problem}", file=sys.stderr)
        return 2
    if not options.config_paths and options.kubernetes is None:
        print("controlplane serve: give --config PATH, --kubernetes, or both", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(options))
    except TlsError as exc:
        print(f"controlplane serve: {exc}", file=sys.stderr)
        return 2
    return 0


def _serve_options(args: argparse.Namespace) -> ServeOptions:
    """The options of `serve`; raises TlsError or ConfigError (the node authorization file)."""
    rules = load_node_authorization(args.node_authorization) if args.node_authorization else NodeAuthorization()
    return ServeOptions(
        config_paths=tuple(args.config),
        xds_address=args.xds_address,
        status_address=args.status_address,
        policy=_policy(args),
        debounce=Debounce(
            quiet=args.debounce, max_delay=max(args.debounce, args.debounce_max), min_interval=args.min_push_interval
        ),
        poll_interval=args.poll_interval,
        state_dir=args.state_dir,
        admin_token=args.admin_token_file.read_text(encoding="utf-8").strip() if args.admin_token_file else None,
        kubernetes=_kubernetes_options(args),
        limits=Limits(**{field: getattr(args, f"max_{field}") for field in LIMIT_FLAGS}),
        tls=tls_files(args.tls_cert, args.tls_key, args.client_ca),
        insecure=args.insecure,
        node_authorization=rules,
    )


def _kubernetes_options(args: argparse.Namespace) -> KubernetesOptions | None:
    if not args.kubernetes:
        return None
    options = KubernetesOptions(
        kubeconfig=args.kubeconfig, namespaces=tuple(args.namespace), namespace_selector=args.namespace_selector
    )
    if args.leader_namespace:
        options = dataclasses.replace(options, leader_namespace=args.leader_namespace)
    return dataclasses.replace(options, leader_name=args.leader_lease)


def _bootstrap(args: argparse.Namespace) -> int:
    try:
        files = _client_tls(args, "--xds-server-name", args.xds_server_name)
    except TlsError as exc:
        print(f"controlplane bootstrap: {exc}", file=sys.stderr)
        return 2
    options = BootstrapOptions(
        node_id=args.node_id,
        node_cluster=args.node_cluster,
        xds=args.xds,
        admin_port=args.admin_port,
        delta=args.api == "delta",
        keepalive_interval_ms=round(args.keepalive_interval * 1000),
        keepalive_timeout_ms=round(args.keepalive_timeout * 1000),
        stats_interval_ms=round(args.stats_interval * 1000),
        tls=XdsTls(str(files.cert), str(files.key), str(files.ca), args.xds_server_name) if files else None,
        overload=OverloadOptions(max_heap_bytes=args.max_heap, max_connections=args.max_connections),
    )
    text = dump(message_to_data(bootstrap(options)), "yaml")
    if args.output:
        write_atomically(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def _register(args: argparse.Namespace) -> int:
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host, _, port = args.address.rpartition(":")
    if not (port.isascii() and port.isdigit()):
        print(f"controlplane register: --address {args.address!r} is not HOST:PORT", file=sys.stderr)
        return 2
    metadata = tuple((key, value) for key, _, value in (item.partition("=") for item in args.metadata))
    try:
        files = _client_tls(args, "--server-name", args.server_name)
        credentials = channel_credentials(read_tls(files)) if files else None
    except TlsError as exc:
        print(f"controlplane register: {exc}", file=sys.stderr)
        return 2
    registration = register.Registration(
        service=args.service,
        address=host.strip("[]"),
        port=int(port),
        replicas=tuple(filter(None, (r.strip() for r in args.registry.split(",")))),
        ttl_ms=round(args.ttl * 1000),
        weight=args.weight,
        zone=args.zone,
        metadata=metadata,
        drain_ms=round(args.drain * 1000),
        credentials=credentials,
        server_name=args.server_name,
    )
    asyncio.run(register.run(registration))
    return 0


def _demo(args: argparse.Namespace) -> int:
    options = DemoOptions(
        ports=Ports(base=args.port_base, gateway=args.gateway_port, status=args.status_port),
        template=args.config,
        workdir=args.workdir,
        fail_after=args.fail_after,
        duration=args.duration,
        rate=args.rate,
    )
    try:
        return run_demo(options)
    except DemoError as exc:
        print(f"controlplane demo: {exc}", file=sys.stderr)
        return 2
