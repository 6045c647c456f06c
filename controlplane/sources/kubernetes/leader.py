"""Leader election on a `coordination.k8s.io/v1` Lease: one replica writes status, all serve.

The rules are client-go's: the holder renews the Lease every `renew` seconds; another replica
takes it over only when the record has not changed for `duration` seconds as measured on its
own monotonic clock (never by comparing timestamps across machines, whose clocks may differ).
Writes carry the resourceVersion they read, so two replicas racing for an expired Lease cannot
both win: the API server refuses the second with 409 Conflict.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from controlplane.sources.kubernetes.client import JSON, KubeClient, KubeError

log = logging.getLogger(__name__)


def default_identity() -> str:
    """Unique per process: the pod name (hostname) and the PID."""
    return f"{socket.gethostname()}_{os.getpid()}"


@dataclass
class LeaderElection:
    """Holds, renews or watches the Lease `namespace/name`; `leader` says whether we hold it."""

    client: KubeClient
    namespace: str = "default"
    name: str = "controlplane-leader"
    identity: str = field(default_factory=default_identity)
    duration: float = 15.0
    renew: float = 2.0
    leader: bool = False
    holder: str = ""
    _observed: tuple[str, float] = ("", 0.0)
    """(the record's holder and renew time, when we first saw it so) on our monotonic clock."""
    _renewed_at: float = 0.0

    @property
    def path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"

    async def run(self) -> None:
        """Try to acquire or renew every `renew` seconds until cancelled; step down on failure."""
        try:
            while True:
                try:
                    await asyncio.to_thread(self.attempt)
                except KubeError as exc:
                    log.warning("leader election: %s", exc)
                if self.leader and time.monotonic() - self._renewed_at > self.duration:
                    self._set_leader(False, "could not renew the Lease in time")
                await asyncio.sleep(self.renew)
        finally:
            self._release()

    def attempt(self) -> bool:
        """One round: create, renew or take over the Lease when allowed; returns `leader`."""
        try:
            lease = self.client.get(f"{self.path}/{self.name}")
        except KubeError as exc:
            if exc.status != 404:
                raise
            return self._write(None)
        spec = lease.get("spec") or {}
        self.holder = spec.get("holderIdentity") or ""
        record = f"{self.holder}@{spec.get('renewTime', '')}"
        now = time.monotonic()
        if record != self._observed[0]:
            self._observed = (record, now)
        expired = now - self._observed[1] > float(spec.get("leaseDurationSeconds") or self.duration)
        if self.holder in (self.identity, "") or expired:
            return self._write(lease)
        self._set_leader(False, f"held by {self.holder}")
        return False

    def _write(self, lease: JSON | None) -> bool:
        now = _micro_time()
        spec = dict((lease or {}).get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if lease else 0)
        spec.update(holderIdentity=self.identity, renewTime=now, leaseDurationSeconds=int(self.duration))
        body: JSON = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": spec,
        }
        try:
            if lease is None:
                self.client.create(self.path, body)
            else:
                body["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
                self.client.replace(f"{self.path}/{self.name}", body)
        except KubeError as exc:
            if exc.status != 409:
                raise
            self._set_leader(False, "another replica won the race")
            return False
        self._renewed_at, self.holder = time.monotonic(), self.identity
        self._set_leader(True, "acquired")
        return True

    def _set_leader(self, leader: bool, why: str) -> None:
        if leader != self.leader:
            log.info("leader election: %s leader (%s)", "now" if leader else "no longer", why)
        self.leader = leader

    def _release(self) -> None:
        """On shutdown, let another replica take over at once instead of after `duration`."""
        if not self.leader:
            return
        self.leader = False
        try:
            lease = self.client.get(f"{self.path}/{self.name}")
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = ""
                self.client.replace(f"{self.path}/{self.name}", lease)
        except KubeError as exc:
            log.warning("could not release the Lease: %s", exc)


def _micro_time() -> str:
    """Kubernetes' MicroTime format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
