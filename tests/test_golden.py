"""The translator against golden files; `make golden` (pytest --update-golden) rewrites them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.golden_cases import OUT, cases, rendered_outputs


@pytest.mark.parametrize("case", cases(), ids=lambda p: p.stem)
def test_translation_matches_golden(case: Path, update_golden: bool) -> None:
    for path, text in rendered_outputs(case).items():
        if update_golden:
            path.write_text(text, encoding="utf-8")
            continue
        assert path.exists(), f"missing golden file {path.name}: run `make golden` and review the diff"
        assert path.read_text(encoding="utf-8") == text, f"{path.name} differs: run `make golden` to see"


def test_no_orphaned_golden_outputs(update_golden: bool) -> None:
    expected = {p for case in cases() for p in rendered_outputs(case)}
    orphans = sorted(set(OUT.glob("*.yaml")) - expected)
    if update_golden:
        for orphan in orphans:
            orphan.unlink()
        return
    assert not orphans, f"golden outputs without an input: {[o.name for o in orphans]}"


def test_there_is_a_case_per_feature() -> None:
    assert len(cases()) >= 20
