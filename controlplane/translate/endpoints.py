"""Service -> ClusterLoadAssignment (EDS): endpoints grouped by failover priority and locality."""

from __future__ import annotations

from itertools import groupby

from envoy.config.core.v3 import base_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2

from controlplane.model import Endpoint, Service
from controlplane.translate.common import socket_address, uint32

REGISTRY_METADATA = "controlplane.registry"


def cluster_load_assignment(service: Service) -> endpoint_pb2.ClusterLoadAssignment:
    """The endpoints of `service`; an empty assignment is valid and lets a cluster finish warming."""
    return endpoint_pb2.ClusterLoadAssignment(
        cluster_name=service.name,
        endpoints=[locality_lb_endpoints(group) for group in _groups(service.endpoints)],
    )


def _groups(endpoints: tuple[Endpoint, ...]) -> list[list[Endpoint]]:
    """Endpoints grouped by (priority, region, zone) in that order; within a group by address."""
    key = _group_key
    ordered = sorted(endpoints, key=lambda e: (key(e), e.host, e.port))
    return [list(group) for _, group in groupby(ordered, key=key)]


def _group_key(endpoint: Endpoint) -> tuple[int, str, str]:
    return (endpoint.priority, endpoint.region, endpoint.zone)


def locality_lb_endpoints(group: list[Endpoint]) -> endpoint_components_pb2.LocalityLbEndpoints:
    """One locality at one priority."""
    first = group[0]
    locality = base_pb2.Locality(region=first.region, zone=first.zone)
    return endpoint_components_pb2.LocalityLbEndpoints(
        locality=locality if (first.region or first.zone) else None,
        priority=first.priority,
        lb_endpoints=[lb_endpoint(e) for e in group],
    )


def lb_endpoint(endpoint: Endpoint) -> endpoint_components_pb2.LbEndpoint:
    """One endpoint; the weight is written only when it differs from Envoy's default of 1.

    A draining endpoint is sent as DRAINING: Envoy finishes its requests and sends it no new
    ones. Registry labels go to the endpoint's metadata under `controlplane.registry`.
    """
    result = endpoint_components_pb2.LbEndpoint(
        endpoint=endpoint_components_pb2.Endpoint(address=socket_address(endpoint.host, endpoint.port)),
        load_balancing_weight=uint32(endpoint.weight) if endpoint.weight != 1 else None,
    )
    if endpoint.draining:
        result.health_status = health_check_pb2.HealthStatus.DRAINING
    if endpoint.metadata:
        result.metadata.filter_metadata[REGISTRY_METADATA].update(dict(endpoint.metadata))
    return result
