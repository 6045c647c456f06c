"""Table-driven tests of the DSL's scalar types."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.dsl.types import (
    check_header_value,
    check_path,
    check_regex,
    parse_duration,
    parse_header_name,
    parse_name,
    parse_socket_address,
)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        pytest.param("250ms", 250, id="milliseconds"),
        pytest.param("2s", 2000, id="seconds"),
        pytest.param("1.5s", 1500, id="fractional-seconds"),
        pytest.param("1m", 60_000, id="minutes"),
        pytest.param("1m30s", 90_000, id="compound"),
        pytest.param("1h", 3_600_000, id="hours"),
        pytest.param("0s", 0, id="zero"),
    ],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(2, "needs a unit", id="bare-number"),
        pytest.param("2sec", "invalid duration", id="unknown-unit"),
        pytest.param("1.5ms", "finer than a millisecond", id="sub-millisecond"),
        pytest.param("", "invalid duration", id="empty"),
        pytest.param("-1s", "invalid duration", id="negative"),
        pytest.param(True, "expected a duration", id="boolean"),
        pytest.param("1s 2s", "invalid duration", id="space"),
    ],
)
def test_bad_durations(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("127.0.0.1:80", ("127.0.0.1", 80), id="ipv4"),
        pytest.param("[::1]:8080", ("::1", 8080), id="ipv6"),
        pytest.param("[fd00:0::10]:1", ("fd00::10", 1), id="ipv6-normalized"),
    ],
)
def test_socket_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_socket_address(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("localhost:80", "not an IP address", id="hostname"),
        pytest.param("127.0.0.1", "expected HOST:PORT", id="no-port"),
        pytest.param("127.0.0.1:0", "out of range", id="port-zero"),
        pytest.param("127.0.0.1:65536", "out of range", id="port-too-big"),
        pytest.param("127.0.0.1:http", "out of range", id="named-port"),
    ],
)
def test_bad_socket_addresses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_socket_address(text)


@pytest.mark.parametrize(
    ("pattern", "ok"),
    [
        pytest.param("^/v[0-9]+/users$", True, id="simple"),
        pytest.param("a{100}", False, id="program-too-large"),
        pytest.param("(a)\\1", False, id="backreference"),
        pytest.param("(?=a)", False, id="lookahead"),
        pytest.param("[", False, id="unbalanced"),
    ],
)
def test_regexes(pattern: str, ok: bool) -> None:
    if ok:
        assert check_regex(pattern) == pattern
    else:
        with pytest.raises(ValueError):
            check_regex(pattern)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        pytest.param("api", True, id="plain"),
        pytest.param("api-v2.internal_1", True, id="punctuation"),
        pytest.param("Api", False, id="upper-case"),
        pytest.param("-api", False, id="leading-dash"),
        pytest.param("a" * 64, False, id="too-long"),
    ],
)
def test_names(name: str, ok: bool) -> None:
    if ok:
        assert parse_name(name) == name
    else:
        with pytest.raises(ValueError):
            parse_name(name)


def test_header_names_are_lower_cased_and_tokens() -> None:
    assert parse_header_name("X-Canary") == "x-canary"
    for bad in ("x canary", "x:canary", "x\ncanary", ""):
        with pytest.raises(ValueError):
            parse_header_name(bad)


def test_header_values_refuse_control_characters_and_numbers() -> None:
    assert check_header_value("a\tb") == "a\tb"
    for bad in ("a\r\nx-injected: 1", "a\x00", "a\x7f"):
        with pytest.raises(ValueError, match="control character"):
            check_header_value(bad)
    with pytest.raises(ValueError, match='quote it: "1"'):
        check_header_value(1)


@pytest.mark.parametrize("path", ["api", "/a b", "/a?b", "/a#b"])
def test_bad_paths(path: str) -> None:
    with pytest.raises(ValueError):
        check_path(path)
