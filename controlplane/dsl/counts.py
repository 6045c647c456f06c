"""The count limits of `limits.py`, checked over shape-valid route files.

Each limit is reported once, where it is crossed: at the list that is too long, or, for limits
on all files together, at the first item beyond the limit (files in the loader's order).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

from controlplane.dsl import limits
from controlplane.dsl.schema import DocumentSpec
from controlplane.dsl.schema_common import CorsSpec, HeaderOpsSpec
from controlplane.dsl.schema_routes import ListenerSpec, RouteSpec
from controlplane.dsl.yamltext import Path

Found = tuple[Path, str]
"""(path inside the file, message)."""


def _too_many(count: int, what: str, limit: int, rule: str) -> str:
    return f"{count} {what}; at most {limit} are allowed (limit: {rule})"


def object_count_problems(spec: DocumentSpec) -> Iterator[Found]:
    """Lists in one file that are longer than their limit."""
    for i, listener in enumerate(spec.listeners):
        yield from _listener_counts(("listeners", i), listener)
    for name, service in spec.services.items():
        if len(service.endpoints) > limits.MAX_ENDPOINTS_PER_SERVICE:
            message = _too_many(
                len(service.endpoints), "endpoints", limits.MAX_ENDPOINTS_PER_SERVICE, "endpoints per service"
            )
            yield ("services", name, "endpoints"), message


def _listener_counts(path: Path, listener: ListenerSpec) -> Iterator[Found]:
    routes = len(listener.routes or []) + sum(len(h.routes) for h in listener.hosts or [])
    domains = sum(len(h.domains) for h in listener.hosts or [])
    if listener.routes is not None:
        yield from _route_list_counts((*path, "routes"), listener.routes)
    for j, host in enumerate(listener.hosts or []):
        at = (*path, "hosts", j)
        if len(host.domains) > limits.MAX_DOMAINS_PER_HOST:
            message = _too_many(len(host.domains), "domains", limits.MAX_DOMAINS_PER_HOST, "domains per host")
            yield (*at, "domains"), message
        yield from _route_list_counts((*at, "routes"), host.routes)
        yield from _header_list_counts(at, host.request_headers, host.response_headers, host.cors)
    if routes > limits.MAX_ROUTES_PER_LISTENER:
        yield path, _too_many(routes, "routes in this listener", limits.MAX_ROUTES_PER_LISTENER, "routes per listener")
    if domains > limits.MAX_DOMAINS_PER_LISTENER:
        limit = limits.MAX_DOMAINS_PER_LISTENER
        yield path, _too_many(domains, "domains in this listener", limit, "domains per listener")


def _route_list_counts(path: Path, routes: Sequence[RouteSpec]) -> Iterator[Found]:
    if len(routes) > limits.MAX_ROUTES_PER_HOST:
        yield path, _too_many(len(routes), "routes", limits.MAX_ROUTES_PER_HOST, "routes per host")
    for k, route in enumerate(routes):
        match = (*path, k, "match")
        if len(route.match.headers) > limits.MAX_HEADER_MATCHERS:
            count = len(route.match.headers)
            message = _too_many(count, "header matches", limits.MAX_HEADER_MATCHERS, "header matches per route")
            yield (*match, "headers"), message
        if len(route.match.query) > limits.MAX_QUERY_MATCHERS:
            count = len(route.match.query)
            message = _too_many(count, "query matches", limits.MAX_QUERY_MATCHERS, "query matches per route")
            yield (*match, "query"), message
        yield from _header_list_counts((*path, k), route.request_headers, route.response_headers, route.cors)


def _header_list_counts(
    path: Path, request: HeaderOpsSpec | None, response: HeaderOpsSpec | None, cors: CorsSpec | None
) -> Iterator[Found]:
    lists: list[tuple[Path, Sequence[object]]] = []
    for name, ops in (("request_headers", request), ("response_headers", response)):
        if ops is not None:
            lists += [((*path, name, "set"), list(ops.set)), ((*path, name, "add"), list(ops.add))]
            lists.append(((*path, name, "remove"), ops.remove))
    if cors is not None:
        lists += [((*path, "cors", f), getattr(cors, f)) for f in ("allow_methods", "allow_headers", "expose_headers")]
    for at, items in lists:
        if len(items) > limits.MAX_HEADER_LIST:
            yield at, _too_many(len(items), "entries", limits.MAX_HEADER_LIST, "entries in one header list")


def total_count_problems(specs: Sequence[DocumentSpec]) -> Iterator[tuple[int, Path, str]]:
    """(index into `specs`, path, message) for each limit on all files together that is crossed."""
    for what, limit, paths in (
        ("listeners", limits.MAX_LISTENERS, _listener_paths),
        ("routes", limits.MAX_ROUTES, _route_paths),
        ("services", limits.MAX_SERVICES, _service_paths),
        ("endpoints", limits.MAX_ENDPOINTS, _endpoint_paths),
    ):
        located = itertools.chain.from_iterable(((i, p) for p in paths(s)) for i, s in enumerate(specs))
        beyond = list(itertools.islice(located, limit, None))
        if beyond:
            index, path = beyond[0]
            message = _too_many(limit + len(beyond), f"{what} in all files together", limit, f"{what} in total")
            yield index, path, message


def _listener_paths(spec: DocumentSpec) -> Iterator[Path]:
    return (("listeners", i) for i in range(len(spec.listeners)))


def _service_paths(spec: DocumentSpec) -> Iterator[Path]:
    return (("services", name) for name in spec.services)


def _endpoint_paths(spec: DocumentSpec) -> Iterator[Path]:
    for name, service in spec.services.items():
        for k in range(len(service.endpoints)):
            yield ("services", name, "endpoints", k)


def _route_paths(spec: DocumentSpec) -> Iterator[Path]:
    for i, listener in enumerate(spec.listeners):
        for k in range(len(listener.routes or [])):
            yield ("listeners", i, "routes", k)
        for j, host in enumerate(listener.hosts or []):
            for k in range(len(host.routes)):
                yield ("listeners", i, "hosts", j, "routes", k)
