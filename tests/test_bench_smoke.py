"""`make bench-smoke` under pytest: every scenario of bench/ runs at tiny sizes and gives figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import run

pytestmark = pytest.mark.envoy


def test_every_scenario_runs_and_reports(tmp_path: Path) -> None:
    assert run.main(["--smoke", "--out", str(tmp_path)]) == 0
    for name in run.NAMES.values():
        rows = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))["rows"]
        assert rows, name
        assert all(row["value"] for row in rows), name
    assert "S7 restart" in (tmp_path / "summary.md").read_text(encoding="utf-8")
