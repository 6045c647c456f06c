"""Read YAML into plain Python values while remembering where every value came from.

Two YAML 1.1 traps are closed here: `on`/`off`/`yes`/`no` are plain strings (YAML 1.2 core
schema: only `true`/`false` are booleans), and `1:30` is a string, not a base-60 integer.
Duplicate mapping keys, which PyYAML silently merges, are reported as problems.

Documents are parsed by libyaml (PyYAML's C parser, about ten times faster: the parse is most of
a route file's load) and composed in Python, where the limits are checked. Text that is not
ASCII, or that libyaml refuses, is parsed again by PyYAML's own parser, whose line and column
counting and messages are the reference; a test holds the two to the same results.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.resolver import Resolver

from controlplane.errors import Problem

_CParser: Any
try:
    from yaml import cyaml

    _CParser, _LIBYAML = cyaml.CParser, True  # type: ignore[attr-defined]
except ImportError:  # PyYAML built without libyaml: its Python parser alone, slower
    _CParser, _LIBYAML = object, False

Path = tuple[str | int, ...]
"""A location inside a document: mapping keys and sequence indexes from the root."""

_INT = re.compile(r"^[-+]?[0-9]+$")
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
MAX_NODES = 200_000
"""Upper bound on values in one document, counting alias expansions ("billion laughs")."""
MAX_DEPTH = 64
"""Upper bound on nesting; also stops self-referencing aliases.

Checked while composing too: PyYAML composes recursively, and without the check a few hundred
`[` would exhaust Python's stack before the document is ever looked at.
"""
_STR = "tag:yaml.org,2002:str"
_PLAIN = "tag:controlplane,plain"
"""Tag of a plain scalar without an explicit tag, resolved by `_scalar` (YAML 1.2 core schema)."""
MAX_NUMBER_DIGITS = 100
"""Longest integer read as a number; longer ones are refused. No field takes more than 20 digits,
and Python refuses to convert more than 4300 (a ValueError that would escape the loader)."""
_SURROGATE = re.compile("[\ud800-\udfff]")
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
"""What YAML counts as a line break, so lines found here agree with PyYAML's marks."""

_NULL = {"", "~", "null", "Null", "NULL"}
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


