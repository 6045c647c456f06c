"""Checkpoints: the last published snapshots on disk, so a restart can serve them at once.

One file, written to a temporary name, fsynced, renamed over the old one and the directory
fsynced: a crash leaves the old checkpoint or the new one, never a mix. A SHA-256 over the
content detects truncation and corruption; such a file is reported and never served.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2

from controlplane.cache.snapshot import Resource, Snapshot, TypeSnapshot
from controlplane.fileio import write_atomically
from controlplane.translate import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE

FORMAT = 1
FILE_NAME = "checkpoint.json"
_MESSAGES: dict[str, Any] = {
    CLUSTER_TYPE: cluster_pb2.Cluster,
    ENDPOINT_TYPE: endpoint_pb2.ClusterLoadAssignment,
    LISTENER_TYPE: listener_pb2.Listener,
    ROUTE_TYPE: route_pb2.RouteConfiguration,
}


class CheckpointError(Exception):
    """A checkpoint that exists but cannot be trusted."""


@dataclass(frozen=True)
class Checkpoint:
    """Snapshots per node group ("" is the default group), with when and from what they were made."""

    groups: Mapping[str, Snapshot]
    written_at: float
    inputs: Mapping[str, str]
    """Input name -> content hash of the inputs the snapshots were built from."""


def save(directory: Path, checkpoint: Checkpoint) -> Path:
    """Write `checkpoint` atomically and durably; returns its path."""
    final = directory / FILE_NAME
    write_atomically(final, encode(checkpoint))
    return final


def encode(checkpoint: Checkpoint) -> str:
    """The file's text: the checkpoint and a SHA-256 over it."""
    body = {
        "format": FORMAT,
        "written_at": checkpoint.written_at,
        "inputs": dict(checkpoint.inputs),
        "groups": {group: _encode(snapshot) for group, snapshot in sorted(checkpoint.groups.items())},
    }
    encoded = json.dumps(body, sort_keys=True)
    # The digest covers exactly this encoding (`load` checks it the same way); encoding once, not
    # twice, halves the cost for a big mesh.
    return f'{{"sha256": "{hashlib.sha256(encoded.encode()).hexdigest()}", {encoded[1:]}'


def load(directory: Path) -> Checkpoint | None:
    """The checkpoint in `directory`, None if there is none; CheckpointError if it is damaged."""
    path = directory / FILE_NAME
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint ({exc})") from None
    if not isinstance(document, dict) or document.pop("sha256", None) != _digest(document):
        raise CheckpointError(f"{path}: checksum mismatch (truncated or corrupted)")
    if document.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown format {document.get('format')!r}")
    groups = {group: _decode(types) for group, types in document["groups"].items()}
    return Checkpoint(groups=groups, written_at=float(document["written_at"]), inputs=dict(document["inputs"]))


def _encode(snapshot: Snapshot) -> dict[str, dict[str, str]]:
    return {
        type_url: {name: base64.b64encode(r.serialized).decode("ascii") for name, r in sorted(ts.resources.items())}
        for type_url, ts in snapshot.types.items()
    }


def _decode(types: Mapping[str, Mapping[str, str]]) -> Snapshot:
    result: dict[str, TypeSnapshot] = {}
    for type_url, resources in types.items():
        items = {}
        for name, encoded in resources.items():
            message = _MESSAGES[type_url]()
            message.ParseFromString(base64.b64decode(encoded))
            items[name] = Resource.of(name, message)
        result[type_url] = TypeSnapshot(type_url, items)
    return Snapshot(result)


def _digest(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
