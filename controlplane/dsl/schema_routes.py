"""DSL schema of `listeners:`, virtual hosts and routes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from controlplane.dsl.limits import MAX_UINT32
from controlplane.dsl.schema_common import (
    CorsSpec,
    HeaderOpsSpec,
    RateLimitSpec,
    Spec,
    at_most_one,
    distinct_header_names,
    exactly_one,
    listify,
)
from controlplane.dsl.types import (
    Duration,
    HeaderName,
    HeaderValue,
    IpAddress,
    Method,
    Name,
    PathText,
    Percent,
    Port,
    QueryName,
    RedirectHost,
    Regex,
    RewriteHost,
    TextValue,
)

RETRY_ON = (
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
)
"""Envoy's `x-envoy-retry-on` and `x-envoy-retry-grpc-on` conditions.

`retriable-headers` is left out: it needs `retriable_headers`, which the DSL does not offer, and
without them Envoy never retries on it.
"""

MAX_DIRECT_BODY_BYTES = 4096
"""Envoy's default `max_direct_response_body_size_bytes`: it counts bytes, not characters."""


def _supported_condition(value: Any) -> Any:
    """Name the reason for `retriable-headers`, which Envoy knows but the DSL cannot configure."""
    if value == "retriable-headers":
        raise ValueError(
            "retriable-headers is not supported: the DSL has no field for the headers it needs; "
            "use status_codes or conditions such as 5xx"
        )
    return value


RetryCondition = Annotated[Literal[RETRY_ON], BeforeValidator(_supported_condition)]  # type: ignore[valid-type]


def _value_shorthand(value: Any) -> Any:
    return value if isinstance(value, dict) else {"exact": value}


def _targets_shorthand(value: Any) -> Any:
    """`to: api` is one target; `to: [a, b]` splits evenly (weight 1 each)."""
    if isinstance(value, str):
        return [{"service": value}]
    if isinstance(value, list):
        return [{"service": v} if isinstance(v, str) else v for v in value]
    return value


def _mirror_shorthand(value: Any) -> Any:
    return [{"service": v} if isinstance(v, str) else v for v in listify(value)]


