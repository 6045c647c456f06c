"""Fuzzing the route DSL loader: no input crashes it, and every refusal is a clear problem.

Generators: arbitrary bytes (through a real file), arbitrary text, text of YAML punctuation,
nested values keyed by the DSL's field names, documents built from the pydantic schema itself
(well-formed ones get past the shape checks and reach the cross-file rules and the translator;
noisy ones have values of the wrong type), and mutations of the valid example and golden files
(a key deleted, a value retyped, a key repeated, Unicode inserted, the file cut at a byte). The
properties are those of `assert_clear` and `assert_translates`; `FOUND` keeps every input that
once broke them.

Runs are derandomized and use no example database, so CI sees the same inputs every time and a
bounded run time. `DSL_FUZZ_EXAMPLES=N` runs N random (not derandomized) examples per test for a
longer local campaign.
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo

from controlplane.cache import Snapshot
from controlplane.dsl import load_files, load_texts
from controlplane.dsl import types as dsl_types
from controlplane.dsl.schema import DocumentSpec
from controlplane.dsl.schema_routes import (
    FaultSpec,
    ListenerSpec,
    MatchSpec,
    RedirectSpec,
    RewriteSpec,
    RouteSpec,
    ValueMatchSpec,
)
from controlplane.dsl.schema_services import HashOnSpec, HealthCheckSpec
from controlplane.dsl.yamltext import read_yaml
from controlplane.errors import ConfigError, Problem
from controlplane.model import Model
from controlplane.render import resources_to_data
from controlplane.translate import build_resources
from tests.conftest import ROOT

SOURCE = "fuzz.yaml"
_CAMPAIGN = int(os.environ.get("DSL_FUZZ_EXAMPLES", "0"))


def _fuzz_settings(examples: int) -> settings:
    """Bounded and reproducible in CI; `DSL_FUZZ_EXAMPLES` turns it into a random campaign."""
    return settings(
        max_examples=_CAMPAIGN or examples,
        derandomize=not _CAMPAIGN,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


WHOLE_FILE = (
    "YAML syntax error: ",
    "only one YAML document per file",
    "a route file is a mapping with listeners and services",
    "document has more than ",
    "document is nested deeper than ",
    "file is larger than ",
    "cannot read: ",
)
"""Messages about the file as a whole (or its YAML structure): these may have no field path."""

LEAKS = (
    "<class",
    "Traceback",
    "object at 0x",
    "type=",
    "input_value=",
    "pydantic.dev",
    "For further information",
    "invalid literal for",
    "codec can't",
    "Exceeds the limit",
    "should match pattern",
)
"""Fragments of Python or pydantic internals that must never reach a user."""


YAML_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
"""Line breaks as YAML (and most editors) count them: CR alone and NEL end a line too."""


def assert_clear(problems: list[Problem], text: str, source: str = SOURCE) -> None:
    """Every problem names the file, a line inside it (0: the whole file), a field when one is at fault."""
    assert problems, "a ConfigError without problems"
    lines = len(YAML_LINE_BREAK.findall(text)) + 1
    for problem in problems:
        shown = str(problem)
        assert problem.path == source, shown
        assert problem.message.strip(), shown
        assert not any(leak in problem.message for leak in LEAKS), shown
        if problem.line == 0:
            assert (problem.column, problem.field) == (0, ""), shown
            continue
        assert 1 <= problem.line <= lines, f"line outside the file ({lines} lines): {shown}"
        assert problem.column >= 1, shown
        if not problem.message.startswith(WHOLE_FILE):
            assert problem.field, f"no field path: {shown}"


def assert_clear_or_translates(text: str) -> None:
    """The loader refuses `text` with clear problems, or accepts it and the result translates."""
    try:
        model = load_texts([(SOURCE, text)])
    except ConfigError as exc:
        assert_clear(exc.problems, text)
        return
    assert_translates(model)


def assert_translates(model: Model) -> None:
    """Translated, serialized and hashed as the pipeline does, and shown as JSON as `render` does."""
    resources = build_resources(model)
    Snapshot.from_resources(resources)
    resources_to_data(resources)


def assert_file_clear_or_translates(path: Path, data: bytes) -> None:
    """As `assert_clear_or_translates`, for raw bytes read from a file by `load_files`."""
    path.write_bytes(data)
    try:
        model = load_files([str(path)])
    except ConfigError as exc:
        assert_clear(exc.problems, data.decode("utf-8", errors="replace"), str(path))
        return
    assert_translates(model)


# --- inputs the fuzzer found ------------------------------------------------------------------

_ROUTE = "listeners: [{name: a, port: 80, routes: [{match: {prefix: /}, to: a, %s}]}]\nservices: {a: {}}\n"

FOUND = [
    pytest.param("\x00", id="nul-character"),  # PyYAML's ReaderError escaped the loader
    pytest.param("a: 1\x1b\n", id="escape-character"),
    pytest.param("[" * 1000, id="deep-flow-sequence"),  # RecursionError in PyYAML's composer
    pytest.param("a: " + "{a: " * 1000 + "1" + "}" * 1000, id="deep-flow-mapping"),
    pytest.param('a: "\\ud800"', id="lone-surrogate-value"),  # UnicodeEncodeError in regexes, bodies
    pytest.param('"\\udfff": 1', id="lone-surrogate-key"),
    pytest.param("\r0", id="carriage-return-line-break"),  # lines counted as YAML counts them
    pytest.param("[]:", id="sequence-as-key"),  # a problem without a field path
    pytest.param("1: a", id="number-as-key"),
    pytest.param("09", id="leading-zero-scalar"),  # a false "too many digits" of a first fix (campaign)
    pytest.param(_ROUTE % ("timeout: " + "9" * 400 + "s"), id="duration-overflows-float"),  # OverflowError
    pytest.param(_ROUTE % "timeout: 99999999999999h", id="duration-beyond-protobuf"),  # render crashed
    pytest.param(_ROUTE % "rate_limit: {requests: 4294967296, per: 1s}", id="uint32-overflow"),  # ValueError
    pytest.param(
        (_ROUTE % "timeout: 1s").replace("a: {}", "a: {circuit_breaker: {max_retries: 18446744073709551616}}"),
        id="uint64-overflow",
    ),
    pytest.param("alerts: {p99_ms: 1.0e+999}", id="infinite-number"),  # accepted as a threshold of infinity
    # Found reading the code: a ValueError of int(), int()'s own message, a port 80 written in Arabic digits.
    pytest.param("listeners: [{name: a, port: " + "9" * 5000 + "}]", id="int-beyond-4300-digits"),
    pytest.param("services: {a: {endpoints: ['10.0.0.1:\u00b2']}}", id="superscript-port"),
    pytest.param("services: {a: {endpoints: ['10.0.0.1:\u0668\u0660']}}", id="arabic-indic-port"),
]
"""Inputs that crashed the loader or broke a property before they were fixed: kept as regressions."""


@pytest.mark.parametrize("text", FOUND)
def test_inputs_the_fuzzer_found(text: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_texts([(SOURCE, text)])
    assert_clear(refused.value.problems, text)


# --- arbitrary input -------------------------------------------------------------------------


@_fuzz_settings(150)
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    assert_file_clear_or_translates(tmp_path_factory.getbasetemp() / "fuzz-bytes.yaml", data)


@_fuzz_settings(200)
@given(text=st.text(max_size=1024))
def test_arbitrary_text(text: str) -> None:
    assert_clear_or_translates(text)


YAMLISH = st.text(alphabet=" \t\n-:{}[],'\"&*!|>#?%@`\\abz019.", max_size=300)
"""Text made of YAML's punctuation, to reach the parser's rarer paths."""


@_fuzz_settings(200)
@given(text=YAMLISH)
def test_yaml_punctuation(text: str) -> None:
    assert_clear_or_translates(text)


# --- documents shaped by the schema ----------------------------------------------------------

NAMES = ("api", "web")
"""Service (and listener) names: few, so that routes often name a service that exists."""

SCALAR_TEXT = st.one_of(
    st.sampled_from(
        (
            *NAMES,
            "/",
            "/api",
            "10.0.0.1:8080",
            "169.254.169.254:80",
            "example.com",
            "x-request-id",
            ":authority",
            "1s",
            "^/a+$",
            "*",
            "GET",
            "round_robin",
            "5xx",
            "",
            "\u00e9",
            "a\r\nb",
            "\x00",
        )
    ),
    st.text(max_size=12),
)
"""Strings that are valid somewhere in the DSL, plus a few that are valid nowhere."""

SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), SCALAR_TEXT)

ANY_VALUE = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SCALAR_TEXT, inner, max_size=3),
    max_leaves=8,
)
"""Any YAML value: what a field gets when the generator gives it the wrong type."""

Vocabulary = tuple[tuple[Any, ...], tuple[Any, ...]]
"""(values the DSL accepts, values it refuses) for one scalar type or field."""

_BY_VALIDATOR: dict[Callable[..., Any], Vocabulary] = {
    dsl_types.parse_duration: (
        ("1s", "2s", "10s", "1m30s", "1h", "1s", "2s", "250ms", "0s", "8760h"),
        ("10", "1s1s", "1.0001ms", "8761h", "9" * 40 + "s"),
    ),
    dsl_types.parse_name: (NAMES, ("Api", "", "-a")),
    dsl_types.parse_header_name: (("x-a", "X-B", "cookie"), (":authority", "host", ":path", "a b", "", ":x")),
    dsl_types.check_header_value: (("v", "a b", "\u00e9"), ("", "a\nb", "\x00", 1, "x" * 8193)),
    dsl_types.check_regex: (("^/a$", "(?i)b", ".*"), ("(?=x)", "a{1000}", "[", "\\x{100}")),
    dsl_types.check_path: (("/", "/api", "/a/b/"), ("api", "/a b", "/?")),
    dsl_types.check_ip: (("0.0.0.0", "::", "127.0.0.1"), ("1.2.3", "fe80::1%eth0")),
    dsl_types.check_origin: (("*", "https://a.example", "~^https://.*$"), ("~(", "", "a\nb")),
    dsl_types.check_method: (("GET", "POST"), ("get", "BREW")),
    dsl_types.check_method_token: (("GET", "PURGE"), ("", "GET\r\n")),
    dsl_types.check_query_name: (("q", "page"), ("", "a\nb", "q" * 1025)),
    dsl_types.check_cookie_path: (("", "/", "/app"), ("app", "/a;b")),
    dsl_types.check_text_value: (("/v2/\\1", ""), ("\n",)),
    dsl_types.check_cookie_name: (("session", "s"), ("a b", "")),
}
"""Vocabularies of the DSL's own scalar types, keyed by their pydantic validator."""

