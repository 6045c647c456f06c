"""Listener -> RouteConfiguration (RDS): virtual hosts and their ordered routes.

Routes keep the order the user wrote (first match wins, as in Istio's VirtualService); virtual
hosts are sorted by name because Envoy selects them by domain, not by position.
"""

from __future__ import annotations

from collections.abc import Mapping

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2

from controlplane.model import (
    HeaderMatch,
    HeaderOps,
    Listener,
    Match,
    QueryMatch,
    Route,
    Service,
    VirtualHost,
)
from controlplane.translate.common import boolean
from controlplane.translate.http_filters import per_filter_config
from controlplane.translate.route_actions import redirect_action, route_action


def route_configuration(listener: Listener, services: Mapping[str, Service]) -> route_pb2.RouteConfiguration:
    """The routes of `listener`, named after it.

    The port in a Host header is ignored when matching domains, so `admin.example.com` matches
    requests to `admin.example.com:10001` as users of Contour and Envoy Gateway expect.
    """
    return route_pb2.RouteConfiguration(
        name=listener.name,
        virtual_hosts=[virtual_host(h, services) for h in sorted(listener.virtual_hosts, key=lambda h: h.name)],
        ignore_port_in_host_matching=True,
    )


def virtual_host(host: VirtualHost, services: Mapping[str, Service]) -> rc.VirtualHost:
    """One virtual host; its header changes and CORS/rate limit apply to all of its routes."""
    result = rc.VirtualHost(
        name=host.name,
        domains=list(host.domains),
        routes=[route(r, services) for r in host.routes],
        typed_per_filter_config=per_filter_config(host.cors, None, host.rate_limit),
    )
    _set_header_ops(result, host.request_headers, host.response_headers)
    return result


def route(spec: Route, services: Mapping[str, Service]) -> rc.Route:
    """One route: its match and exactly one action."""
    result = rc.Route(
        name=spec.name,
        match=route_match(spec.match),
        typed_per_filter_config=per_filter_config(spec.cors, spec.fault, spec.rate_limit),
    )
    if spec.targets:
        result.route.CopyFrom(route_action(spec, services))
    elif spec.redirect:
        result.redirect.CopyFrom(redirect_action(spec.redirect))
    elif spec.direct_response:
        result.direct_response.status = spec.direct_response.status
        if spec.direct_response.body:
            result.direct_response.body.inline_string = spec.direct_response.body
    _set_header_ops(result, spec.request_headers, spec.response_headers)
    return result


def route_match(spec: Match) -> rc.RouteMatch:
    """Path rule plus header, method and query conditions (all must hold).

    A prefix matches whole path segments (`/api` matches `/api` and `/api/x`, not `/apiary`),
    as Gateway API's PathPrefix does, with or without `case_sensitive` (Envoy 1.40 honours it for
    `path_separated_prefix`); a prefix ending in `/` matches by plain string prefix.
    """
    match = rc.RouteMatch(
        headers=[header_matcher(h) for h in spec.headers] + _method_matchers(spec.methods),
        query_parameters=[query_matcher(q) for q in spec.query],
    )
    if not spec.case_sensitive:
        match.case_sensitive.CopyFrom(boolean(False))
    if spec.path_kind == "path":
        match.path = spec.path
    elif spec.path_kind == "regex":
        match.safe_regex.regex = spec.path
    elif spec.path.endswith("/"):
        match.prefix = spec.path
    else:
        match.path_separated_prefix = spec.path
    return match


def _method_matchers(methods: tuple[str, ...]) -> list[rc.HeaderMatcher]:
    if not methods:
        return []
    if len(methods) == 1:
        return [rc.HeaderMatcher(name=":method", string_match=string_pb2.StringMatcher(exact=methods[0]))]
    pattern = f"^({'|'.join(methods)})$"
    return [rc.HeaderMatcher(name=":method", string_match=_string_matcher("regex", pattern))]


def header_matcher(spec: HeaderMatch) -> rc.HeaderMatcher:
    """One header condition."""
    if spec.kind == "present":
        return rc.HeaderMatcher(name=spec.name, present_match=True, invert_match=spec.invert)
    return rc.HeaderMatcher(
        name=spec.name, string_match=_string_matcher(spec.kind, spec.value), invert_match=spec.invert
    )


def query_matcher(spec: QueryMatch) -> rc.QueryParameterMatcher:
    """One query-parameter condition."""
    if spec.kind == "present":
        return rc.QueryParameterMatcher(name=spec.name, present_match=True)
    return rc.QueryParameterMatcher(name=spec.name, string_match=_string_matcher(spec.kind, spec.value))


def _string_matcher(kind: str, value: str) -> string_pb2.StringMatcher:
    if kind == "regex":
        return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=value))
    return string_pb2.StringMatcher(**{kind: value})


def _set_header_ops(target: rc.Route | rc.VirtualHost, request: HeaderOps, response: HeaderOps) -> None:
    target.request_headers_to_add.extend(_header_options(request))
    target.request_headers_to_remove.extend(request.remove)
    target.response_headers_to_add.extend(_header_options(response))
    target.response_headers_to_remove.extend(response.remove)


def _header_options(ops: HeaderOps) -> list[base_pb2.HeaderValueOption]:
    overwrite = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
    append = base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD
    return [_header_option(k, v, overwrite) for k, v in ops.set] + [_header_option(k, v, append) for k, v in ops.add]


def _header_option(key: str, value: str, action: int) -> base_pb2.HeaderValueOption:
    """DSL values are literal; Envoy reads `%` as the start of a formatter command, so escape it."""
    literal = value.replace("%", "%%")
    return base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=key, value=literal), append_action=action)
