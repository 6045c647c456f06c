"""`controlplane demo` as a new user runs it: it starts, routes a canary, shows it, and leaves nothing behind."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from controlplane.demo.plan import Ports, demo_routes
from controlplane.dsl import load_texts
from tests.conftest import ROOT
from tests.e2e import free_port, request, wait_for

pytestmark = pytest.mark.envoy


def free_ports() -> Ports:
    """A base whose 22 ports, a gateway port and two status ports are all free."""
    rng = random.Random()
    for _ in range(50):
        ports = Ports(
            base=rng.randrange(30_000, 40_000, 100), gateway=free_port(), status=rng.randrange(41_000, 45_000)
        )
        if all(_free(port) for _, port, _ in ports.named()):
            return ports
    raise AssertionError("no free port range")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def children(pid: int) -> set[int]:
    """PIDs whose parent is `pid` (read from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def start_demo(ports: Ports, tmp: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "controlplane", "demo", "--workdir", str(tmp / "demo"),
               "--port-base", str(ports.base), "--gateway-port", str(ports.gateway),
               "--status-port", str(ports.status), "--duration", "120s", *extra]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_demo_routes_a_canary_shows_it_and_leaves_nothing_running(tmp_path: Path) -> None:
    ports = free_ports()
    demo = start_demo(ports, tmp_path, "--fail-after", "300s", "--rate", "5")
    output: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            output.append(line)
            if "Ctrl-C stops everything" in line or demo.poll() is not None:
                break
        assert any("The gateway is up" in line for line in output), "".join(output)
        started = children(demo.pid)
        assert len(started) == 9, started  # 5 upstreams, 2 replicas, 2 gateways
        answers = Counter(request(ports.gateway)[1].strip() for _ in range(300))
        assert set(answers) == {"shop-v1", "shop-v2"}, answers
        assert 0.03 <= answers["shop-v2"] / 300 <= 0.2, answers  # the 90/10 canary
        # Each Envoy holds one ADS stream, to either replica: between them the pages list both.
        pages = wait_for(lambda: _pages_with_both_gateways(ports), timeout=15, what="both gateways on the pages")
        assert "reviews" in pages and "shop-v1" in pages
    finally:
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=30)
    assert demo.returncode == 0, rest
    assert "stopped 9 processes" in rest
    assert [pid for pid in started if alive(pid)] == []


def _pages_with_both_gateways(ports: Ports) -> str | None:
    pages = ""
    for replica in (0, 1):
        with urllib.request.urlopen(f"http://127.0.0.1:{ports.status_of(replica)}/", timeout=3) as response:
            pages += response.read().decode()
    return pages if "gateway-1" in pages and "gateway-2" in pages else None


def test_a_busy_port_is_a_clear_error_and_starts_nothing(tmp_path: Path) -> None:
    ports = free_ports()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports.gateway))
        squatter.listen()
        demo = start_demo(ports, tmp_path)
        out, _ = demo.communicate(timeout=30)
    assert demo.returncode == 2
    assert f"port {ports.gateway} (gateway listener) is in use: choose another with --gateway-port" in out
    assert "starting" not in out


def test_the_demo_routes_validate_with_moved_ports() -> None:
    template = (ROOT / "examples/demo/routes.yaml").read_text()
    moved = demo_routes(template, Ports(base=30_000, gateway=7000))
    model = load_texts([("routes.yaml", moved)])
    assert model.listeners[0].port == 7000
    ports = sorted(e.port for s in model.services for e in s.endpoints)
    assert ports == [30_011, 30_012, 30_013, 30_014, 30_015]