_BY_FIELD: dict[str, Vocabulary] = {
    "address": (
        ("10.0.0.1:8080", "[::1]:8080", "10.0.0.2:80"),
        ("169.254.169.254:80", "127.0.0.1:9901", "a:1", "10.0.0.1:\u00b2", "10.0.0.1:\u0668\u0660"),
    ),
    "endpoints": (("10.0.0.1:8080", "10.0.0.3:8080"), ("0.0.0.0:80", "[fe80::1]:80")),
    "to": (NAMES, ("nope", "ns/svc:http")),
    "mirror": (NAMES, ("nope",)),
    "service": (NAMES, ("nope",)),
    "domains": (("example.com", "*.example.com", "*", "a.example"), ("a b", "a.com:80", "")),
    "http": (("/healthz",), ("healthz",)),
    "grpc": ((True, ""), (False,)),
    "cookie": (("session",), ("a;b",)),
    "url": (("http://127.0.0.1:9/hook",), ("ftp://x",)),
    "host": (("api.example.com",), ("", "a b", "a:80")),
    "namespace": (("default", "shop"), ("", "Shop")),
    "name": (("api", "web"), ("",)),
    "port": ((80, 8080, 10000), (0, 70_000)),
}
"""Vocabularies for plain-string fields and shorthands, keyed by field name."""


