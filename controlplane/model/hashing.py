"""A cached hash for large frozen model objects.

The memoized translator looks model objects up by value on every build; a listener with
thousands of routes would otherwise be hashed from scratch each time. Objects are immutable,
so the hash is computed once per object and kept on it.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any


def cached_hash(self: Any) -> int:
    """hash() of the compared fields, computed once per object."""
    cached: int | None = self.__dict__.get("_cached_hash")
    if cached is None:
        cached = hash((type(self).__name__, *(getattr(self, f.name) for f in fields(self) if f.compare)))
        object.__setattr__(self, "_cached_hash", cached)
    return cached
