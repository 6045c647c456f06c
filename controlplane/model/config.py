"""The whole model: listeners and services, plus where each came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from controlplane.model.alerts import AlertRules
from controlplane.model.routes import Listener
from controlplane.model.services import Endpoint, Service


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

    def service(self, name: str) -> Service | None:
        """The service called `name`, if any."""
        for service in self.services:
            if service.name == name:
                return service
        return None
