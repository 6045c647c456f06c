"""Running the real Envoy binary on a file: `--mode validate` and its version."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.conftest import find_envoy


def validate_file(envoy: str, path: Path) -> subprocess.CompletedProcess[str]:
    """`envoy --mode validate -c PATH`: exit 0 and "OK" when Envoy would start with it."""
    return subprocess.run(
        [envoy, "--mode", "validate", "-c", str(path), "--log-level", "warn"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def envoy_major_minor() -> str:
    """`1.40` for Envoy 1.40.x, read from `envoy --version`."""
    output = subprocess.run([find_envoy(), "--version"], capture_output=True, text=True, check=True, timeout=30).stdout
    found = re.search(r"/(\d+\.\d+)\.\d+/", output)
    assert found, output
    return found[1]
