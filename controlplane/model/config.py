"""The whole model: listeners and services, plus where each came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from controlplane.model.alerts import AlertRules
from controlplane.model.kubernetes import DiscoveredPort, KubernetesState
from controlplane.model.routes import Listener, referenced_services
from controlplane.model.services import Endpoint, KubernetesRef, Protocol, Service


@dataclass(frozen=True)
class Origin:
    """Where a model object was defined, so later errors (e.g. an Envoy NACK) can point at it."""

    source: str
    """A file path, or a Kubernetes object reference."""
    line: int = 0


@dataclass(frozen=True)
class Model:
    """Everything the translator needs; listeners and services sorted by name."""

    listeners: tuple[Listener, ...] = ()
    services: tuple[Service, ...] = ()
    alerts: AlertRules = field(default_factory=AlertRules)
    """Alert rules (the defaults unless a file has an `alerts:` block)."""
    origins: dict[str, Origin] = field(default_factory=dict, compare=False, hash=False)
    """`listener/NAME` or `service/NAME` -> where it was defined."""

    def registry_services(self) -> frozenset[str]:
        """Names of the services whose endpoints come from the registry."""
        return frozenset(s.name for s in self.services if s.discovery == "registry")

    def with_discovered(self, endpoints: Mapping[str, tuple[Endpoint, ...]]) -> Model:
        """This model with registry services given `endpoints` (missing names: none)."""
        services = tuple(
            replace(s, endpoints=tuple(sorted(endpoints.get(s.name, ())))) if s.discovery == "registry" else s
            for s in self.services
        )
        return replace(self, services=services)

    def with_kubernetes(self, state: KubernetesState) -> Model:
        """This model with Kubernetes Service ports joined in.

        Every Service port becomes a cluster; a route target spelling a port another way (its
        number) gets its own; one naming a Service that does not exist gets an empty cluster, so
        Envoy answers 503 instead of refusing the route table. Declared `kubernetes:` services
        take their port's endpoints.
        """
        declared = {s.name: _joined(s, state.find(s.kubernetes)) if s.kubernetes else s for s in self.services}
        wanted = {port.ref for port in state.ports} | self.kubernetes_targets()
        for ref in wanted:
            port = state.find(ref)
            if ref.cluster_name not in declared:
                protocol = port.protocol if port else Protocol.HTTP1
                default = Service(name=ref.cluster_name, discovery="kubernetes", kubernetes=ref, protocol=protocol)
                declared[ref.cluster_name] = _joined(default, port)
        return replace(self, services=tuple(declared[name] for name in sorted(declared)))

    def kubernetes_targets(self) -> set[KubernetesRef]:
        """Route targets and mirrors that name a Kubernetes Service port directly."""
        return {ref for ref in map(KubernetesRef.parse, referenced_services(self.listeners)) if ref is not None}

    def service(self, name: str) -> Service | None:
        """The service called `name`, if any."""
        for service in self.services:
            if service.name == name:
                return service
        return None


def _joined(service: Service, port: DiscoveredPort | None) -> Service:
    """`service` with the endpoints (or DNS name) of `port`; none when the port is unknown."""
    if port is None:
        return replace(service, endpoints=(), dns_name="", dns_port=0)
    dns_port = port.port if port.dns_name else 0
    return replace(service, endpoints=port.endpoints, dns_name=port.dns_name, dns_port=dns_port)
