"""The invalid-file corpus: each tests/invalid/*.yaml states its exact problem lines in `# expect:` comments."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.cli import main
from tests.conftest import ROOT

CORPUS = ROOT / "tests" / "invalid"
EXPECT = "# expect: "

KNOWN_BAD: dict[str, str] = {}
"""Files whose current output is known to be wrong: stem -> what is wrong (strict xfail)."""


def _cases() -> list[pytest.ParameterSet]:
    cases = []
    for path in sorted(CORPUS.glob("*.yaml")):
        reason = KNOWN_BAD.get(path.stem)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        cases.append(pytest.param(path, marks=marks, id=path.stem))
    return cases


def _expected(path: Path) -> set[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {line.removeprefix(EXPECT) for line in lines if line.startswith(EXPECT)}


@pytest.mark.parametrize("path", _cases())
def test_invalid_file_reports_exactly_the_expected_problems(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    source = str(path.relative_to(ROOT))
    assert main(["validate", source]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert {line.removeprefix(f"{source}:") for line in lines} == _expected(path)


def test_bad_regex_writes_only_problem_lines_to_stderr(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    source = "tests/invalid/regex-lookahead.yaml"
    assert main(["validate", source]) == 1
    lines = capfd.readouterr().err.splitlines()
    assert [line for line in lines if not line.startswith(f"{source}:")] == []


def test_corpus_is_large_enough() -> None:
    assert len(list(CORPUS.glob("*.yaml"))) >= 30


def test_every_file_states_its_expected_problems() -> None:
    missing = [p.name for p in sorted(CORPUS.glob("*.yaml")) if not _expected(p)]
    assert not missing, f"files without an '{EXPECT}' line: {missing}"


def test_known_bad_names_exist() -> None:
    assert not set(KNOWN_BAD) - {p.stem for p in CORPUS.glob("*.yaml")}
