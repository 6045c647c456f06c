"""A cached hash for large frozen model objects.

The memoized translator looks model objects up by value on every build; a listener with
thousands of routes would otherwise be hashed from scratch each time. Objects are immutable,
so the hash is computed once per object and kept on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from operator import attrgetter
from typing import Any

_getters: dict[type, Callable[[Any], tuple[Any, ...]]] = {}
"""Per class: a getter of (class name, every compared field), built once (fields() is slow)."""


def _getter(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    names = [f.name for f in fields(cls) if f.compare]
    values = attrgetter(*names) if len(names) > 1 else (lambda o, g=attrgetter(*names): (g(o),))
    name = cls.__name__
    return lambda obj: (name, *values(obj))


def cached_hash(self: Any) -> int:
    """hash() of the compared fields, computed once per object."""
    cached: int | None = self.__dict__.get("_cached_hash")
    if cached is None:
        getter = _getters.get(type(self))
        if getter is None:
            getter = _getters[type(self)] = _getter(type(self))
        cached = hash(getter(self))
        object.__setattr__(self, "_cached_hash", cached)
    return cached
