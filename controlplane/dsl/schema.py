"""The top of the DSL schema: one route file."""

from __future__ import annotations

from controlplane.dsl.schema_alerts import AlertsSpec
from controlplane.dsl.schema_common import Spec
from controlplane.dsl.schema_routes import ListenerSpec
from controlplane.dsl.schema_services import ServiceSpec
from controlplane.dsl.types import Name


class DocumentSpec(Spec):
    """A route file: listeners, the services they route to, and alert rules (all optional)."""

    listeners: list[ListenerSpec] = []
    services: dict[Name, ServiceSpec] = {}
    alerts: AlertsSpec | None = None
