"""Kubernetes Service ports as the model sees them: plain values, no Kubernetes client types.

The Kubernetes source turns Services and EndpointSlices into `DiscoveredPort`s; the model joins
them with the route files. Every Service port becomes a cluster named `NAMESPACE/NAME:PORT`
(the port's name, or its number when unnamed) that routes may target without a `services:`
entry; a `services:` entry with `kubernetes: {namespace, name, port}` is a second cluster over
the same endpoints with that entry's policies.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from controlplane.model.hashing import cached_hash
from controlplane.model.services import Endpoint, KubernetesRef, Protocol


@dataclass(frozen=True, order=True)
class DiscoveredPort:
    """One port of a Kubernetes Service and where its traffic goes."""

    __hash__ = cached_hash

    namespace: str
    name: str
    port: int
    """The Service port number."""
    port_name: str = ""
    endpoints: tuple[Endpoint, ...] = ()
    """Ready endpoints, and draining ones (terminating but still serving), sorted."""
    dns_name: str = ""
    """ExternalName Services: the DNS name Envoy resolves (no endpoints then)."""
    protocol: Protocol = Protocol.HTTP1
    """From the port's appProtocol (`kubernetes.io/h2c` or `grpc`); HTTP/1.1 otherwise."""

    @property
    def ref(self) -> KubernetesRef:
        """The canonical reference: by name when the port has one."""
        return KubernetesRef(self.namespace, self.name, self.port_name or str(self.port))


@dataclass(frozen=True)
class KubernetesState:
    """Everything the Kubernetes source has seen, as one immutable value."""

    ports: tuple[DiscoveredPort, ...] = ()
    synced: bool = False
    """False until the first complete list of every watched kind."""

    def find(self, ref: KubernetesRef) -> DiscoveredPort | None:
        """The port `ref` names, if that Service and port exist."""
        return self._index.get(ref)

    @cached_property
    def _index(self) -> dict[KubernetesRef, DiscoveredPort]:
        """Each port under its name and its number, looked up once per route target."""
        index: dict[KubernetesRef, DiscoveredPort] = {}
        for port in self.ports:
            index[KubernetesRef(port.namespace, port.name, str(port.port))] = port
            if port.port_name:
                index[port.ref] = port
        return index
