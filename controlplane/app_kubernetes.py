"""The Kubernetes part of the composition root: source, leader election and status writer.

Kept apart from app.py so that `serve` without `--kubernetes` reads as before; the three parts
meet the pipeline only through its submit methods and its record of RouteTable problems.
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from controlplane.dsl import AddressPolicy
from controlplane.model import KubernetesState
from controlplane.pipeline import Pipeline
from controlplane.sources.kubernetes.client import KubeClient, load_configuration
from controlplane.sources.kubernetes.leader import LeaderElection
from controlplane.sources.kubernetes.source import KubernetesOptions, KubernetesSource
from controlplane.sources.kubernetes.status import StatusWriter


@dataclass
class KubernetesParts:
    """What `serve --kubernetes` runs besides the files."""

    source: KubernetesSource
    election: LeaderElection
    writer: StatusWriter

    def loops(self, pipeline: Pipeline) -> list[Coroutine[Any, Any, None]]:
        return [
            self.source.run(pipeline.submit_kubernetes, pipeline.submit_route_objects),
            self.election.run(),
            self.writer.run(),
        ]

    def report(self) -> dict[str, Any]:
        """The source's report plus who writes status."""
        return {
            **self.source.report(),
            "leader": self.election.leader,
            "leader_identity": self.election.holder,
            "identity": self.election.identity,
            "status_writes": self.writer.written,
        }


def kubernetes_parts(options: KubernetesOptions, pipeline: Pipeline, policy: AddressPolicy) -> KubernetesParts:
    """Build the parts; nothing is published until the source's first full sync."""
    pipeline.kubernetes = KubernetesState()
    client = KubeClient(load_configuration(options.kubeconfig))
    source = KubernetesSource(client, options, policy)
    election = LeaderElection(client, namespace=options.leader_namespace, name=options.leader_name)
    writer = StatusWriter(
        client,
        checked=lambda: pipeline.object_problems,
        objects=lambda: pipeline.route_objects,
        current=source.route_table,
        is_leader=lambda: election.leader,
    )
    pipeline.on_objects_checked = writer.wake.set
    return KubernetesParts(source, election, writer)
