"""The whole model: listeners and services, plus where each came from."""

from __future__ import annotations

from dataclasses import dataclass, field

from controlplane.model.routes import Listener
from controlplane.model.services import Service


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
    origins: dict[str, Origin] = field(default_factory=dict, compare=False, hash=False)
    """`listener/NAME` or `service/NAME` -> where it was defined."""

    def service(self, name: str) -> Service | None:
        """The service called `name`, if any."""
        for service in self.services:
            if service.name == name:
                return service
        return None
