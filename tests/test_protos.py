"""The checked-in code generated from protos/ matches what `make protos` would write."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "protos" / "generate.py"), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*_pb2*"))
    assert fresh, "protoc wrote nothing"
    for relative in fresh:
        checked_in = ROOT / relative
        assert checked_in.exists(), f"{relative} is not checked in: run `make protos`"
        assert checked_in.read_bytes() == (tmp_path / relative).read_bytes(), f"{relative} is stale: run `make protos`"
    assert not (tmp_path / "__init__.py").exists()
