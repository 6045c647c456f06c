"""Turn pydantic validation errors into located, readable problems."""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from controlplane.dsl.schema_common import AT_KEY
from controlplane.dsl.types import describe
from controlplane.dsl.yamltext import Located, Path, format_path
from controlplane.errors import Problem


def problems_from_validation(exc: ValidationError, root: type[BaseModel], doc: Located, source: str) -> list[Problem]:
    """One problem per pydantic error, at the line of the offending key or value."""
    return [_problem(error, root, doc, source) for error in exc.errors()]


def _problem(error: ErrorDetails, root: type[BaseModel], doc: Located, source: str) -> Problem:
    loc: Path = tuple(part for part in error["loc"] if part != "[key]")
    on_key = error["type"] == "extra_forbidden" or "[key]" in error["loc"]
    if error["type"] == AT_KEY:
        loc, on_key = (*loc, error.get("ctx", {})["key"]), True
    line, col = doc.position(loc, key=on_key)
    shown = loc if error["type"] in ("extra_forbidden", "missing") else doc.resolve(loc)
    return Problem(source, line, col, format_path(shown), _message(error, root, loc))


def _message(error: ErrorDetails, root: type[BaseModel], loc: Path) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return _unknown_field(root, loc)
    if kind == "missing":
        return f"required field '{loc[-1]}' is missing"
    if kind == "literal_error":
        return _literal_message(error)
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping (got {describe(error.get('input'))})"
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if kind.endswith("_type") and "input" in error:
        message += f" (got {describe(error['input'])})"
    return message


def _literal_message(error: ErrorDetails) -> str:
    """`invalid value 'least_conn'; expected one of: ... (did you mean 'least_request'?)`."""
    expected = str(error.get("ctx", {}).get("expected", ""))
    options = re.findall(r"'([^']*)'", expected) or [o.strip() for o in re.split(r",| or ", expected) if o.strip()]
    options = [{"True": "true", "False": "false"}.get(o, o) for o in options]
    value = error.get("input")
    if not isinstance(value, str | bool | int | float):
        return f"expected {_listed(options)} (got {describe(value)})"
    shown = "true" if value is True else "false" if value is False else repr(value)
    close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.6) if isinstance(value, str) else []
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"invalid value {shown}; expected {_listed(options)}{hint}"


def _listed(options: list[str]) -> str:
    return options[0] if len(options) == 1 else "one of: " + ", ".join(options)


def _unknown_field(root: type[BaseModel], loc: Path) -> str:
    name = str(loc[-1])
    known = sorted(_fields_at(root, loc[:-1]))
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else f"; expected one of: {', '.join(known)}"
    return f"unknown field '{name}'{hint}"


def _fields_at(root: type[BaseModel], loc: Path) -> set[str]:
    """The field names of the schema object found at `loc` (empty when it cannot be found)."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            current = field.annotation if field else None
        else:
            current = _item_type(current)
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return set(current.model_fields)
    return set()


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and Optional[...] down to the one concrete type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = options[0] if len(options) == 1 else annotation
            if len(options) != 1:
                return annotation
        else:
            return annotation


def _item_type(annotation: Any) -> Any:
    """The element type of list[X] or the value type of dict[K, X]."""
    args = typing.get_args(annotation)
    return args[-1] if args else None