EXACTLY_ONE: dict[type[BaseModel], tuple[str, ...]] = {
    ListenerSpec: ("routes", "hosts"),
    RouteSpec: ("to", "redirect", "direct_response"),
    MatchSpec: ("prefix", "path", "regex"),
    ValueMatchSpec: ("exact", "prefix", "suffix", "contains", "regex", "present"),
    HealthCheckSpec: ("http", "tcp", "grpc"),
    HashOnSpec: ("header", "cookie", "source_ip", "query"),
    FaultSpec: ("delay", "abort"),
    RewriteSpec: ("prefix", "regex"),
    RedirectSpec: ("path", "prefix"),
}
"""The schema's exactly-one (and at-most-one) groups: a well-formed document sets one field of each."""

FORWARDING_ONLY = ("timeout", "idle_timeout", "retries", "rewrite", "mirror")
"""Route fields allowed only with `to`: a well-formed route that redirects or answers has none."""

_BOUNDS = {"ge": 0, "gt": 1, "le": 0, "lt": -1}
"""annotated-types bound -> the adjustment that makes it inclusive (for integers)."""


class Shapes:
    """Strategies for DSL documents read off the pydantic schema.

    Well-formed (`noisy=False`): the right type everywhere, values mostly in range, one field of
    each exactly-one group; many of these pass every check and reach the translator. Noisy:
    one value in four of another type, refused values from each vocabulary, unknown fields.
    """

    def __init__(self, noisy: bool) -> None:
        self.noisy = noisy

    def document(self) -> st.SearchStrategy[dict[str, Any]]:
        document = self.model(DocumentSpec)
        return document if self.noisy else document.map(_with_every_service)

    def model(self, model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
        fields = {name: self.field(f.annotation, f.metadata, name, f.default) for name, f in model.model_fields.items()}
        required = {name: fields[name] for name, f in model.model_fields.items() if f.is_required()}
        group = () if self.noisy else EXACTLY_ONE.get(model, ())
        optional = {n: f for n, f in fields.items() if n not in required and n not in group}
        if self.noisy:
            optional["unknown_field"] = ANY_VALUE
        if not group:
            return st.fixed_dictionaries(required, optional=optional)
        return st.sampled_from(group).flatmap(
            lambda one: st.fixed_dictionaries({**required, one: fields[one]}, optional=_allowed(optional, one))
        )

    def field(self, annotation: Any, metadata: list[Any], name: str, default: Any = None) -> st.SearchStrategy[Any]:
        if annotation is bool and not self.noisy and isinstance(default, bool):
            return st.sampled_from((default, default, not default))  # flags off their default clash most
        right = self.value(annotation, _flat(metadata), name)
        return st.one_of(right, right, right, ANY_VALUE) if self.noisy else right

    def value(self, annotation: Any, metadata: list[Any], name: str) -> st.SearchStrategy[Any]:
        funcs = [m.func for m in metadata if isinstance(m, BeforeValidator)]
        known = [f for f in funcs if f in _BY_VALIDATOR]
        if known:
            return self.words(_BY_VALIDATOR[known[0]])
        right = self.typed(annotation, metadata, name)
        if funcs and name in _BY_FIELD:  # a shorthand: a string where the schema wants an object
            return st.one_of(right, self.words(_BY_FIELD[name]))
        return right

    def typed(self, annotation: Any, metadata: list[Any], name: str) -> st.SearchStrategy[Any]:
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is typing.Annotated:
            return self.value(args[0], [*metadata, *_flat(list(args[1:]))], name)
        if origin in (typing.Union, types.UnionType):  # well-formed: leave a field out rather than null
            options = [a for a in args if self.noisy or a is not type(None)]
            return st.one_of([self.value(a, metadata, name) for a in options])
        if origin is typing.Literal:
            return st.sampled_from(args)
        if origin is list:
            return st.lists(self.field(args[0], [], name), min_size=0 if self.noisy else 1, max_size=2)
        if origin is dict:
            return st.dictionaries(self.value(args[0], [], name), self.field(args[1], [], ""), max_size=2)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return st.deferred(lambda: self.model(annotation))
        return self.scalar(annotation, _bounds(metadata), name)

    def scalar(self, annotation: Any, bounds: tuple[float | None, float | None], name: str) -> st.SearchStrategy[Any]:
        low, high = bounds
        if annotation is bool:
            return st.booleans()
        if annotation is int and name in _BY_FIELD:
            return self.words(_BY_FIELD[name])
        if annotation is int:
            return self.integers(int(low or 0), None if high is None else int(high))
        if annotation is float:
            beyond = st.sampled_from((1e300, 1e-300)) if self.noisy else st.nothing()
            return st.one_of(st.floats(low or 0, 100 if high is None else high), beyond)
        if annotation is type(None):
            return st.none()
        if name in _BY_FIELD:
            return self.words(_BY_FIELD[name])
        return SCALAR_TEXT if self.noisy else st.sampled_from(("a", "zone-1", ""))

    def integers(self, low: int, high: int | None) -> st.SearchStrategy[int]:
        """In range; without an upper bound also numbers beyond 32 and 64 bits; noisy: just outside."""
        inside = st.integers(low, min(high, low + 10) if high is not None else low + 10)
        edges = st.sampled_from((low, high) if high is not None else (low, 2**32, 2**64, 10**30))
        outside = st.sampled_from((low - 1, high + 1) if high is not None else (low - 1,))
        return st.one_of(inside, inside, edges, *([outside] if self.noisy else []))

    def words(self, words: Vocabulary) -> st.SearchStrategy[Any]:
        good, bad = words
        return st.sampled_from(good + bad if self.noisy else good)


def _with_every_service(document: dict[str, Any]) -> dict[str, Any]:
    """Declare every service of NAMES, so that well-formed routes rarely name a missing one."""
    services = document.get("services", {})
    for name in NAMES:
        services.setdefault(name, {"endpoints": [f"10.0.1.{NAMES.index(name)}:8080"]})
    return {**document, "services": services}


def _allowed(optional: dict[str, st.SearchStrategy[Any]], chosen: str) -> dict[str, st.SearchStrategy[Any]]:
    """The optional fields a well-formed object may have beside `chosen` of its group."""
    if chosen in ("redirect", "direct_response"):
        return {name: value for name, value in optional.items() if name not in FORWARDING_ONLY}
    return optional


def _flat(metadata: list[Any]) -> list[Any]:
    """Metadata with each nested FieldInfo (`Annotated[int, Field(ge=1)]`) replaced by its own."""
    return [item for m in metadata for item in (m.metadata if isinstance(m, FieldInfo) else [m])]


def _bounds(metadata: list[Any]) -> tuple[float | None, float | None]:
    """The inclusive (low, high) that `Ge`, `Gt`, `Le` and `Lt` constraints in `metadata` allow."""
    low: float | None = None
    high: float | None = None
    for item in metadata:
        for name, shift in _BOUNDS.items():
            bound = getattr(item, name, None)
            if isinstance(bound, int | float) and not isinstance(bound, bool):
                if name in ("ge", "gt"):
                    low = bound + shift
                else:
                    high = bound + shift
    return low, high


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True)


