"""Rules on one service that pydantic cannot express field by field."""

from __future__ import annotations

from collections.abc import Iterator

from controlplane.dsl.policy import AddressPolicy
from controlplane.dsl.schema_services import ServiceSpec
from controlplane.dsl.types import parse_socket_address
from controlplane.dsl.yamltext import Path

_HASHED = ("ring_hash", "maglev")
_OPTION_POLICY = {
    "choices": ("least_request",),
    "min_ring_size": ("ring_hash",),
    "max_ring_size": ("ring_hash",),
    "table_size": ("maglev",),
}


def service_problems(service: ServiceSpec, policy: AddressPolicy) -> Iterator[tuple[Path, str]]:
    """(path inside the service, message) for every rule `service` breaks."""
    yield from _lb_problems(service)
    if service.discovery == "registry" and service.endpoints:
        yield ("endpoints",), "a service with 'discovery: registry' gets its endpoints from the registry: remove them"
    if service.kubernetes is not None and service.endpoints:
        yield ("endpoints",), "a service with 'kubernetes:' gets its endpoints from Kubernetes: remove them"
    if service.kubernetes is not None and service.discovery == "registry":
        yield ("discovery",), "'kubernetes:' and 'discovery: registry' are two sources of endpoints: choose one"
    yield from _endpoint_problems(service, policy)
    yield from _health_check_problems(service)


def _health_check_problems(service: ServiceSpec) -> Iterator[tuple[Path, str]]:
    hc = service.health_check
    if hc is None:
        return
    if hc.timeout > hc.interval:
        yield ("health_check", "timeout"), "timeout is longer than interval"
    if hc.grpc is not None and service.protocol == "http1":
        # Envoy refuses the cluster: "cluster must support HTTP/2 for gRPC healthchecking".
        message = "a gRPC health check needs protocol http2 or grpc (this service uses http1): set protocol: grpc"
        yield ("health_check", "grpc"), message


def _lb_problems(service: ServiceSpec) -> Iterator[tuple[Path, str]]:
    if service.hash_on and service.lb not in _HASHED:
        yield ("hash_on",), f"hash_on needs lb ring_hash or maglev (lb is {service.lb})"
    if service.lb in _HASHED and not service.hash_on:
        yield ("lb",), f"lb {service.lb} needs hash_on (header, cookie, source_ip or query)"
    if service.slow_start and service.lb not in ("round_robin", "least_request"):
        yield ("slow_start",), f"slow_start works with round_robin and least_request, not {service.lb}"
    options = service.lb_options
    if options is None:
        return
    for name, policies in _OPTION_POLICY.items():
        if getattr(options, name) is not None and service.lb not in policies:
            yield ("lb_options", name), f"{name} applies to lb {policies[0]}, not {service.lb}"
    low, high = options.min_ring_size, options.max_ring_size
    if low is not None and high is not None and low > high:
        yield ("lb_options", "min_ring_size"), "min_ring_size is larger than max_ring_size"
    if options.table_size is not None and not _is_prime(options.table_size):
        yield ("lb_options", "table_size"), f"maglev table_size must be prime ({options.table_size} is not)"


def _endpoint_problems(service: ServiceSpec, policy: AddressPolicy) -> Iterator[tuple[Path, str]]:
    seen: set[tuple[str, int]] = set()
    for i, endpoint in enumerate(service.endpoints):
        host, port = parse_socket_address(endpoint.address)
        refusal = policy.refusal(host, port)
        if refusal:
            yield ("endpoints", i), f"endpoint refused: {refusal}"
        if (host, port) in seen:
            yield ("endpoints", i), f"endpoint {endpoint.address} is listed twice"
        seen.add((host, port))


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n**0.5) + 1))