class ValueMatchSpec(Spec):
    """How a header or query value matches; a plain string means `exact`."""

    exact: HeaderValue | None = None
    prefix: HeaderValue | None = None
    suffix: HeaderValue | None = None
    contains: HeaderValue | None = None
    regex: Regex | None = None
    present: Literal[True] | None = None
    invert: bool = False

    @field_validator("prefix", "suffix", "contains")
    @classmethod
    def _not_empty(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Envoy refuses an empty prefix, suffix or contains (it would match every value)."""
        if value == "":
            raise ValueError(f"an empty {info.field_name} matches any value: write 'present: true' instead")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> ValueMatchSpec:
        exactly_one(self, "exact", "prefix", "suffix", "contains", "regex", "present")
        return self


ValueMatch = Annotated[ValueMatchSpec, BeforeValidator(_value_shorthand)]


class MatchSpec(Spec):
    """Which requests a route takes: one of prefix/path/regex, plus headers, query, methods."""

    prefix: PathText | None = None
    path: PathText | None = None
    regex: Regex | None = None
    headers: Annotated[dict[HeaderName, ValueMatch], BeforeValidator(distinct_header_names)] = {}
    query: dict[QueryName, ValueMatch] = {}
    methods: list[Method] = []
    case_sensitive: bool = True

    @field_validator("case_sensitive")
    @classmethod
    def _not_with_regex(cls, case_sensitive: bool, info: ValidationInfo) -> bool:
        """Envoy ignores `case_sensitive` for `safe_regex`, so `false` would silently do nothing."""
        if not case_sensitive and info.data.get("regex") is not None:
            raise ValueError(
                "case_sensitive: false has no effect on a regex match: remove it and start the regex with (?i)"
            )
        return case_sensitive

    @model_validator(mode="after")
    def _one_path_rule(self) -> MatchSpec:
        exactly_one(self, "prefix", "path", "regex")
        if any(v.invert for v in self.query.values()):
            raise ValueError("invert is supported on header matches only")
        return self


class TargetSpec(Spec):
    """A service and its share of a weighted split."""

    service: str
    weight: int = Field(1, ge=0, le=1_000_000)


class BackoffSpec(Spec):
    """Retry back-off: exponential from `base`, capped at `max` (default 10x base)."""

    base: Duration
    max: Duration | None = None

    @field_validator("base")
    @classmethod
    def _positive_base(cls, base: int) -> int:
        if base < 1:
            raise ValueError("base must be at least 1ms")
        return base

    @field_validator("max")
    @classmethod
    def _max_not_below_base(cls, value: int | None, info: ValidationInfo) -> int | None:
        base = info.data.get("base")
        if value is not None and base is not None and value < base:
            raise ValueError(f"max ({value}ms) must not be below base ({base}ms)")
        return value


class RetriesSpec(Spec):
    """Retry policy for a route."""

    attempts: int = Field(ge=0, le=10)
    status_codes: list[Annotated[int, Field(ge=100, le=599)]] = []
    """Before `on`, so that `on` may be empty when status codes give Envoy something to retry on."""
    on: list[RetryCondition] = ["connect-failure", "refused-stream", "reset"]
    per_try_timeout: Duration | None = None
    backoff: BackoffSpec | None = None
    other_host: bool = True

    @field_validator("on")
    @classmethod
    def _some_condition(cls, on: list[str], info: ValidationInfo) -> list[str]:
        """An empty `retry_on` means Envoy never retries, which no one writes `retries` for."""
        if not on and info.data.get("status_codes") == []:
            raise ValueError("on needs at least one condition (e.g. [connect-failure, reset]) or set status_codes")
        return on


class RedirectSpec(Spec):
    """Send an HTTP redirect instead of proxying; unset parts keep the request's."""

    status: Literal[301, 302, 303, 307, 308] = 301
    scheme: Literal["http", "https"] | None = None
    host: RedirectHost | None = None
    port: Port | None = None
    path: PathText | None = None
    prefix: PathText | None = None
    strip_query: bool = False

    @model_validator(mode="after")
    def _path_or_prefix(self) -> RedirectSpec:
        at_most_one(self, "path", "prefix")
        return self


class DirectResponseSpec(Spec):
    """Answer from Envoy itself."""

    status: int = Field(ge=200, le=599)
    body: str = ""

    @field_validator("body")
    @classmethod
    def _within_envoy_limit(cls, body: str) -> str:
        size = len(body.encode("utf-8"))
        if size > MAX_DIRECT_BODY_BYTES:
            raise ValueError(f"body is {size} bytes in UTF-8; Envoy allows at most {MAX_DIRECT_BODY_BYTES}")
        return body


class RegexRewriteSpec(Spec):
    """Replace what `pattern` matches in the path with `substitution` (\\1 for groups)."""

    pattern: Regex
    substitution: TextValue


class RewriteSpec(Spec):
    """Rewrite the path prefix, or the path by regex, and/or the Host header."""

    prefix: PathText | None = None
    regex: RegexRewriteSpec | None = None
    host: RewriteHost | None = None

    @field_validator("prefix", mode="before")
    @classmethod
    def _not_empty(cls, prefix: Any) -> Any:
        """Envoy treats an empty `prefix_rewrite` as unset, so "" would silently rewrite nothing."""
        if prefix == "":
            raise ValueError("an empty prefix rewrite does nothing in Envoy: write '/' to replace the matched prefix")
        return prefix

    @model_validator(mode="after")
    def _prefix_or_regex(self) -> RewriteSpec:
        at_most_one(self, "prefix", "regex")
        return self


class MirrorSpec(Spec):
    """Copy `percent` of requests to `service` (responses discarded)."""

    service: str
    percent: Percent = 100.0


class DelaySpec(Spec):
    """Delay `percent` of requests by `fixed`."""

    fixed: Duration
    percent: Percent = 100.0

    @field_validator("fixed")
    @classmethod
    def _some_delay(cls, fixed: int) -> int:
        if fixed < 1:
            raise ValueError("fixed must be at least 1ms (leave out delay for no delay)")
        return fixed


class AbortSpec(Spec):
    """Fail `percent` of requests with `status`."""

    status: int = Field(ge=200, le=599)
    percent: Percent = 100.0


class FaultSpec(Spec):
    """Fault injection for resilience testing."""

    delay: DelaySpec | None = None
    abort: AbortSpec | None = None

    @model_validator(mode="after")
    def _something(self) -> FaultSpec:
        if self.delay is None and self.abort is None:
            raise ValueError("set delay, abort, or both")
        return self


class RouteSpec(Spec):
    """One routing rule; exactly one of to, redirect, direct_response."""

    name: Name | None = None
    match: MatchSpec
    to: Annotated[list[TargetSpec] | None, BeforeValidator(_targets_shorthand)] = None
    redirect: RedirectSpec | None = None
    direct_response: DirectResponseSpec | None = None
    timeout: Duration | None = None
    idle_timeout: Duration | None = None
    retries: RetriesSpec | None = None
    rewrite: RewriteSpec | None = None
    request_headers: HeaderOpsSpec | None = None
    response_headers: HeaderOpsSpec | None = None
    mirror: Annotated[list[MirrorSpec] | None, BeforeValidator(_mirror_shorthand)] = None
    fault: FaultSpec | None = None
    rate_limit: RateLimitSpec | None = None
    cors: CorsSpec | None = None

    @field_validator("timeout", "idle_timeout", "retries", "rewrite", "mirror")
    @classmethod
    def _only_when_forwarding(cls, value: Any, info: ValidationInfo) -> Any:
        answered_here = info.data.get("redirect") is not None or info.data.get("direct_response") is not None
        if value is not None and answered_here:
            raise ValueError(f"{info.field_name} applies only to routes with 'to' (this route answers itself)")
        return value

    @field_validator("to")
    @classmethod
    def _some_weight(cls, targets: list[TargetSpec] | None) -> list[TargetSpec] | None:
        total = sum(t.weight for t in targets or [])
        if targets is not None and total == 0:
            raise ValueError("'to' needs at least one service with a weight above 0")
        if total > MAX_UINT32:  # Envoy refuses weighted clusters whose weights add up to more
            raise ValueError(f"the weights in 'to' add up to {total}; Envoy allows at most {MAX_UINT32}")
        return targets

    @model_validator(mode="after")
    def _one_action(self) -> RouteSpec:
        exactly_one(self, "to", "redirect", "direct_response")
        return self


class HostSpec(Spec):
    """A virtual host: domains and their ordered routes (first match wins)."""

    name: Name | None = None
    domains: list[str] = Field(min_length=1)
    routes: list[RouteSpec] = Field(min_length=1)
    request_headers: HeaderOpsSpec | None = None
    response_headers: HeaderOpsSpec | None = None
    rate_limit: RateLimitSpec | None = None
    cors: CorsSpec | None = None


class HttpOptionsSpec(Spec):
    """HTTP connection manager settings (defaults follow Envoy's edge best practices)."""

    use_remote_address: bool = True
    xff_num_trusted_hops: int = Field(0, ge=0, le=10)
    idle_timeout: Duration = 3_600_000
    request_timeout: Duration = 300_000
    stream_idle_timeout: Duration = 300_000
    request_headers_timeout: Duration = 10_000
    max_request_headers_kb: int = Field(60, ge=1, le=8192)
    max_connections: int | None = Field(None, ge=1, le=MAX_UINT32)
    allow_path_parameters: bool = False


class ListenerSpec(Spec):
    """A port Envoy listens on; `routes` is shorthand for one host matching every domain."""

    name: Name
    port: Port
    address: IpAddress = "0.0.0.0"
    nodes: list[str] = []
    routes: list[RouteSpec] | None = None
    hosts: list[HostSpec] | None = None
    http: HttpOptionsSpec = HttpOptionsSpec()

    @model_validator(mode="after")
    def _routes_or_hosts(self) -> ListenerSpec:
        exactly_one(self, "routes", "hosts")
        return self
