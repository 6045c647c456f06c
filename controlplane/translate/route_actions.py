"""The parts of a route that act on a request: forward (RouteAction), redirect, respond."""

from __future__ import annotations

from collections.abc import Mapping

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.extensions.retry.priority.previous_priorities.v3 import previous_priorities_config_pb2
from envoy.type.matcher.v3 import regex_pb2

from controlplane.model import HashPolicy, Redirect, Retries, Route, Service
from controlplane.translate.common import duration, fractional_percent, pack, uint32

PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts"
HOST_SELECTION_ATTEMPTS = 5
PREVIOUS_PRIORITIES = "envoy.retry_priorities.previous_priorities"
PRIORITY_UPDATE_FREQUENCY = 1
"""Re-plan the priority load after every attempt, so each retry tries a priority not tried yet."""
"""How often a retry may re-pick an endpoint to avoid one that already failed (as Istio does)."""

_REDIRECT_CODES = {
    301: rc.RedirectAction.MOVED_PERMANENTLY,
    302: rc.RedirectAction.FOUND,
    303: rc.RedirectAction.SEE_OTHER,
    307: rc.RedirectAction.TEMPORARY_REDIRECT,
    308: rc.RedirectAction.PERMANENT_REDIRECT,
}


def route_action(route: Route, services: Mapping[str, Service]) -> rc.RouteAction:
    """Forward to one service or a weighted split, with timeouts, retries, rewrites, mirrors."""
    action = rc.RouteAction(
        hash_policy=_hash_policies(route, services),
        retry_policy=retry_policy(route.retries) if route.retries else None,
        request_mirror_policies=[
            rc.RouteAction.RequestMirrorPolicy(
                cluster=m.service,
                runtime_fraction=base_pb2.RuntimeFractionalPercent(default_value=fractional_percent(m.percent)),
            )
            for m in route.mirrors
        ],
    )
    _set_destination(action, route)
    _set_rewrite(action, route)
    if route.timeout_ms is not None:
        action.timeout.CopyFrom(duration(route.timeout_ms))
    if route.idle_timeout_ms is not None:
        action.idle_timeout.CopyFrom(duration(route.idle_timeout_ms))
    return action


def _set_destination(action: rc.RouteAction, route: Route) -> None:
    if len(route.targets) == 1:
        action.cluster = route.targets[0].service
        return
    for target in route.targets:
        action.weighted_clusters.clusters.add(name=target.service, weight=uint32(target.weight))


def _set_rewrite(action: rc.RouteAction, route: Route) -> None:
    rewrite = route.rewrite
    if rewrite is None:
        return
    if rewrite.prefix is not None:
        action.prefix_rewrite = rewrite.prefix
    if rewrite.regex:
        action.regex_rewrite.pattern.CopyFrom(regex_pb2.RegexMatcher(regex=rewrite.regex))
        action.regex_rewrite.substitution = rewrite.substitution
    if rewrite.host:
        action.host_rewrite_literal = rewrite.host


def _hash_policies(route: Route, services: Mapping[str, Service]) -> list[rc.RouteAction.HashPolicy]:
    """The hash policies of the target services, first target first, without repeats."""
    seen: list[HashPolicy] = []
    for target in route.targets:
        policy = services[target.service].hash_on
        if policy is not None and policy not in seen:
            seen.append(policy)
    return [hash_policy(p) for p in seen]


def hash_policy(policy: HashPolicy) -> rc.RouteAction.HashPolicy:
    """What a ring_hash or maglev balancer hashes for this request."""
    result = rc.RouteAction.HashPolicy()
    if policy.kind == "header":
        result.header.header_name = policy.name
    elif policy.kind == "cookie":
        result.cookie.name = policy.name
        result.cookie.path = policy.cookie_path
        if policy.cookie_ttl_ms is not None:  # 0s is meaningful: Envoy then sets a session cookie
            result.cookie.ttl.CopyFrom(duration(policy.cookie_ttl_ms))
    elif policy.kind == "query":
        result.query_parameter.name = policy.name
    else:
        result.connection_properties.source_ip = True
    return result


def retry_policy(spec: Retries) -> rc.RetryPolicy:
    """Retries; with `other_host` each retry avoids the endpoints and the priority that failed.

    Moving to the next priority means that when every primary dies, a request that hit one of
    them is retried on a backup even before health checks have noticed; with a single priority
    Envoy falls back to the normal priority load, so nothing changes there.
    """
    policy = rc.RetryPolicy(
        retry_on=",".join(spec.on),
        num_retries=uint32(spec.attempts),
        retriable_status_codes=list(spec.status_codes),
    )
    if spec.per_try_timeout_ms:
        policy.per_try_timeout.CopyFrom(duration(spec.per_try_timeout_ms))
    if spec.backoff_base_ms:
        policy.retry_back_off.base_interval.CopyFrom(duration(spec.backoff_base_ms))
        policy.retry_back_off.max_interval.CopyFrom(duration(spec.backoff_max_ms))
    if spec.other_host:
        policy.retry_host_predicate.add(
            name=PREVIOUS_HOSTS, typed_config=pack(previous_hosts_pb2.PreviousHostsPredicate())
        )
        policy.host_selection_retry_max_attempts = HOST_SELECTION_ATTEMPTS
        priority = previous_priorities_config_pb2.PreviousPrioritiesConfig(update_frequency=PRIORITY_UPDATE_FREQUENCY)
        policy.retry_priority.name = PREVIOUS_PRIORITIES
        policy.retry_priority.typed_config.CopyFrom(pack(priority))
    return policy


def redirect_action(spec: Redirect) -> rc.RedirectAction:
    """An HTTP redirect; unset parts keep the request's own."""
    action = rc.RedirectAction(
        host_redirect=spec.host,
        port_redirect=spec.port,
        response_code=_REDIRECT_CODES[spec.status],
        strip_query=spec.strip_query,
    )
    if spec.scheme:
        action.scheme_redirect = spec.scheme
    if spec.path:
        action.path_redirect = spec.path
    elif spec.prefix:
        action.prefix_rewrite = spec.prefix
    return action
