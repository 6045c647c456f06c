"""What the demo starts, on which ports: pure values, so the plan is testable without processes.

Two control-plane replicas, two Envoy gateways sharing one listener port (Envoy binds it with
SO_REUSEPORT, so the kernel spreads connections over both and either can die), and five
upstreams: two versions of `shop` for a canary, two `reviews` pods of which one turns sick, and
a backup for `reviews`.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BASE = 18000
DEFAULT_GATEWAY = 8080
UPSTREAMS = ("shop-v1", "shop-v2", "reviews-1", "reviews-2", "reviews-backup")
SICK = "reviews-2"
"""The upstream that starts answering 500 after `fail_after` seconds."""


@dataclass(frozen=True)
class Ports:
    """Every port the demo uses; all on 127.0.0.1."""

    base: int = DEFAULT_BASE
    gateway: int = DEFAULT_GATEWAY
    status: int = 9000

    def xds(self, replica: int) -> int:
        return self.base + replica

    def status_of(self, replica: int) -> int:
        return self.status + replica

    def upstream(self, index: int) -> int:
        return self.base + 11 + index

    def admin(self, gateway: int) -> int:
        return self.base + 20 + gateway

    def named(self) -> list[tuple[str, int, str]]:
        """(what, port, the flag that moves it) for every port, to check they are free."""
        found = [("gateway listener", self.gateway, "--gateway-port")]
        found += [(f"status page of replica {i + 1}", self.status_of(i), "--status-port") for i in range(2)]
        found += [(f"xDS of replica {i + 1}", self.xds(i), "--port-base") for i in range(2)]
        found += [(f"upstream {name}", self.upstream(i), "--port-base") for i, name in enumerate(UPSTREAMS)]
        found += [(f"admin of gateway {i + 1}", self.admin(i), "--port-base") for i in range(2)]
        return found


def demo_routes(template: str, ports: Ports) -> str:
    """The example routes with the demo's actual ports in place of the defaults."""
    default = Ports()
    moves = {default.upstream(i): ports.upstream(i) for i in range(len(UPSTREAMS))}
    text = re.sub(
        r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{moves.get(int(m[1]), int(m[1]))}", template
    )  # fmt: skip
    return re.sub(rf"(\n\s+port: ){DEFAULT_GATEWAY}\b", rf"\g<1>{ports.gateway}", text)


@dataclass(frozen=True)
class Process:
    """One process to start: a name for the guide and logs, and its command line."""

    name: str
    command: tuple[str, ...]
    ready_port: int
    """Started once this port accepts connections."""


def upstreams(ports: Ports, fail_after: float) -> list[Process]:
    result = []
    for i, name in enumerate(UPSTREAMS):
        command = [sys.executable, "-m", "controlplane.demo.upstream", "--name", name, "--port", str(ports.upstream(i))]
        if name == SICK:
            command += ["--fail-after", str(fail_after)]
        result.append(Process(name, tuple(command), ports.upstream(i)))
    return result


def replicas(ports: Ports, routes: Path, state: Path) -> list[Process]:
    result = []
    for i in range(2):
        command = [sys.executable, "-m", "controlplane", "serve", "--config", str(routes)]
        command += ["--xds-address", f"127.0.0.1:{ports.xds(i)}", "--status-address", f"127.0.0.1:{ports.status_of(i)}"]
        command += ["--state-dir", str(state / f"replica-{i + 1}"), "--log-level", "warning"]
        result.append(Process(f"controlplane-{i + 1}", tuple(command), ports.status_of(i)))
    return result


def gateways(envoy: str, ports: Ports, bootstraps: list[Path], base_id: int) -> list[Process]:
    """Envoys with one worker each, quick to drain and exit; `base_id` keeps their shared memory apart."""
    result = []
    for i, path in enumerate(bootstraps):
        command = [envoy, "-c", str(path), "--base-id", str(base_id + i), "--concurrency", "1"]
        command += ["--log-level", "warning", "--drain-time-s", "1", "--parent-shutdown-time-s", "2"]
        result.append(Process(f"gateway-{i + 1}", tuple(command), ports.admin(i)))
    return result
