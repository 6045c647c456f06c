"""Table-driven tests of the DSL's scalar types."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from controlplane.dsl.types import (
    check_cookie_name,
    check_header_value,
    check_host,
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
        pytest.param("1h2m3s4ms", 3_723_004, id="every-unit-in-order"),
        pytest.param("1h500ms", 3_600_500, id="skipped-units"),
        pytest.param(" 1m30s ", 90_000, id="surrounding-spaces"),
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
        pytest.param("30s1m", "largest first", id="out-of-order"),
        pytest.param("1s1s", "at most once", id="repeated-unit"),
        pytest.param("500ms1s", "largest first", id="ms-before-s"),
        pytest.param("1m1h", "largest first", id="m-before-h"),
        pytest.param("1h30m1h", "at most once", id="unit-repeated-later"),
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
    "host", ["1.2.3.4", "0.0.0.0", "255.255.255.255", "01.2.3.4", "256.1.1.1", "1.2.3", "1.2.3.4.5", "1.2.3.04"]
)
@pytest.mark.parametrize("port", ["80", "00080", "0", "00", "65535", "65536", "\u0668"])
def test_ipv4_addresses_read_as_ipaddress_reads_them(host: str, port: str) -> None:
    """The dotted-quad shortcut (ipaddress is slow at 100,000 endpoints) agrees with ipaddress."""
    try:
        expected: object = (str(ipaddress.IPv4Address(host)), int(port))
        assert port.isascii() and 1 <= int(port) <= 65535
    except (ValueError, AssertionError):
        expected = ValueError
    try:
        found: object = parse_socket_address(f"{host}:{port}")
    except ValueError:
        found = ValueError
    assert found == expected


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
        pytest.param("^/\\x{e9}t\u00e9$", True, id="latin1-escape-and-utf8-literal"),
        pytest.param("^/\\x{263a}$", False, id="escape-above-latin1"),
        pytest.param("^/files/.{1,30}$", True, id="byte-wise-size-93"),
        pytest.param("^/files/.{1,40}$", False, id="byte-wise-size-123"),
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


@pytest.mark.parametrize(
    ("host", "message"),
    [
        pytest.param("api.example.com", None, id="dns-name"),
        pytest.param("Internal-API.example.com", None, id="upper-case-kept"),
        pytest.param("10.0.0.1", None, id="ipv4"),
        pytest.param("[2001:db8::1]", None, id="bracketed-ipv6"),
        pytest.param("a.example.com\r\nx-injected: 1", "invalid host", id="crlf"),
        pytest.param("a b", "invalid host", id="space"),
        pytest.param("", "invalid host", id="empty"),
        pytest.param("-a.example.com", "invalid host", id="label-starts-with-dash"),
        pytest.param("a..example.com", "invalid host", id="empty-label"),
        pytest.param("a" * 64 + ".com", "invalid host", id="label-too-long"),
        pytest.param("a_b.example.com", "invalid host", id="underscore"),
        pytest.param("api.example.com:8443", "has a port", id="port"),
        pytest.param("[::1]:8443", "has a port", id="ipv6-with-port"),
        pytest.param("2001:db8::1", "in brackets", id="unbracketed-ipv6"),
        pytest.param("[not-ipv6]", "invalid host", id="brackets-without-ipv6"),
        pytest.param(True, "expected a host name", id="boolean"),
    ],
)
def test_hosts(host: Any, message: str | None) -> None:
    if message is None:
        assert check_host(host, port_hint="") == host
    else:
        with pytest.raises(ValueError, match=message):
            check_host(host, port_hint="")


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        pytest.param("SessionID", True, id="case-kept"),
        pytest.param("__Host-id", True, id="prefixed"),
        pytest.param("a!#$%&'*+-.^_`|~z", True, id="every-token-symbol"),
        pytest.param("session id", False, id="space"),
        pytest.param("a=b", False, id="equals"),
        pytest.param("a;b", False, id="semicolon"),
        pytest.param("", False, id="empty"),
    ],
)
def test_cookie_names(name: str, ok: bool) -> None:
    if ok:
        assert check_cookie_name(name) == name
    else:
        with pytest.raises(ValueError, match="invalid cookie name"):
            check_cookie_name(name)
