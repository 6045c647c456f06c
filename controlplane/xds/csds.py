"""Client Status Discovery Service: what every connected Envoy was sent and accepted, over gRPC.

Tools such as `istioctl proxy-status`-like clients ask for it; answers come from the same stream
state the status page reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.service.status.v3 import csds_pb2, csds_pb2_grpc
from google.protobuf import any_pb2

from controlplane.xds.authorization import NodeGuard
from controlplane.xds.registry import Connection, NodeRegistry

_ACKED = 3  # envoy.admin.v3.ClientResourceStatus.ACKED
_NACKED = 4


def client_configs(registry: NodeRegistry, request: Any) -> list[csds_pb2.ClientConfig]:
    """One ClientConfig per open stream whose node id a matcher in `request` accepts (all if none)."""
    return [
        client_config(c, include=not request.exclude_resource_contents)
        for c in registry.connections.values()
        if _matches(request, c.node_id)
    ]


def client_config(connection: Connection, include: bool) -> csds_pb2.ClientConfig:
    """The resources one Envoy accepted, per type, with its state (synced, or NACKed)."""
    config = csds_pb2.ClientConfig(node=base_pb2.Node(id=connection.node_id, cluster=connection.node_group))
    for type_url, state in sorted(connection.session.states.items()):
        nacked = state.last_nack is not None and state.last_nack.at >= state.acked_at
        status = csds_pb2.ERROR if nacked else (csds_pb2.STALE if state.in_flight else csds_pb2.SYNCED)
        for name, resource in sorted(state.acked.items()):
            entry = config.generic_xds_configs.add(
                type_url=type_url,
                name=name,
                version_info=resource.version,
                config_status=status,
                client_status=_NACKED if nacked else _ACKED,
            )
            if include:
                entry.xds_config.CopyFrom(any_pb2.Any(type_url=type_url, value=resource.serialized))
    return config


def _matches(request: Any, node_id: str) -> bool:
    if not request.node_matchers:
        return True
    for matcher in request.node_matchers:
        wanted = matcher.node_id
        if (wanted.exact and wanted.exact == node_id) or (wanted.prefix and node_id.startswith(wanted.prefix)):
            return True
    return False


class ClientStatusService(csds_pb2_grpc.ClientStatusDiscoveryServiceServicer):  # type: ignore[misc]
    """FetchClientStatus (unary) and StreamClientStatus (one answer per request).

    With node authorization on, a request's `node` is checked like an Envoy's; a request without
    one needs an identity that some rule names.
    """

    def __init__(self, registry: NodeRegistry, guard: NodeGuard | None = None) -> None:
        self.registry = registry
        self.guard = guard or NodeGuard()

    async def FetchClientStatus(self, request: Any, context: Any) -> Any:
        await self._admit(request, context)
        return csds_pb2.ClientStatusResponse(config=client_configs(self.registry, request))

    async def StreamClientStatus(self, requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        async for request in requests:
            await self._admit(request, context)
            yield csds_pb2.ClientStatusResponse(config=client_configs(self.registry, request))

    async def _admit(self, request: Any, context: Any) -> None:
        node = request.node
        if node.id or node.cluster:
            await self.guard.admit(context, node.id, node.cluster)
        else:
            await self.guard.admit_without_node(context)
