"""Base class and shared pieces of the DSL schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from controlplane.dsl.types import Duration, HeaderName, HeaderValue, check_regex


class Spec(BaseModel):
    """Base of every DSL object: unknown fields are errors, values are not coerced across types."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def exactly_one(spec: BaseModel, *fields: str) -> None:
    """Raise when not exactly one of `fields` is set on `spec`."""
    present = [f for f in fields if getattr(spec, f) is not None]
    if len(present) != 1:
        found = f" (found {', '.join(present)})" if present else ""
        raise ValueError(f"set exactly one of {', '.join(fields)}{found}")


def at_most_one(spec: BaseModel, *fields: str) -> None:
    """Raise when more than one of `fields` is set on `spec`."""
    present = [f for f in fields if getattr(spec, f) is not None]
    if len(present) > 1:
        raise ValueError(f"{' and '.join(present)} cannot be combined")


class HeaderOpsSpec(Spec):
    """Header changes applied to requests or responses."""

    set: dict[HeaderName, HeaderValue] = {}
    add: dict[HeaderName, HeaderValue] = {}
    remove: list[HeaderName] = []

    @model_validator(mode="after")
    def _no_pseudo_headers(self) -> HeaderOpsSpec:
        for name in [*self.set, *self.add, *self.remove]:
            if name.startswith(":") or name == "host":
                raise ValueError(f"header {name!r} cannot be modified here (use rewrite.host for Host)")
        return self


class RateLimitSpec(Spec):
    """Local token bucket: `requests` per `per`, bursts up to `burst` (default: `requests`)."""

    requests: int
    per: Duration
    burst: int | None = None

    @model_validator(mode="after")
    def _positive(self) -> RateLimitSpec:
        if self.requests < 1 or self.per < 1 or (self.burst is not None and self.burst < self.requests):
            raise ValueError("requests and per must be positive, and burst at least requests")
        return self


class CorsSpec(Spec):
    """CORS policy; origins are exact strings, `*`, or `~REGEX`."""

    allow_origins: list[str]
    allow_methods: list[str] = []
    allow_headers: list[HeaderName] = []
    expose_headers: list[HeaderName] = []
    max_age: Duration | None = None
    allow_credentials: bool = False

    @model_validator(mode="after")
    def _origins(self) -> CorsSpec:
        if not self.allow_origins:
            raise ValueError("allow_origins must list at least one origin")
        for origin in self.allow_origins:
            if origin.startswith("~"):
                check_regex(origin[1:])
        if self.allow_credentials and "*" in self.allow_origins:
            raise ValueError("allow_credentials cannot be used with the origin '*' (browsers refuse it)")
        return self


def listify(value: Any) -> Any:
    """Accept one item where a list is expected."""
    return value if isinstance(value, list) else [value]
