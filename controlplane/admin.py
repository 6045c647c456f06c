"""`controlplane history | diff | rollback`: talk to a running control plane's status API."""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from controlplane.render import dump
from controlplane.status.states import TYPES, type_state
from controlplane.translate.common import short_type


def add_commands(commands: Any) -> None:
    """Register status, history, diff and rollback on the CLI's subparsers."""
    status = commands.add_parser("status", help="connected Envoys and whether they are in sync")
    _add_address(status)
    status.set_defaults(handler=_status)
    history = commands.add_parser("history", help="list the versions kept for rollback")
    _add_address(history)
    history.set_defaults(handler=_history)
    diff = commands.add_parser("diff", help="show what changed between two kept versions")
    diff.add_argument("a")
    diff.add_argument("b")
    diff.add_argument("--node-cluster", default="", help="the node group to compare (default: the default group)")
    _add_address(diff)
    diff.set_defaults(handler=_diff)
    rollback = commands.add_parser("rollback", help="serve a kept version until lifted (needs the admin token)")
    rollback.add_argument("version", nargs="?", help="version to pin (omit with --lift)")
    rollback.add_argument("--lift", action="store_true", help="lift the pin: serve the current config again")
    rollback.add_argument("--admin-token-file", type=Path, required=True)
    _add_address(rollback)
    rollback.set_defaults(handler=_rollback)
    _add_silence(commands)


def _add_silence(commands: Any) -> None:
    silence = commands.add_parser(
        "silence", help="stop notifying an alert for a while; --list, --end ID (changes need the admin token)"
    )
    silence.add_argument("alert", nargs="?", help="alert name, e.g. EnvoyDisconnected")
    silence.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="narrow it (repeatable)")
    silence.add_argument("--for", dest="duration", default="1h", help="how long: 30m, 2h, 1d (at most 7d)")
    silence.add_argument("--comment", default="", help="why, for whoever reads the page")
    silence.add_argument("--list", action="store_true", help="list the silences in force")
    silence.add_argument("--end", metavar="ID", help="end a silence now")
    silence.add_argument("--admin-token-file", type=Path)
    _add_address(silence)
    silence.set_defaults(handler=_silence)


def _add_address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status-address", default="127.0.0.1:9000", metavar="HOST:PORT")


def call(address: str, path: str, method: str = "GET", body: Any = None, token: str = "") -> Any:
    """One JSON request to the status API; raises SystemExit with the server's message on error."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://{address}{path}", data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"controlplane: {exc.code}: {_detail(exc)}") from None
    except OSError as exc:
        raise SystemExit(f"controlplane: cannot reach {address}: {exc}") from None


def _detail(error: urllib.error.HTTPError) -> str:
    body = error.read()
    try:
        detail = json.loads(body).get("detail", error.reason)
    except ValueError:
        return body.decode(errors="replace")[:200] or str(error.reason)
    if isinstance(detail, list):  # FastAPI's validation errors: say which field and why
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail)
    return str(detail)


def status_lines(config: dict[str, Any], nodes: list[dict[str, Any]], now: float) -> list[str]:
    """The table `controlplane status` prints."""
    lines = [
        f"config {config['version'] or '-'} ({config['serving'] or 'nothing served'})"
        f"{', ' + str(len(config['problems'])) + ' problems' if config['problems'] else ''}"
        f"{', ' + str(len(config['quarantined'])) + ' quarantined' if config['quarantined'] else ''}"
    ]
    header = ["NODE", "CLUSTER", "ENVOY", "API", *(short for short, _ in TYPES), "CONNECTED"]
    rows = [header]
    for node in sorted(nodes, key=lambda n: n["node_id"]):
        by_type = {short_type(t["type_url"]): t for t in node["types"]}
        states = [type_state(by_type.get(long)) for _, long in TYPES]
        age = f"{int(now - node['connected_at'])}s"
        rows.append([node["node_id"], node["node_cluster"], node["envoy_version"] or "-", node["api"], *states, age])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return lines


def _status(args: argparse.Namespace) -> int:
    config = call(args.status_address, "/api/config")
    nodes = call(args.status_address, "/api/nodes")
    print("\n".join(status_lines(config, nodes, time.time())))
    return 0


def _history(args: argparse.Namespace) -> int:
    for entry in call(args.status_address, "/api/history"):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry["at"]))
        print(f"{entry['version']}  {stamp}{'  (pinned)' if entry['pinned'] else ''}")
    return 0


def _diff(args: argparse.Namespace) -> int:
    texts = []
    for version in (args.a, args.b):
        found = call(args.status_address, f"/api/history/{version}?node_cluster={args.node_cluster}")
        texts.append(dump(found["resources"], "yaml").splitlines(keepends=True))
    sys.stdout.writelines(difflib.unified_diff(texts[0], texts[1], fromfile=args.a, tofile=args.b))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    token = args.admin_token_file.read_text(encoding="utf-8").strip()
    if args.lift:
        call(args.status_address, "/api/rollback", "DELETE", token=token)
        print("pin lifted")
        return 0
    if not args.version:
        raise SystemExit("controlplane rollback: give a VERSION, or --lift")
    pinned = call(args.status_address, "/api/rollback", "POST", {"version": args.version}, token)["pinned"]
    print(f"pinned {pinned}: new changes are held until `controlplane rollback --lift`")
    return 0


DURATION = re.compile(r"^(\d+(?:\.\d+)?)([mhd])$")
MINUTES = {"m": 1, "h": 60, "d": 24 * 60}


def duration_minutes(text: str) -> float:
    """`30m`, `2h`, `1d` -> minutes; a clear SystemExit otherwise."""
    found = DURATION.match(text.strip())
    if not found:
        raise SystemExit(f"controlplane silence: --for {text!r}: use a number and m, h or d (30m, 2h, 1d)")
    return float(found.group(1)) * MINUTES[found.group(2)]


def _labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"controlplane silence: --label {pair!r}: use KEY=VALUE")
        labels[key] = value
    return labels


def _silence(args: argparse.Namespace) -> int:
    if args.list:
        for s in call(args.status_address, "/api/silences"):
            until = time.strftime("%Y-%m-%d %H:%M", time.localtime(s["until"]))
            labels = " ".join(f"{k}={v}" for k, v in sorted(s["labels"].items()))
            print(f"{s['id']}  {s['name']} {labels}  until {until}  {s['comment']}".rstrip())
        return 0
    if args.admin_token_file is None:
        raise SystemExit("controlplane silence: --admin-token-file is required to add or end a silence")
    token = args.admin_token_file.read_text(encoding="utf-8").strip()
    if args.end:
        call(args.status_address, f"/api/silences/{args.end}", "DELETE", token=token)
        print(f"silence {args.end} ended")
        return 0
    if not args.alert:
        raise SystemExit("controlplane silence: give an ALERT name, or --list, or --end ID")
    body = {
        "name": args.alert,
        "labels": _labels(args.label),
        "minutes": duration_minutes(args.duration),
        "comment": args.comment,
    }
    made = call(args.status_address, "/api/silences", "POST", body, token)
    until = time.strftime("%Y-%m-%d %H:%M", time.localtime(made["until"]))
    print(f"silence {made['id']}: {made['name']} not notified until {until} (this replica; repeat on the others)")
    return 0
