"""`make test` builds kube-apiserver in the background; the Kubernetes tests wait for it here."""

from __future__ import annotations

import os
import time
from pathlib import Path

BACKGROUND = Path(__file__).resolve().parents[2] / ".kube-build"
"""Where `make test` runs the build in the background: its pid, log and exit status."""
BUILD_WAIT = 1800.0
"""Seconds to wait for a background build still running (a cold one takes about 5 minutes)."""


def _running(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text(encoding="utf-8").strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def wait_for_background_build(folder: Path = BACKGROUND, timeout: float = BUILD_WAIT) -> str:
    """Wait while `make test`'s background build runs; why it failed (its log's tail), or ""."""
    status, pid = folder / "status", folder / "pid"
    deadline = time.monotonic() + timeout
    while not status.exists() and pid.exists() and _running(pid) and time.monotonic() < deadline:
        time.sleep(1.0)
    if not status.exists() or status.read_text(encoding="utf-8").strip() == "0":
        return ""
    tail = (folder / "log").read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
    return f"the background build failed ({folder / 'log'}): " + " | ".join(tail)
