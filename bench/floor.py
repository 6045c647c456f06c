"""The protobuf floor: what building and serializing the same resources costs in Python protobuf.

`recipe(message)` turns a finished message into a plain tree of constructor arguments (outside
any timing); `build(recipe)` then makes the message again with one constructor call per message,
packing `Any` fields from their inner message, exactly as a hand-written builder would. The
result is checked byte for byte against the original, so the floor builds the same resources;
no translator can build them with fewer protobuf calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf import any_pb2, symbol_database


@dataclass(frozen=True)
class Recipe:
    """A message class and the keyword arguments (scalars, recipes, lists and maps of them)."""

    cls: Any
    kwargs: dict[str, Any]
    packed: bool = False
    """An `Any`: `kwargs["inner"]` is the recipe of the packed message."""


def recipe(message: Any) -> Recipe:
    """The constructor arguments that rebuild `message` (only fields that are set)."""
    if message.DESCRIPTOR.full_name == "google.protobuf.Any":
        inner = symbol_database.Default().GetSymbol(message.TypeName())()
        message.Unpack(inner)
        return Recipe(any_pb2.Any, {"inner": recipe(inner)}, packed=True)
    kwargs: dict[str, Any] = {}
    for field, value in message.ListFields():
        kwargs[field.name] = _value(field, value)
    return Recipe(type(message), kwargs)


def _value(field: Any, value: Any) -> Any:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        value_field = field.message_type.fields_by_name["value"]
        if value_field.message_type is not None:
            return {k: recipe(v) for k, v in value.items()}
        return dict(value)
    if field.is_repeated:
        return [recipe(v) for v in value] if field.message_type is not None else list(value)
    return recipe(value) if field.message_type is not None else value


def build(plan: Recipe) -> Any:
    """Construct the message of `plan`."""
    if plan.packed:
        packed = any_pb2.Any()
        packed.Pack(build(plan.kwargs["inner"]), deterministic=True)
        return packed
    return plan.cls(**{name: _built(value) for name, value in plan.kwargs.items()})


def _built(value: Any) -> Any:
    if isinstance(value, Recipe):
        return build(value)
    if isinstance(value, list):
        return [build(v) if isinstance(v, Recipe) else v for v in value]
    if isinstance(value, dict):
        return {k: build(v) if isinstance(v, Recipe) else v for k, v in value.items()}
    return value


def build_and_serialize(plans: Iterable[Recipe]) -> int:
    """Build every message and serialize it deterministically; the total size in bytes."""
    return sum(len(build(plan).SerializeToString(deterministic=True)) for plan in plans)


def check_same(messages: Iterable[Any], plans: Iterable[Recipe]) -> None:
    """Raise unless each plan builds a message byte-identical to its original."""
    for message, plan in zip(messages, plans, strict=True):
        if build(plan).SerializeToString(deterministic=True) != message.SerializeToString(deterministic=True):
            raise AssertionError(f"floor builds a different {type(message).__name__}")
