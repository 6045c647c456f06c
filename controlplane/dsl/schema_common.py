"""Base class and shared pieces of the DSL schema."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from controlplane.dsl.limits import MAX_UINT32
from controlplane.dsl.types import Duration, HeaderValue, MethodToken, ModifiableHeader, OrdinaryHeaderName, Origin

MIN_FILL_INTERVAL_MS = 50
"""Envoy refuses token buckets that refill more often than every 50ms."""

AT_KEY = "at_key"
"""Error type of problems that the loader reports at one key of the mapping being validated."""


class Spec(BaseModel):
    """Base of every DSL object: unknown fields are errors, values are not coerced across types.

    Infinite numbers (`.inf` cannot be written, but `1.0e+999` reads as infinity) are refused too.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


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


def key_problem(key: str, message: str) -> PydanticCustomError:
    """A problem located at `key` of the mapping under validation rather than at the mapping.

    A validator of a whole mapping can only raise at the mapping's own path; the loader moves
    errors of this type to the key, so the user is pointed at the entry to change.
    """
    return PydanticCustomError(AT_KEY, message, {"key": key})


def distinct_header_names(value: Any) -> Any:
    """Refuse keys that name one header in two spellings (`X-A`, `x-a`).

    Header names are lower-cased, so the second entry would silently replace the first.
    """
    if not isinstance(value, dict):
        return value
    seen: dict[str, str] = {}
    for key in value:
        if not isinstance(key, str):
            continue
        first = seen.setdefault(key.lower(), key)
        if first != key:
            raise key_problem(key, f"'{key}' is the same header as '{first}' (header names ignore case): keep one")
    return value


HeaderMap = Annotated[dict[ModifiableHeader, HeaderValue], BeforeValidator(distinct_header_names)]


class HeaderOpsSpec(Spec):
    """Header changes applied to requests or responses."""

    set: HeaderMap = {}
    add: HeaderMap = {}
    remove: list[ModifiableHeader] = []


class RateLimitSpec(Spec):
    """Local token bucket: `requests` per `per`, bursts up to `burst` (default: `requests`)."""

    requests: int = Field(ge=1, le=MAX_UINT32)
    per: Duration
    burst: int | None = Field(None, le=MAX_UINT32)

    @field_validator("per")
    @classmethod
    def _envoy_minimum_fill_interval(cls, per: int) -> int:
        if per < MIN_FILL_INTERVAL_MS:
            raise ValueError(f"per must be at least {MIN_FILL_INTERVAL_MS}ms (Envoy's token bucket minimum)")
        return per

    @field_validator("burst")
    @classmethod
    def _burst_covers_requests(cls, burst: int | None, info: ValidationInfo) -> int | None:
        requests = info.data.get("requests")
        if burst is not None and requests is not None and burst < requests:
            raise ValueError(f"burst ({burst}) must be at least requests ({requests})")
        return burst


class CorsSpec(Spec):
    """CORS policy; origins are exact strings, `*`, or `~REGEX`."""

    allow_origins: list[Origin] = Field(min_length=1)
    allow_methods: list[MethodToken] = []
    allow_headers: list[OrdinaryHeaderName] = []
    expose_headers: list[OrdinaryHeaderName] = []
    max_age: Duration | None = None
    allow_credentials: bool = False

    @field_validator("max_age")
    @classmethod
    def _whole_seconds(cls, max_age: int | None) -> int | None:
        """Access-Control-Max-Age is a number of seconds; a fraction would be silently cut off."""
        if max_age is not None and (max_age < 1000 or max_age % 1000):
            raise ValueError("max_age must be a whole number of seconds, at least 1s (e.g. 10m or 600s)")
        return max_age

    @model_validator(mode="after")
    def _credentials(self) -> CorsSpec:
        if self.allow_credentials and "*" in self.allow_origins:
            raise ValueError("allow_credentials cannot be used with the origin '*' (browsers refuse it)")
        return self


def listify(value: Any) -> Any:
    """Accept one item where a list is expected."""
    return value if isinstance(value, list) else [value]