def _field_names(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    """Every field name of `model` and of the models inside it, found through their annotations."""
    seen.add(model)
    names = set(model.model_fields)
    for field in model.model_fields.values():
        for inner in _models_in(field.annotation):
            if inner not in seen:
                names |= _field_names(inner, seen)
    return names


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


FIELD_NAMES = sorted(_field_names(DocumentSpec, set()))

KEYED_VALUE = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=4),
    max_leaves=12,
)
"""Nested mappings, lists and scalars whose keys are the DSL's own field names, in any place."""


@_fuzz_settings(150)
@given(document=st.dictionaries(st.sampled_from(("listeners", "services", "alerts")), KEYED_VALUE, max_size=3))
def test_nested_values_keyed_by_field_names(document: dict[str, Any]) -> None:
    assert_clear_or_translates(_dump(document))


@_fuzz_settings(200)
@given(document=Shapes(noisy=True).document())
def test_schema_shaped_documents_with_wrong_values(document: dict[str, Any]) -> None:
    assert_clear_or_translates(_dump(document))


@_fuzz_settings(200)
@given(document=Shapes(noisy=False).document())
def test_schema_shaped_documents(document: dict[str, Any]) -> None:
    """Mostly right values: these reach the cross-file rules, and some reach the translator."""
    assert_clear_or_translates(_dump(document))