@dataclass
class Located:
    """A parsed document: the value plus the line/column of every key and value in it."""

    value: Any
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def resolve(self, path: Path) -> Path:
        """The longest part of `path` that exists in the file.

        Shorthands add steps the user never wrote (`to: api` is validated as `to[0].service`,
        `mirror: {...}` as `mirror[0]`): such index steps are skipped, and the path stops at the
        first other step the file does not have.
        """
        real: Path = ()
        for part in path:
            if (*real, part) in self.values:
                real = (*real, part)
            elif not isinstance(part, int):
                break
        return real

    def position(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Line and column of `path` (its key when `key`), or of its nearest located ancestor."""
        real = self.resolve(path)
        if key and real == path and real in self.keys:
            return self.keys[real]
        return self.values.get(real, (1, 1))


def _scalar(node: yaml.ScalarNode) -> Any:
    """Resolve a plain scalar by the YAML 1.2 core schema; quoted scalars stay strings."""
    return _scalar_value(node.value, node.style, node.tag)


def _scalar_value(text: str, style: str | None, tag: str) -> Any:
    """`_scalar` of a scalar's text, style and resolved tag."""
    if style in ("'", '"', "|", ">") or tag == _STR:  # quoted, or tagged `!!str 5`
        return text
    if text in _NULL:
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.match(text):
        return int(text) if len(text.lstrip("+-")) <= MAX_NUMBER_DIGITS else text
    if _HEX.match(text):
        return int(text, 16)
    if _FLOAT.match(text) and any(c.isdigit() for c in text):
        return float(text)
    return text


def _long_number(text: str, style: str | None, tag: str) -> bool:
    """A plain integer that `_scalar_value` left as text because it is longer than MAX_NUMBER_DIGITS."""
    plain = not style and tag != _STR  # plain: None from PyYAML, "" from libyaml
    return plain and _INT.match(text) is not None and len(text.lstrip("+-")) > MAX_NUMBER_DIGITS


def _mark(node: yaml.Node) -> tuple[int, int]:
    return _mark_of(node.start_mark)


def _mark_of(mark: yaml.Mark) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


class _Differs(Exception):
    """The text holds something libyaml and PyYAML place differently: PyYAML reads it."""


class _TooLarge(Exception):
    def __init__(self, mark: tuple[int, int], reason: str) -> None:
        self.mark = mark
        self.reason = reason


def _too_deep() -> str:
    return f"document is nested deeper than {MAX_DEPTH} levels"


class _Limited:
    """Composing with YAML 1.2 plain scalars, refusing nesting beyond MAX_DEPTH (see MAX_DEPTH)."""

    depth = 0

    def resolve(self, kind: type[yaml.Node], value: str, implicit: tuple[bool, bool]) -> str:
        """Untagged plain scalars get `_PLAIN`, so `_scalar` resolves them by YAML 1.2, not PyYAML's 1.1.

        PyYAML would tag `09` and `1e3` as strings (they are not YAML 1.1 numbers) while `010` is
        an integer; YAML 1.2's core schema reads all three as numbers.
        """
        if kind is yaml.ScalarNode and implicit[0]:
            return _PLAIN
        return typing.cast(str, super().resolve(kind, value, implicit))  # type: ignore[misc]

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH + 1:  # the root is depth 1 and path length 0
                event = self.peek_event()  # type: ignore[attr-defined]
                raise _TooLarge(_mark_of(event.start_mark), _too_deep())
            return typing.cast(yaml.Node | None, super().compose_node(parent, index))  # type: ignore[misc]
        finally:
            self.depth -= 1


class _DepthLimitedLoader(_Limited, yaml.SafeLoader):
    """PyYAML's own parser: the reference for positions and messages."""


class _LibyamlLoader(_Limited, Composer, _CParser, Resolver):  # type: ignore[misc]  # C base, untyped
    """libyaml's events, composed by PyYAML's Python composer (so `_Limited` applies)."""

    def __init__(self, stream: str) -> None:
        _CParser.__init__(self, stream)
        Composer.__init__(self)
        Resolver.__init__(self)

    def compose_scalar_node(self, anchor: Any) -> Any:
        event: Any = self.peek_event()
        if not event.value and not event.style:
            # A missing value (`a:`, `{a, b: }`, `? a`): libyaml places it where the next token
            # starts, PyYAML where the last one ended; PyYAML's position is the one reported.
            raise _Differs
        if event.tag == "!":  # the non-specific tag alone: PyYAML's parser marks it plain-implicit
            event.implicit = (True, False)
        return super().compose_scalar_node(anchor)


class _Builder:
    def __init__(self, source: str) -> None:
        self.source = source
        self.doc = Located(value=None)
        self.count = 0

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooLarge(_mark(node), f"document has more than {MAX_NODES} values (after alias expansion)")
        if len(path) > MAX_DEPTH:
            raise _TooLarge(_mark(node), _too_deep())
        self.doc.values[path] = _mark(node)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        return self._scalar(node.value, node.style, node.tag, _mark(node), path)

    def _scalar(self, text: str, style: str | None, tag: str, at: tuple[int, int], path: Path) -> Any:
        """The value of a scalar at `at`; problems for numbers too long and lone surrogates."""
        value = _scalar_value(text, style, tag)
        if not isinstance(value, str):
            return value
        if _long_number(text, style, tag):
            self._problem(*at, path, f"a number may have at most {MAX_NUMBER_DIGITS} digits")
        return self._without_surrogates(value, at, path)

    def _without_surrogates(self, text: str, mark: tuple[int, int], path: Path) -> str:
        """Refuse lone surrogates (`"\\ud800"`): they are not characters and cannot be written as UTF-8.

        The text goes on with U+FFFD in their place, so the schema checks see valid text and
        this is the one problem reported.
        """
        if text.isascii() or not _SURROGATE.search(text):
            return text
        line, col = mark
        self._problem(line, col, path, "text contains a lone surrogate (\\uD800-\\uDFFF escape), not a character")
        return _SURROGATE.sub("\ufffd", text)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line, col = _mark(key_node)
            key = _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self._problem(line, col, _key_path(path, key_node), "mapping keys must be strings")
                continue
            if key in result:
                self._problem(line, col, (*path, key), f"duplicate key '{key}'")
                continue
            if key == "<<":
                self._problem(line, col, (*path, key), "YAML merge keys (<<) are not supported: write the fields out")
                continue
            key = self._without_surrogates(key, (line, col), (*path, key))
            self.doc.keys[(*path, key)] = (line, col)
            result[key] = self.build(value_node, (*path, key))
        return result

    def _problem(self, line: int, col: int, path: Path, message: str) -> None:
        field = _SURROGATE.sub("\ufffd", format_path(path))  # a key may hold one (see _without_surrogates)
        self.doc.problems.append(Problem(self.source, line, col, field, message))


class _EventBuilder(_Builder):
    """`_Builder`'s values, positions and problems, built from libyaml's events as they come."""

    def __init__(self, next_event: Any, source: str) -> None:
        super().__init__(source)
        self._next = next_event

    def read(self) -> Located:
        next_event = self._next
        next_event()  # the stream's start
        if type(next_event()) is not yaml.DocumentStartEvent:
            raise _Differs
        self.doc.value = self._value(next_event(), ())
        next_event()  # the document's end
        if type(next_event()) is not yaml.StreamEndEvent:
            raise _Differs
        return self.doc

    def _value(self, event: Any, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES or len(path) > MAX_DEPTH or event.anchor is not None:
            raise _Differs  # aliases included: their `anchor` is the name they refer to
        at = _event_at(event)
        self.doc.values[path] = at
        kind = type(event)
        if kind is yaml.ScalarEvent:
            return self._scalar(event.value, event.style, _event_tag(event), at, path)
        if kind is yaml.MappingStartEvent:
            return self._mapping_events(path)
        if kind is not yaml.SequenceStartEvent:
            raise _Differs
        items: list[Any] = []
        while type(item := self._next()) is not yaml.SequenceEndEvent:
            items.append(self._value(item, (*path, len(items))))
        return items

    def _mapping_events(self, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while type(event := self._next()) is not yaml.MappingEndEvent:
            if type(event) is not yaml.ScalarEvent or event.anchor is not None:
                raise _Differs
            key = _scalar_value(event.value, event.style, _event_tag(event))
            if not isinstance(key, str) or key in result or key == "<<":
                raise _Differs  # problems the composer path reports
            at = _event_at(event)
            key = self._without_surrogates(key, at, (*path, key))
            self.doc.keys[(*path, key)] = at
            result[key] = self._value(self._next(), (*path, key))
        return result


def _event_at(event: Any) -> tuple[int, int]:
    """Line and column (from 1) where `event` starts."""
    return _mark_of(event.start_mark)


def _event_tag(event: Any) -> str:
    """The tag `_Limited.resolve` gives a scalar event; an empty plain value is the composer's
    (libyaml and PyYAML place it differently, see `_LibyamlLoader`)."""
    if not event.value and not event.style:
        raise _Differs
    tag = event.tag
    if tag is None or tag == "!":
        return _PLAIN if tag == "!" or event.implicit[0] else _STR
    return typing.cast(str, tag)


def _key_path(path: Path, key_node: yaml.Node) -> Path:
    """Where a key that is not a string sits: its text (`1`, `null`, `true`), or `[...]` / `{...}`."""
    if isinstance(key_node, yaml.ScalarNode):
        return (*path, key_node.value or "null")
    return (*path, "[...]" if isinstance(key_node, yaml.SequenceNode) else "{...}")


def format_path(path: Path) -> str:
    """Render a path as `listeners[0].routes[1].match`."""
    out = ""
    for part in path:
        name = part if part != "" else '""'  # an empty key, e.g. `"": x`
        out += f"[{part}]" if isinstance(part, int) else (f".{name}" if out else str(name))
    return out


def read_yaml(text: str, source: str) -> Located:
    """Parse one YAML document; syntax errors, duplicate keys, merge keys and alias bombs become problems."""
    fast = read_with_libyaml(text, source)
    return fast if fast is not None else read_with_pyyaml(text, source)


def read_with_libyaml(text: str, source: str) -> Located | None:
    """`read_yaml` by libyaml's parser; None when it is missing, refuses the text (PyYAML reports
    why), or the text holds what the two read differently: tabs (libyaml accepts `0<tab>`, PyYAML
    does not) and characters beyond ASCII (columns counted differently)."""
    if not _LIBYAML or not text.isascii() or "\t" in text:
        return None
    return read_events(text, source) or read_composed(text, source)


def read_composed(text: str, source: str) -> Located | None:
    """`read_with_libyaml` through PyYAML's composer: every document libyaml reads."""
    try:
        nodes = list(yaml.compose_all(text, Loader=typing.cast(Any, _LibyamlLoader)))
    except (yaml.YAMLError, _TooLarge, _Differs):
        return None
    return _located(nodes, source)


def read_events(text: str, source: str) -> Located | None:
    """`read_composed` straight from libyaml's events, without PyYAML's Python composer and its
    nodes (about twice as fast); None for what only the composer handles: anchors and aliases,
    keys that are not plain strings, repeated and merge keys, empty values, no document or more
    than one, documents at the limits."""
    try:
        return _EventBuilder(_CParser(text).get_event, source).read()
    except (yaml.YAMLError, _Differs):
        return None


def read_with_pyyaml(text: str, source: str) -> Located:
    """`read_yaml` by PyYAML's Python parser: the reference for positions and messages."""
    try:
        nodes = list(yaml.compose_all(text, Loader=_DepthLimitedLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = exc.problem or exc.context or "invalid YAML"
        return Located(value=None, problems=[Problem(source, line, col, "", f"YAML syntax error: {reason}")])
    except yaml.reader.ReaderError as exc:
        return Located(value=None, problems=[_unprintable(text, exc, source)])
    except _TooLarge as exc:
        return Located(value=None, problems=[Problem(source, *exc.mark, "", exc.reason)])
    return _located(nodes, source)


def _located(nodes: list[yaml.Node], source: str) -> Located:
    """The first document's values and positions, or why there is none."""
    if len(nodes) > 1:
        line, col = _mark(nodes[1])
        return Located(value=None, problems=[Problem(source, line, col, "", "only one YAML document per file")])
    if not nodes:
        return Located(value={})
    builder = _Builder(source)
    try:
        builder.doc.value = builder.build(nodes[0], ())
    except _TooLarge as exc:
        return Located(value=None, problems=[Problem(source, *exc.mark, "", exc.reason)])
    return builder.doc


def _unprintable(text: str, exc: yaml.reader.ReaderError, source: str) -> Problem:
    """PyYAML refuses control characters (NUL, ESC, ...) anywhere in a file, even in comments."""
    breaks = list(_LINE_BREAK.finditer(text, 0, exc.position))
    line_start = breaks[-1].end() if breaks else 0
    message = (
        f"YAML syntax error: character U+{exc.character:04X} is not allowed in a YAML file "
        "(in a double-quoted string, write it as an escape such as \\t or \\x01)"
    )
    return Problem(source, len(breaks) + 1, exc.position - line_start + 1, "", message)
