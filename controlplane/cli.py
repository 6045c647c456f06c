"""The `controlplane` command line: validate, render, demo."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Sequence

from controlplane.dsl import AddressPolicy, load_files
from controlplane.dsl.policy import LINK_LOCAL, Network
from controlplane.errors import ConfigError
from controlplane.model import Model
from controlplane.render import dump, message_to_data, resources_to_data
from controlplane.translate import build_resources
from controlplane.translate.static_bootstrap import static_bootstrap


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = _parser().parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        _parser().print_help()
        return 2
    result: int = handler(args)
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
    demo = commands.add_parser("demo", help="run the demo")
    demo.add_argument("--config", default="examples/routes.yaml")
    demo.set_defaults(handler=_demo)
    return parser


def _add_input_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="route files or directories of them")
    parser.add_argument("--envoy-admin-port", type=int, default=9901, help="refuse endpoints on this port")
    parser.add_argument("--deny-cidr", action="append", default=[], type=_network, help="refuse endpoints here")
    parser.add_argument("--allow-cidr", action="append", default=[], type=_network, help="only allow these")


def _network(text: str) -> Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _load(args: argparse.Namespace) -> Model | None:
    policy = AddressPolicy(
        envoy_admin_port=args.envoy_admin_port,
        denied=(*LINK_LOCAL, *args.deny_cidr),
        allowed=tuple(args.allow_cidr),
    )
    try:
        return load_files(args.paths, policy)
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
        data = message_to_data(static_bootstrap(resources, node_cluster=node_cluster))
    else:
        data = resources_to_data(resources)
    sys.stdout.write(dump(data, args.output))
    return 0


def _demo(args: argparse.Namespace) -> int:
    """Until the full demo lands: validate the example and show what one Envoy would receive."""
    print(f"controlplane demo: validating {args.config}", file=sys.stderr)
    code = main(["validate", args.config])
    if code == 0:
        code = main(["render", args.config, "--node-cluster", "edge"])
    return code