# --- mutations of valid files ----------------------------------------------------------------

VALID_FILES = sorted([*(ROOT / "examples").glob("*.yaml"), *(ROOT / "tests" / "golden" / "in").glob("*.yaml")])
VALID_TEXTS = [p.read_text(encoding="utf-8") for p in VALID_FILES]


def test_valid_files_are_valid() -> None:
    """The mutations start from files the loader accepts."""
    assert len(VALID_TEXTS) >= 20
    for path in VALID_FILES:
        load_files([str(path)])


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside `value` (mapping keys and list indexes)."""
    found = [at]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*at, key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(_paths(item, (*at, i)))
    return found


def _parent(document: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        document = document[part]
    return document


def _delete(document: Any, path: tuple[Any, ...], draw: Callable[..., Any]) -> Any:
    del _parent(document, path)[path[-1]]
    return document


def _retype(document: Any, path: tuple[Any, ...], draw: Callable[..., Any]) -> Any:
    old = _parent(document, path)[path[-1]]
    new = draw(ANY_VALUE.filter(lambda v: type(v) is not type(old)))
    _parent(document, path)[path[-1]] = new
    return document


STRUCTURAL = {"delete": _delete, "retype": _retype}


@_fuzz_settings(200)
@given(data=st.data())
def test_structural_mutations_of_valid_files(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(VALID_TEXTS), label="file")
    document = read_yaml(text, SOURCE).value
    paths = [p for p in _paths(document) if p]
    path = data.draw(st.sampled_from(paths), label="path")
    kind = data.draw(st.sampled_from(sorted(STRUCTURAL)), label="mutation")
    assert_clear_or_translates(_dump(STRUCTURAL[kind](document, path, data.draw)))


def _duplicate_key(text: str, data: st.DataObject) -> str:
    """Repeat one `key: value` line right after itself: a duplicate key at the same level."""
    lines = text.splitlines(keepends=True)
    keyed = [i for i, line in enumerate(lines) if ":" in line and not line.lstrip().startswith("#")]
    i = data.draw(st.sampled_from(keyed), label="line")
    return "".join([*lines[: i + 1], lines[i].replace("- ", "  ", 1), *lines[i + 1 :]])


def _insert_unicode(text: str, data: st.DataObject) -> str:
    at = data.draw(st.integers(0, len(text)), label="at")
    return text[:at] + data.draw(st.text(min_size=1, max_size=4), label="inserted") + text[at:]


TEXTUAL = {"duplicate_key": _duplicate_key, "insert_unicode": _insert_unicode}


@_fuzz_settings(200)
@given(data=st.data())
def test_textual_mutations_of_valid_files(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(VALID_TEXTS), label="file")
    kind = data.draw(st.sampled_from(sorted(TEXTUAL)), label="mutation")
    assert_clear_or_translates(TEXTUAL[kind](text, data))


@_fuzz_settings(100)
@given(data=st.data())
def test_truncated_valid_files(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    raw = data.draw(st.sampled_from(VALID_TEXTS), label="file").encode("utf-8")
    cut = data.draw(st.integers(0, len(raw)), label="cut")
    assert_file_clear_or_translates(tmp_path_factory.getbasetemp() / "fuzz-cut.yaml", raw[:cut])
