"""Responses as bytes on the wire, each distinct one built and serialized once for every stream.

A change reaches every Envoy in the same state with the same response: the same type, version and
resources. Built per stream, 1,000 Envoys reconnecting meant 1,000 copies of a full CDS and EDS
alive at once (message, then its serialization); here the first stream to need a response builds
it, later streams in the same state send the same bytes. gRPC sends them through an identity
serializer (`payload`).

Nonces are shared too, which the protocol allows: a nonce only has to tell one stream's responses
apart. The one reuse that would confuse a stream, the nonce it sent last for that type (requests
still in flight name it), is never handed out: `avoid` gets a response of its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2

from controlplane.cache.snapshot import Resource

MAX_SHARED_BYTES = 32 * 1024 * 1024
"""Bytes of responses kept for other streams until the next snapshot; past it, responses are
built per stream. Enough for the first sync of a ~10,000-service mesh."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One serialized DiscoveryResponse or DeltaDiscoveryResponse, and what logs and metrics need of it."""

    type_url: str
    nonce: str
    count: int
    """Resources carried."""
    payload: bytes


def payload(response: Outgoing) -> bytes:
    """gRPC's response serializer: the bytes are ready."""
    return response.payload


class Wire:
    """Builds responses, sharing each distinct one between streams until `clear` (a new snapshot)."""

    def __init__(self, max_bytes: int = MAX_SHARED_BYTES) -> None:
        self._nonces = itertools.count(1)
        self._shared: dict[Hashable, Outgoing] = {}
        self._bytes = 0
        self._max_bytes = max_bytes

    def clear(self) -> None:
        """Forget shared responses: the snapshots changed, streams will need others."""
        self._shared, self._bytes = {}, 0

    def sotw(self, type_url: str, version: str, carried: Sequence[Resource], everything: bool, avoid: str) -> Outgoing:
        """A DiscoveryResponse of `version` carrying `carried` (`everything`: all of `version`'s resources)."""
        # `version` hashes every name and version the stream should hold, so it and the carried
        # names say exactly which bytes go out; "everything" spares hashing thousands of names.
        key = (type_url, version, True) if everything else (type_url, version, tuple(r.name for r in carried))

        def build(nonce: str) -> Any:
            resources = [any_pb2.Any(type_url=type_url, value=r.serialized) for r in carried]
            return discovery_pb2.DiscoveryResponse(
                version_info=version, type_url=type_url, nonce=nonce, resources=resources
            )

        return self._shared_or_built(key, avoid, type_url, len(carried), build)

    def delta(
        self, type_url: str, version: str, changed: Sequence[Resource], removed: Sequence[str], avoid: str
    ) -> Outgoing:
        """A DeltaDiscoveryResponse with `changed` resources and `removed` names, for a stream at `version`."""
        key = (type_url, version, tuple(r.name for r in changed), tuple(removed))

        def build(nonce: str) -> Any:
            return discovery_pb2.DeltaDiscoveryResponse(
                system_version_info=version,
                type_url=type_url,
                nonce=nonce,
                resources=[_delta_resource(type_url, r) for r in changed],
                removed_resources=removed,
            )

        return self._shared_or_built(key, avoid, type_url, len(changed), build)

    def _shared_or_built(
        self, key: Hashable, avoid: str, type_url: str, count: int, build: Callable[[str], Any]
    ) -> Outgoing:
        """The shared response under `key`, unless its nonce is `avoid`; else `build(new nonce)`,
        serialized and kept for the next streams while under the byte budget."""
        found = self._shared.get(key)
        if found is not None and found.nonce != avoid:
            return found
        nonce = str(next(self._nonces))
        response = Outgoing(type_url, nonce, count, build(nonce).SerializeToString())
        if self._bytes + len(response.payload) <= self._max_bytes:
            self._shared[key] = response
            self._bytes += len(response.payload)
        return response


def _delta_resource(type_url: str, resource: Resource) -> discovery_pb2.Resource:
    return discovery_pb2.Resource(
        name=resource.name,
        version=resource.version,
        resource=any_pb2.Any(type_url=type_url, value=resource.serialized),
    )
