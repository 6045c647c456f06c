"""Scalar types of the DSL: durations, addresses, names, header and cookie names, RE2 regexes.

Each parser raises ValueError with a message written for the user; the loader adds the file,
line and field path.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from typing import Annotated, Any

import re2
from pydantic import AfterValidator, BeforeValidator

from controlplane.dsl.limits import MAX_DURATION_MS, MAX_HEADER_NAME_BYTES, MAX_HEADER_VALUE_BYTES, MAX_QUERY_NAME_BYTES

RE2_MAX_PROGRAM_SIZE = 100
"""Envoy's default `re2.max_program_size.error_level`: larger regexes are rejected by Envoy."""

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_MS = {"h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
"""Units largest first: the order the parts of a duration must be written in."""
_NAME = re.compile(r"[a-z0-9]([a-z0-9._-]*[a-z0-9])?")
_HEADER_NAME = re.compile(r":?[a-z0-9!#$%&'*+.^_`|~-]+")
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*")
_HOST_WITH_PORT = re.compile(r"([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]*")
_PORT = re.compile(r"[0-9]{1,5}")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_REQUEST_PSEUDO_HEADERS = (":authority", ":method", ":path", ":protocol", ":scheme")
"""The HTTP/2 and HTTP/3 request pseudo-headers (RFC 9113 8.3.1, RFC 8441): Envoy matches on these."""
_METHODS = ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")


def parse_duration(value: Any) -> int:
    """`250ms`, `2s`, `1m30s`, `1h` -> milliseconds. Bare numbers are refused (which unit?)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("expected a duration such as 250ms, 2s or 1m")
    if not isinstance(value, str):
        raise ValueError(f"duration {value!r} needs a unit: write e.g. {value}s or {value}ms")
    total = sum(float(n) * _UNIT_MS[u] for n, u in _duration_parts(value))
    if total > MAX_DURATION_MS:
        raise ValueError(f"duration {_short(value)!r} is longer than a year (8760h), the longest allowed")
    if total != int(total):
        raise ValueError(f"duration {value!r} is finer than a millisecond")
    return int(total)


def _duration_parts(value: str) -> list[tuple[str, str]]:
    """The (number, unit) parts of `value`, each unit at most once and largest first.

    `30s1m` and `1s1s` are refused rather than added up: they are almost always typos, and one
    spelling per duration keeps route files easy to read and compare.
    """
    text = value.strip()
    parts: list[tuple[str, str]] = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration {value!r}: use a number and a unit (ms, s, m, h), e.g. 250ms")
    ranks = [list(_UNIT_MS).index(u) for _, u in parts]
    if any(later <= earlier for earlier, later in itertools.pairwise(ranks)):
        raise ValueError(
            f"invalid duration {value!r}: write each unit at most once, largest first (h, m, s, ms), e.g. 1m30s"
        )
    return parts


def parse_name(value: Any) -> str:
    """Names of listeners and services: lower-case DNS-label style, up to 63 characters."""
    if not isinstance(value, str):
        raise ValueError("expected a name (a string)")
    if len(value) > 63 or not _NAME.fullmatch(value):
        raise ValueError(
            f"invalid name {value!r}: use 1-63 lower-case letters, digits, '-', '.' or '_', "
            "starting and ending with a letter or digit"
        )
    return value


def parse_header_name(value: Any) -> str:
    """An HTTP header name (an RFC 9110 token) or a request pseudo-header such as `:authority`.

    Returned lower-cased: HTTP/2 and HTTP/3 require lower-case names, and Envoy compares them so.
    """
    if not isinstance(value, str) or not value:
        raise ValueError("expected a header name")
    if len(value.encode()) > MAX_HEADER_NAME_BYTES:
        raise ValueError(f"header name is longer than {MAX_HEADER_NAME_BYTES} bytes")
    lowered = value.lower()
    if not _HEADER_NAME.fullmatch(lowered):
        raise ValueError(f"invalid header name {value!r}: only RFC 9110 token characters are allowed")
    if lowered.startswith(":") and lowered not in _REQUEST_PSEUDO_HEADERS:
        raise ValueError(f"unknown pseudo-header {value!r}; requests have {', '.join(_REQUEST_PSEUDO_HEADERS)}")
    return lowered


def check_ordinary_header(value: str) -> str:
    """A header name that is not a pseudo-header (CORS lists name headers a browser sends or reads)."""
    if value.startswith(":"):
        raise ValueError(f"pseudo-header {value!r} cannot be listed here: name an ordinary header")
    return value


def check_cookie_name(value: Any) -> str:
    """A cookie name, kept as written: cookie names are case-sensitive (RFC 6265 tokens)."""
    if not isinstance(value, str):
        raise ValueError(f"expected a cookie name (got {describe(value)})")
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"invalid cookie name {value!r}: use letters, digits and !#$%&'*+-.^_`|~ (an RFC 6265 token)")
    return value


def check_header_value(value: Any) -> str:
    """A header value: a string without control characters (CR/LF would split headers), bounded."""
    if not isinstance(value, str):
        shown = str(value).lower() if isinstance(value, bool) else value  # as written in YAML
        hint = f' (quote it: "{shown}")' if isinstance(value, int | float) else ""
        raise ValueError(f"header value must be a string{hint}")
    if _CONTROL.search(value):
        raise ValueError("header value contains a control character")
    if len(value.encode()) > MAX_HEADER_VALUE_BYTES:
        raise ValueError(f"header value is longer than {MAX_HEADER_VALUE_BYTES} bytes")
    return value


def check_query_name(value: Any) -> str:
    """A query parameter name: not empty, no control characters, as long as Envoy accepts."""
    if not isinstance(value, str) or not value:
        raise ValueError("expected a query parameter name (a non-empty string)")
    if _CONTROL.search(value):
        raise ValueError(f"query parameter name {value!r} contains a control character")
    if len(value.encode()) > MAX_QUERY_NAME_BYTES:
        raise ValueError(f"query parameter name is longer than {MAX_QUERY_NAME_BYTES} bytes")
    return value


def check_method_token(value: Any) -> str:
    """A method name for CORS: any RFC 9110 token (custom methods included), so never CR/LF."""
    if not isinstance(value, str):
        raise ValueError(f"expected a method such as GET (got {describe(value)})")
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"invalid method {value!r}: a method is a token such as GET or PURGE")
    return value


def check_cookie_path(value: Any) -> str:
    """The Path attribute of a cookie Envoy sets: empty, or a path without ';' (which ends the attribute)."""
    if value == "":
        return ""
    path = check_path(value)
    if ";" in path:
        raise ValueError(f"cookie path {path!r} contains ';', which would end the Path attribute")
    return path


def check_text_value(value: Any) -> str:
    """Text Envoy puts into a request line or header (a path substitution): no control characters."""
    if not isinstance(value, str):
        raise ValueError("expected a string")
    if _CONTROL.search(value):
        raise ValueError("text contains a control character (such as a line break)")
    return value


def _re2_options(latin1: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2's C++ logger would write to stderr around our own lines
    if latin1:
        options.encoding = re2.Options.Encoding.LATIN1
    return options


_ENVOY_RE2 = _re2_options(latin1=True)
_UTF8_RE2 = _re2_options(latin1=False)


def check_regex(value: Any) -> str:
    """A regex Envoy will accept, judged the way Envoy's RE2 judges it.

    Envoy 1.40 compiles a regex as RE2 does in Latin-1 mode, reading the pattern and the input as
    bytes (measured against `envoy --mode validate`: its program sizes and refusals are RE2's
    Latin-1 ones for every one of 3,000 random patterns, UTF-8's differ). So `\\x{100}` and
    above, which UTF-8 RE2 accepts, are refused, and `[^/]` or `.` cost half the instructions
    UTF-8 would count.
    """
    if not isinstance(value, str):
        raise ValueError("expected a regular expression (a string)")
    try:
        compiled = re2.compile(value.encode(), _ENVOY_RE2)
    except re2.error as exc:
        raise ValueError(_regex_refusal(value, exc)) from None
    if compiled.programsize > RE2_MAX_PROGRAM_SIZE:
        raise ValueError(
            f"regex {_quote(value)} is too complex for Envoy: RE2 program size {compiled.programsize} "
            f"exceeds {RE2_MAX_PROGRAM_SIZE}; simplify it"
        )
    return value


def _regex_refusal(value: str, latin1_error: re2.error) -> str:
    """Why RE2 refuses `value`: bad syntax anywhere, or only in the byte-wise reading Envoy uses."""
    try:
        re2.compile(value, _UTF8_RE2)
    except re2.error as exc:
        return f"invalid RE2 regex {_quote(value)}: {_reason(exc)}"
    return (
        f"regex {_quote(value)} is refused by Envoy, whose RE2 reads regexes as bytes (Latin-1): "
        f"{_reason(latin1_error)}; escapes above \\x{{ff}} do not exist there: write the character itself"
    )


def _reason(exc: re2.error) -> str:
    return exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)


def check_modifiable_header(value: str) -> str:
    """A header that route rules may set, add or remove (not Host, not pseudo-headers)."""
    if value == "host":
        raise ValueError("the Host header cannot be set or removed here: use rewrite.host")
    if value.startswith(":"):
        raise ValueError(f"pseudo-header {value!r} cannot be set or removed")
    return value


def check_origin(value: Any) -> str:
    """A CORS origin: exact, `*`, or `~REGEX`."""
    if not isinstance(value, str) or not value:
        raise ValueError("expected an origin such as https://app.example.com, '*' or '~REGEX'")
    if value.startswith("~"):
        return "~" + check_regex(value[1:])
    if _CONTROL.search(value) or len(value.encode()) > MAX_HEADER_VALUE_BYTES:
        raise ValueError(
            f"invalid origin: an origin has no control characters and at most {MAX_HEADER_VALUE_BYTES} bytes"
        )
    return value


def check_method(value: Any) -> str:
    """An HTTP method name (upper case)."""
    if not isinstance(value, str):
        raise ValueError(f"expected an HTTP method such as GET (got {describe(value)})")
    if value not in _METHODS:
        raise ValueError(f"unknown HTTP method {value!r}; expected one of {', '.join(_METHODS)}")
    return value


def check_path(value: Any) -> str:
    """A request path or prefix: starts with '/', no spaces, control characters, '#' or '?'."""
    if not isinstance(value, str):
        raise ValueError("expected a path (a string starting with '/')")
    if not value.startswith("/"):
        raise ValueError(f"path {value!r} must start with '/'")
    if _CONTROL.search(value) or any(c in value for c in " #?\t"):
        raise ValueError(f"path {value!r} contains a space, control character, '#' or '?'")
    return value


def check_host(value: Any, *, port_hint: str) -> str:
    """A host for the Host header or a redirect URL: a DNS name, an IPv4 address or [IPv6].

    Checked because the value goes into a request or a Location header as written: a space,
    CR or LF would corrupt it.
    """
    if not isinstance(value, str):
        raise ValueError("expected a host name such as api.example.com")
    if value.startswith("[") and value.endswith("]") and _is_ipv6(value[1:-1]):
        return value
    if _is_ipv6(value):
        raise ValueError(f"write the IPv6 address {value!r} in brackets: [{value}]")
    if _HOST_WITH_PORT.fullmatch(value):
        raise ValueError(f"host {value!r} has a port: {port_hint}")
    if len(value) > 253 or not _HOST_NAME.fullmatch(value):
        raise ValueError(
            f"invalid host {value!r}: use a host name such as api.example.com (letters, digits, '-' and '.'), "
            "an IPv4 address or a bracketed IPv6 address"
        )
    return value


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)
"""A dotted-quad IPv4 address in canonical form (no leading zeros), as ipaddress would print it."""


def parse_socket_address(value: Any) -> tuple[str, int]:
    """`1.2.3.4:80` or `[::1]:80` -> (host, port). Endpoints are IP addresses, not host names."""
    if not isinstance(value, str) or ":" not in value:
        raise ValueError(
            f"expected HOST:PORT, got {value!r}"
            if isinstance(value, str)
            else f"expected HOST:PORT (got {describe(value)})"
        )
    host, _, port_text = value.rpartition(":")
    # not isdigit(): '²' is a digit
    port = int(port_text) if _PORT.fullmatch(port_text) and 1 <= int(port_text) <= 65535 else None
    if port is not None and _IPV4.fullmatch(host):
        return host, port  # the common case, already canonical: ipaddress is slow
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"write IPv6 endpoints in brackets, e.g. [{host}]:{port_text}")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address (endpoints are IPv4 or [IPv6] addresses)") from None
    if port is None:
        raise ValueError(f"port {port_text!r} out of range 1-65535")
    return str(ip), port


def check_ip(value: Any) -> str:
    """A listener bind address: an IPv4 or IPv6 address, written as text."""
    if not isinstance(value, str):
        raise ValueError(f"expected an IP address such as 0.0.0.0 or :: (got {describe(value)})")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def describe(value: Any) -> str:
    """A YAML value in words, for messages: `null`, `a list`, `the number 5`, `the string 'x'`."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {_short(value)!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "null" if value is None else type(value).__name__


def _short(text: str) -> str:
    """User text cut to a length that fits in a problem line."""
    return text if len(text) <= 40 else text[:37] + "..."


def _quote(text: str) -> str:
    """Quote user text as the user wrote it (no doubled backslashes)."""
    return "'" + text + "'"


Duration = Annotated[int, BeforeValidator(parse_duration)]
Name = Annotated[str, BeforeValidator(parse_name)]
HeaderName = Annotated[str, BeforeValidator(parse_header_name)]
HeaderValue = Annotated[str, BeforeValidator(check_header_value)]
OrdinaryHeaderName = Annotated[str, BeforeValidator(parse_header_name), AfterValidator(check_ordinary_header)]
QueryName = Annotated[str, BeforeValidator(check_query_name)]
MethodToken = Annotated[str, BeforeValidator(check_method_token)]
CookiePath = Annotated[str, BeforeValidator(check_cookie_path)]
TextValue = Annotated[str, BeforeValidator(check_text_value)]
ModifiableHeader = Annotated[str, BeforeValidator(parse_header_name), AfterValidator(check_modifiable_header)]
Origin = Annotated[str, BeforeValidator(check_origin)]
Regex = Annotated[str, BeforeValidator(check_regex)]
Method = Annotated[str, BeforeValidator(check_method)]
PathText = Annotated[str, BeforeValidator(check_path)]
IpAddress = Annotated[str, BeforeValidator(check_ip)]
Port = Annotated[int, AfterValidator(lambda p: _in_range(p, 1, 65535, "port"))]
Percent = Annotated[float, AfterValidator(lambda p: _in_range(p, 0, 100, "percent"))]
CookieName = Annotated[str, BeforeValidator(check_cookie_name)]
RewriteHost = Annotated[str, BeforeValidator(lambda v: check_host(v, port_hint="write the host name alone"))]
RedirectHost = Annotated[
    str, BeforeValidator(lambda v: check_host(v, port_hint="write the host name alone and the port in redirect.port"))
]


def _in_range(value: float, low: float, high: float, what: str) -> Any:
    if not low <= value <= high:
        raise ValueError(f"{what} {value} out of range {low}-{high}")
    return value
