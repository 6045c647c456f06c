"""Services and EndpointSlices (JSON as the API server sends it) -> model `DiscoveredPort`s.

Pure functions: the same objects in any order give the same ports. The endpoint conditions map
as the EndpointSlice API defines them: `ready` endpoints take traffic; `serving` but
`terminating` ones drain (requests in flight finish, no new ones); any other endpoint is left out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from controlplane.dsl.policy import AddressPolicy
from controlplane.model import DiscoveredPort, Endpoint, Protocol
from controlplane.sources.kubernetes.client import JSON

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
ZONE_LABEL = "topology.kubernetes.io/zone"
_APP_PROTOCOLS = {"kubernetes.io/h2c": Protocol.HTTP2, "h2c": Protocol.HTTP2, "grpc": Protocol.GRPC}
_LOCAL_NAMES = ("localhost", "localhost.localdomain")


@dataclass(frozen=True)
class Refusal:
    """An object (or part of one) left out, and why: shown on the status page and logged."""

    object: str
    """`Service shop/users`, `EndpointSlice shop/users-abc12`."""
    message: str


def discovered_ports(
    services: list[JSON], slices: list[JSON], policy: AddressPolicy, wanted: Callable[[str], bool] = lambda ns: True
) -> tuple[tuple[DiscoveredPort, ...], list[Refusal]]:
    """Every TCP port of every Service in a wanted namespace, with its endpoints, sorted."""
    by_service: dict[tuple[str, str], list[JSON]] = {}
    for item in slices:
        meta = item.get("metadata", {})
        owner = meta.get("labels", {}).get(SERVICE_NAME_LABEL)
        if owner:
            by_service.setdefault((meta.get("namespace", ""), owner), []).append(item)
    ports: list[DiscoveredPort] = []
    refusals: list[Refusal] = []
    for service in services:
        meta = service.get("metadata", {})
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        if not wanted(namespace):
            continue
        found = _service_ports(service, by_service.get((namespace, name), []), policy, refusals)
        ports.extend(found)
    return tuple(sorted(ports)), sorted(refusals, key=lambda r: (r.object, r.message))


def _service_ports(
    service: JSON, slices: list[JSON], policy: AddressPolicy, refusals: list[Refusal]
) -> Iterator[DiscoveredPort]:
    meta, spec = service.get("metadata", {}), service.get("spec", {})
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    if spec.get("type") == "ExternalName":
        dns_name = str(spec.get("externalName", "")).rstrip(".").lower()
        refusal = _external_name_refusal(dns_name, spec.get("ports") or [], policy)
        if refusal:
            refusals.append(Refusal(f"Service {namespace}/{name}", refusal))
            return
    else:
        dns_name = ""
    for port in spec.get("ports") or []:
        if port.get("protocol", "TCP") != "TCP":
            continue
        port_name = port.get("name", "") or ""
        endpoints = () if dns_name else _endpoints(slices, port_name, policy, refusals)
        yield DiscoveredPort(
            namespace=namespace,
            name=name,
            port=int(port["port"]),
            port_name=port_name,
            endpoints=endpoints,
            dns_name=dns_name,
            protocol=_APP_PROTOCOLS.get(port.get("appProtocol", ""), Protocol.HTTP1),
        )


def _external_name_refusal(dns_name: str, ports: list[JSON], policy: AddressPolicy) -> str:
    """Why Envoy must not resolve `dns_name`: it would reach the proxy itself or a metadata service."""
    if not dns_name:
        return "an ExternalName Service needs spec.externalName"
    if dns_name in _LOCAL_NAMES or dns_name.endswith(".localhost"):
        return f"externalName {dns_name!r} is the proxy's own host (loopback)"
    try:
        address = ipaddress.ip_address(dns_name)
    except ValueError:
        return ""
    if address.is_loopback:
        return f"externalName {dns_name} is a loopback address"
    for port in ports or [{"port": 0}]:
        refusal = policy.refusal(str(address), int(port.get("port", 0)))
        if refusal:
            return f"externalName refused: {refusal}"
    return ""


def _endpoints(
    slices: list[JSON], port_name: str, policy: AddressPolicy, refusals: list[Refusal]
) -> tuple[Endpoint, ...]:
    """The endpoints of one Service port over all its slices; a ready copy beats a draining one."""
    chosen: dict[tuple[str, int], Endpoint] = {}
    for item in slices:
        number = _slice_port(item, port_name)
        if number is None or item.get("addressType", "IPv4") not in ("IPv4", "IPv6"):
            continue
        for endpoint in _slice_endpoints(item, number, policy, refusals):
            key = (endpoint.host, endpoint.port)
            if key not in chosen or chosen[key].draining:
                chosen[key] = endpoint
    return tuple(sorted(chosen.values()))


def _slice_port(item: JSON, port_name: str) -> int | None:
    """The target port a slice gives the Service port called `port_name` (slices name them alike)."""
    for port in item.get("ports") or []:
        if (port.get("name") or "") == port_name and port.get("protocol", "TCP") == "TCP" and port.get("port"):
            return int(port["port"])
    return None


def _slice_endpoints(item: JSON, port: int, policy: AddressPolicy, refusals: list[Refusal]) -> Iterator[Endpoint]:
    where = f"EndpointSlice {item.get('metadata', {}).get('namespace', '')}/{item.get('metadata', {}).get('name', '')}"
    for entry in item.get("endpoints") or []:
        state = _state(entry.get("conditions") or {})
        if state is None:
            continue
        zone = entry.get("zone") or (entry.get("topology") or {}).get(ZONE_LABEL, "")
        for address in entry.get("addresses") or []:
            host = _address(address)
            refusal = policy.refusal(host, port) if host else f"{address!r} is not an IP address"
            if refusal:
                refusals.append(Refusal(where, refusal))
                continue
            yield Endpoint(host=host, port=port, zone=zone, draining=state == "draining")


def _state(conditions: JSON) -> str | None:
    """`ready`, `draining` or None (left out). Unset `ready` means ready, as the API defines."""
    ready = conditions.get("ready") is not False
    terminating = conditions.get("terminating") is True
    serving = conditions.get("serving", ready) is not False
    if ready and not terminating:
        return "ready"
    if serving and terminating:
        return "draining"
    return None


def _address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""
