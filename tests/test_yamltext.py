"""The YAML reader: YAML 1.2 scalars, positions, duplicate keys, syntax errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.dsl.yamltext import (
    format_path,
    read_composed,
    read_events,
    read_with_libyaml,
    read_with_pyyaml,
    read_yaml,
)
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param("on", "on", id="on-is-a-string"),
        pytest.param("yes", "yes", id="yes-is-a-string"),
        pytest.param("off", "off", id="off-is-a-string"),
        pytest.param("true", True, id="true"),
        pytest.param("False", False, id="false"),
        pytest.param("1:30", "1:30", id="no-base-60"),
        pytest.param("010", 10, id="leading-zero-is-decimal"),
        pytest.param("09", 9, id="leading-zero-not-octal"),  # PyYAML's YAML 1.1 left it a string
        pytest.param("1e3", 1000.0, id="exponent-without-dot"),  # likewise
        pytest.param("!!str 09", "09", id="explicit-string-tag"),
        pytest.param("!!int 5", 5, id="explicit-int-tag"),
        pytest.param("0x1f", 31, id="hex"),
        pytest.param("1.5", 1.5, id="float"),
        pytest.param("~", None, id="null"),
        pytest.param('"1"', "1", id="quoted-number"),
        pytest.param("127.0.0.1:8080", "127.0.0.1:8080", id="address"),
    ],
)
def test_scalars_follow_yaml_1_2(text: str, value: object) -> None:
    assert read_yaml(f"k: {text}\n", "f.yaml").value == {"k": value}


def test_on_as_a_key_stays_a_string() -> None:
    assert read_yaml("retries: {on: [5xx]}\n", "f.yaml").value == {"retries": {"on": ["5xx"]}}


def test_positions_of_keys_and_values() -> None:
    doc = read_yaml("a:\n  b: [1, 2]\n", "f.yaml")
    assert doc.keys[("a", "b")] == (2, 3)
    assert doc.values[("a", "b", 1)] == (2, 10)
    assert doc.position(("a", "b", 7, "deeper")) == (2, 6)


def test_duplicate_keys_are_problems() -> None:
    doc = read_yaml("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert [str(p) for p in doc.problems] == ["f.yaml:3:1: a: duplicate key 'a'"]
    assert doc.value == {"a": 1, "b": 2}


def test_syntax_errors_are_located() -> None:
    doc = read_yaml("a: [1, 2\nb: 3\n", "f.yaml")
    assert len(doc.problems) == 1
    assert doc.problems[0].line == 2
    assert "YAML syntax error" in doc.problems[0].message


def test_format_path() -> None:
    assert format_path(("listeners", 0, "routes", 2, "match")) == "listeners[0].routes[2].match"


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    doc = read_yaml("\n".join(lines) + "\n", "bomb.yaml")
    assert doc.value is None
    assert "more than 200000 values" in doc.problems[0].message


def test_self_referencing_alias_is_refused() -> None:
    doc = read_yaml("a: &a [*a]\n", "loop.yaml")
    assert doc.value is None
    assert "nested deeper" in doc.problems[0].message


# --- libyaml and PyYAML agree ----------------------------------------------------------------

_CORPUS = sorted(
    path
    for folder in ("examples", "tests/golden", "tests/invalid", "deploy", "envoy")
    for path in (ROOT / folder).rglob("*.y*ml")
)
_YAMLISH = st.text(alphabet=" \t\n\r-:{}[],'\"&*!|>#?%@`\\abz019.~", max_size=300)
"""YAML's punctuation, to reach the parsers' rarer paths (ASCII: the only text libyaml reads)."""
_FUZZ = settings(
    max_examples=int(os.environ.get("YAML_DIFF_EXAMPLES", "400")),
    derandomize="YAML_DIFF_EXAMPLES" not in os.environ,
    database=None,
    deadline=None,
)
"""Generated texts per test: 400, the same every run; YAML_DIFF_EXAMPLES=N for N random ones."""


def _same(text: str) -> None:
    """Where both parsers read `text`, the same values at the same positions.

    libyaml is laxer in corners (`|#`: a comment without the space before it): there it reads
    what PyYAML calls a syntax error, and its reading stands. Where libyaml refuses, PyYAML
    reports (read_yaml), so there is nothing to compare.
    """
    fast = read_with_libyaml(text, "f.yaml")
    reference = read_with_pyyaml(text, "f.yaml")
    if fast is not None and not any(p.message.startswith("YAML syntax error") for p in reference.problems):
        assert fast == reference


@pytest.mark.parametrize("path", _CORPUS, ids=lambda p: str(p.relative_to(ROOT)))
def test_libyaml_reads_the_corpus_as_pyyaml_does(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if "invalid" not in path.parts and text.isascii():  # valid files take the fast path
        assert read_with_libyaml(text, "f.yaml") is not None
    _same(text)


@_FUZZ
@given(text=_YAMLISH)
def test_libyaml_and_pyyaml_agree_on_punctuation(text: str) -> None:
    _same(text)


# --- libyaml's events, read directly, agree with the composer -----------------------------------


@pytest.mark.parametrize("path", _CORPUS, ids=lambda p: str(p.relative_to(ROOT)))
def test_events_read_the_corpus_as_the_composer_does(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    direct = read_events(text, "f.yaml")
    simple = text.isascii() and "\t" not in text and "&" not in text and "\n---" not in text
    if "invalid" not in path.parts and simple:
        assert direct is not None  # route files take the direct path
    if direct is not None:
        assert direct == read_composed(text, "f.yaml")


@_FUZZ
@given(text=_YAMLISH)
def test_events_and_the_composer_agree_on_punctuation(text: str) -> None:
    direct = read_events(text, "f.yaml")
    if direct is not None:
        assert direct == read_composed(text, "f.yaml")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a: &x 1\nb: *x\n", id="anchor-and-alias"),
        pytest.param("a: 1\na: 2\n", id="repeated-key"),
        pytest.param("a: {<<: {b: 1}}\n", id="merge-key"),
        pytest.param("1: a\n", id="number-key"),
        pytest.param("[a]: b\n", id="sequence-key"),
        pytest.param("a:\n", id="empty-value"),
        pytest.param("a: 1\n---\nb: 2\n", id="two-documents"),
        pytest.param("", id="no-document"),
        pytest.param("[" * 70 + "]" * 70, id="too-deep"),
    ],
)
def test_what_only_the_composer_reads_is_left_to_it(text: str) -> None:
    assert read_events(text, "f.yaml") is None
    assert read_with_libyaml(text, "f.yaml") == read_composed(text, "f.yaml")


def test_the_direct_reading_keeps_positions_and_problems() -> None:
    text = "a:\n  - x\n  - 'y'\nb: " + "9" * 101 + "\n"
    doc = read_events(text, "f.yaml")
    assert doc is not None
    assert doc == read_composed(text, "f.yaml")
    assert (doc.values[("a", 1)], doc.keys[("b",)]) == ((3, 5), (4, 1))
    assert [(p.line, p.field) for p in doc.problems] == [(4, "b")]  # a number of 101 digits


def test_text_beyond_ascii_is_read_by_pyyaml() -> None:
    """libyaml counts columns differently on some characters; PyYAML's are the reference."""
    assert read_yaml("a: \u00e9\nb: [", "f.yaml").problems[0].line == 2
