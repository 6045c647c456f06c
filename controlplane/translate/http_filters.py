"""The HTTP filter chain of every listener and the per-route configs that switch filters on.

Every listener carries the same chain (CORS, fault, local rate limit, router), each filter inert
until a route or virtual host configures it; only a listener's own `http:` options put a filter
in front of it (the path-parameter guard). Adding a CORS policy or a rate limit to one route
then changes only the RouteConfiguration, never the Listener: Envoy drains a listener whose
config changes, so a stable listener means no connection churn on route edits.
"""

from __future__ import annotations

from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.config.rbac.v3 import rbac_pb2 as rbac_config
from envoy.extensions.filters.common.fault.v3 import fault_pb2 as common_fault_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from envoy.type.matcher.v3 import path_pb2, regex_pb2, string_pb2
from envoy.type.v3 import token_bucket_pb2

from controlplane.model import Cors, Fault, RateLimit
from controlplane.translate.common import boolean, duration, fractional_percent, pack, uint32

CORS = "envoy.filters.http.cors"
FAULT = "envoy.filters.http.fault"
LOCAL_RATE_LIMIT = "envoy.filters.http.local_ratelimit"
ROUTER = "envoy.filters.http.router"
RBAC = "envoy.filters.http.rbac"
PATH_PARAMETERS_POLICY = "path-parameters"


def http_filters() -> list[hcm.HttpFilter]:
    """The fixed filter chain; order matters: CORS answers preflights before limits apply."""
    return [
        hcm.HttpFilter(name=CORS, typed_config=pack(cors_pb2.Cors())),
        hcm.HttpFilter(name=FAULT, typed_config=pack(fault_pb2.HTTPFault())),
        hcm.HttpFilter(
            name=LOCAL_RATE_LIMIT,
            typed_config=pack(local_rate_limit_pb2.LocalRateLimit(stat_prefix="http_local_rate_limiter")),
        ),
        hcm.HttpFilter(name=ROUTER, typed_config=pack(router_pb2.Router())),
    ]


def path_parameter_guard() -> hcm.HttpFilter:
    """Refuse (403) a request whose path holds `;` or its escape `%3B`, before any route matches.

    Envoy matches routes on the whole path, `;x` included, while servlet containers and Spring
    drop `;params` from each segment before they dispatch: `/admin;x` misses a rule on `/admin`
    at the edge and reaches `/admin` behind it. Envoy has no option to strip or refuse them (its
    path normalization leaves `;` alone), so an RBAC filter denies them; the query is not looked
    at. The escaped form is refused too: some frameworks decode before they strip.
    """
    paths = [string_pb2.StringMatcher(contains=";"), string_pb2.StringMatcher(contains="%3b", ignore_case=True)]
    permission = rbac_config.Permission(
        or_rules=rbac_config.Permission.Set(
            rules=[rbac_config.Permission(url_path=path_pb2.PathMatcher(path=path)) for path in paths]
        )
    )
    policy = rbac_config.Policy(permissions=[permission], principals=[rbac_config.Principal(any=True)])
    rules = rbac_config.RBAC(action=rbac_config.RBAC.DENY, policies={PATH_PARAMETERS_POLICY: policy})
    return hcm.HttpFilter(name=RBAC, typed_config=pack(rbac_pb2.RBAC(rules=rules)))


def per_filter_config(cors: Cors | None, fault: Fault | None, rate_limit: RateLimit | None) -> dict[str, Any]:
    """`typed_per_filter_config` entries for a route or virtual host."""
    configs: dict[str, Any] = {}
    if cors:
        configs[CORS] = pack(cors_policy(cors))
    if fault:
        configs[FAULT] = pack(http_fault(fault))
    if rate_limit:
        configs[LOCAL_RATE_LIMIT] = pack(local_rate_limit(rate_limit))
    return configs


def cors_policy(spec: Cors) -> cors_pb2.CorsPolicy:
    """CORS for one route or host; `*` and `~regex` origins become RE2 matchers."""
    return cors_pb2.CorsPolicy(
        allow_origin_string_match=[_origin(o) for o in spec.allow_origins],
        allow_methods=",".join(spec.allow_methods),
        allow_headers=",".join(spec.allow_headers),
        expose_headers=",".join(spec.expose_headers),
        max_age=str(spec.max_age_s) if spec.max_age_s else "",
        allow_credentials=boolean(True) if spec.allow_credentials else None,
    )


def _origin(origin: str) -> string_pb2.StringMatcher:
    if origin == "*":
        return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=".*"))
    if origin.startswith("~"):
        return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=origin[1:]))
    return string_pb2.StringMatcher(exact=origin)


def http_fault(spec: Fault) -> fault_pb2.HTTPFault:
    """Delay and/or abort a share of requests."""
    result = fault_pb2.HTTPFault()
    if spec.delay_ms:
        result.delay.CopyFrom(
            common_fault_pb2.FaultDelay(
                fixed_delay=duration(spec.delay_ms), percentage=fractional_percent(spec.delay_percent)
            )
        )
    if spec.abort_status:
        result.abort.CopyFrom(
            fault_pb2.FaultAbort(http_status=spec.abort_status, percentage=fractional_percent(spec.abort_percent))
        )
    return result


def local_rate_limit(spec: RateLimit) -> local_rate_limit_pb2.LocalRateLimit:
    """A token bucket enabled and enforced for every request it sees."""
    always = base_pb2.RuntimeFractionalPercent(default_value=fractional_percent(100.0))
    return local_rate_limit_pb2.LocalRateLimit(
        stat_prefix="http_local_rate_limiter",
        token_bucket=token_bucket_pb2.TokenBucket(
            max_tokens=spec.burst, tokens_per_fill=uint32(spec.requests), fill_interval=duration(spec.per_ms)
        ),
        filter_enabled=always,
        filter_enforced=always,
    )
