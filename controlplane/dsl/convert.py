"""Turn validated DSL specs into the immutable model (no checks here: they ran before)."""

from __future__ import annotations

from controlplane import model as m
from controlplane.dsl.convert_services import build_service
from controlplane.dsl.schema_alerts import AlertsSpec
from controlplane.dsl.schema_common import CorsSpec, HeaderOpsSpec, RateLimitSpec
from controlplane.dsl.schema_routes import (
    HostSpec,
    HttpOptionsSpec,
    ListenerSpec,
    MatchSpec,
    RetriesSpec,
    RouteSpec,
    ValueMatchSpec,
)

__all__ = ["build_alerts", "build_listener", "build_service"]


def build_alerts(spec: AlertsSpec) -> m.AlertRules:
    """Alert rules from an `alerts:` block."""
    hook = spec.webhook
    return m.AlertRules(
        nack=spec.nack,
        disconnected_ms=spec.disconnected_for,
        behind_ms=spec.behind_for,
        no_healthy_endpoint=spec.no_healthy_endpoint,
        error_rate_percent=spec.error_rate,
        error_window_ms=spec.error_window,
        p99_ms=spec.p99_ms,
        latency_window_ms=spec.latency_window,
        source_stale_ms=spec.source_stale_for,
        webhook=m.Webhook(hook.url, hook.timeout, hook.retries) if hook else None,
    )


_VALUE_KINDS = ("exact", "prefix", "suffix", "contains", "regex", "present")


def build_listener(spec: ListenerSpec) -> m.Listener:
    """A model listener; the `routes` shorthand becomes one host named after the listener."""
    hosts: tuple[m.VirtualHost, ...]
    if spec.routes is not None:
        hosts = (m.VirtualHost(name=spec.name, domains=("*",), routes=_routes(spec.routes)),)
    else:
        hosts = tuple(sorted((_host(h) for h in spec.hosts or []), key=lambda h: h.name))
    return m.Listener(
        name=spec.name,
        port=spec.port,
        address=spec.address,
        virtual_hosts=hosts,
        node_clusters=tuple(sorted(set(spec.nodes))),
        http=_http_options(spec.http),
    )


def host_name(spec: HostSpec) -> str:
    """A host's name: as written, or its first domain in sorted order."""
    return spec.name or min(d.lower() for d in spec.domains)


def _host(spec: HostSpec) -> m.VirtualHost:
    """A virtual host, named by `host_name`."""
    domains = tuple(sorted({d.lower() for d in spec.domains}))
    return m.VirtualHost(
        name=host_name(spec),
        domains=domains,
        routes=_routes(spec.routes),
        request_headers=_header_ops(spec.request_headers),
        response_headers=_header_ops(spec.response_headers),
        rate_limit=_rate_limit(spec.rate_limit),
        cors=_cors(spec.cors),
    )


def _routes(specs: list[RouteSpec]) -> tuple[m.Route, ...]:
    return tuple(_route(s) for s in specs)


def _route(spec: RouteSpec) -> m.Route:
    return m.Route(
        match=_match(spec.match),
        name=spec.name or "",
        targets=tuple(sorted(m.WeightedTarget(t.service, t.weight) for t in spec.to or [])),
        redirect=_redirect(spec),
        direct_response=(
            m.DirectResponse(spec.direct_response.status, spec.direct_response.body) if spec.direct_response else None
        ),
        timeout_ms=spec.timeout,
        idle_timeout_ms=spec.idle_timeout,
        retries=_retries(spec.retries),
        rewrite=_rewrite(spec),
        request_headers=_header_ops(spec.request_headers),
        response_headers=_header_ops(spec.response_headers),
        mirrors=tuple(sorted(m.Mirror(x.service, x.percent) for x in spec.mirror or [])),
        fault=_fault(spec),
        rate_limit=_rate_limit(spec.rate_limit),
        cors=_cors(spec.cors),
    )


def _match(spec: MatchSpec) -> m.Match:
    kind, path = next((k, v) for k in ("prefix", "path", "regex") if (v := getattr(spec, k)) is not None)
    return m.Match(
        path_kind=kind,
        path=path,
        headers=tuple(_header_match(n, v) for n, v in sorted(spec.headers.items())),
        query=tuple(m.QueryMatch(n, *_value(v)) for n, v in sorted(spec.query.items())),
        methods=tuple(sorted(set(spec.methods))),
        case_sensitive=spec.case_sensitive,
    )


def _value(spec: ValueMatchSpec) -> tuple[str, str]:
    kind = next(k for k in _VALUE_KINDS if getattr(spec, k) is not None)
    value = getattr(spec, kind)
    return kind, "" if value is True else str(value)


def _header_match(name: str, spec: ValueMatchSpec) -> m.HeaderMatch:
    kind, value = _value(spec)
    return m.HeaderMatch(name=name, kind=kind, value=value, invert=spec.invert)


def _retries(spec: RetriesSpec | None) -> m.Retries | None:
    if spec is None:
        return None
    on = set(spec.on) | ({"retriable-status-codes"} if spec.status_codes else set())
    backoff_max = (spec.backoff.max or spec.backoff.base * 10) if spec.backoff else 0
    return m.Retries(
        attempts=spec.attempts,
        on=tuple(sorted(on)),
        per_try_timeout_ms=spec.per_try_timeout or 0,
        backoff_base_ms=spec.backoff.base if spec.backoff else 0,
        backoff_max_ms=backoff_max,
        status_codes=tuple(sorted(set(spec.status_codes))),
        other_host=spec.other_host,
    )


def _redirect(spec: RouteSpec) -> m.Redirect | None:
    r = spec.redirect
    if r is None:
        return None
    return m.Redirect(
        status=r.status,
        scheme=r.scheme or "",
        host=r.host or "",
        port=r.port or 0,
        path=r.path or "",
        prefix=r.prefix or "",
        strip_query=r.strip_query,
    )


def _rewrite(spec: RouteSpec) -> m.Rewrite | None:
    r = spec.rewrite
    if r is None:
        return None
    return m.Rewrite(
        prefix=r.prefix,
        regex=r.regex.pattern if r.regex else "",
        substitution=r.regex.substitution if r.regex else "",
        host=r.host or "",
    )


def _fault(spec: RouteSpec) -> m.Fault | None:
    f = spec.fault
    if f is None:
        return None
    return m.Fault(
        delay_ms=f.delay.fixed if f.delay else 0,
        delay_percent=f.delay.percent if f.delay else 0.0,
        abort_status=f.abort.status if f.abort else 0,
        abort_percent=f.abort.percent if f.abort else 0.0,
    )


def _header_ops(spec: HeaderOpsSpec | None) -> m.HeaderOps:
    if spec is None:
        return m.HeaderOps()
    return m.HeaderOps(
        set=tuple(sorted(spec.set.items())),
        add=tuple(sorted(spec.add.items())),
        remove=tuple(sorted(set(spec.remove))),
    )


def _rate_limit(spec: RateLimitSpec | None) -> m.RateLimit | None:
    if spec is None:
        return None
    return m.RateLimit(requests=spec.requests, per_ms=spec.per, burst=spec.burst or spec.requests)


def _cors(spec: CorsSpec | None) -> m.Cors | None:
    if spec is None:
        return None
    return m.Cors(
        allow_origins=tuple(sorted(set(spec.allow_origins))),
        allow_methods=tuple(sorted(set(spec.allow_methods))),
        allow_headers=tuple(sorted(set(spec.allow_headers))),
        expose_headers=tuple(sorted(set(spec.expose_headers))),
        max_age_s=(spec.max_age or 0) // 1000,
        allow_credentials=spec.allow_credentials,
    )


def _http_options(spec: HttpOptionsSpec) -> m.HttpOptions:
    return m.HttpOptions(
        use_remote_address=spec.use_remote_address,
        xff_num_trusted_hops=spec.xff_num_trusted_hops,
        idle_timeout_ms=spec.idle_timeout,
        request_timeout_ms=spec.request_timeout,
        stream_idle_timeout_ms=spec.stream_idle_timeout,
        request_headers_timeout_ms=spec.request_headers_timeout,
        max_request_headers_kb=spec.max_request_headers_kb,
        max_connections=spec.max_connections or 0,
        allow_path_parameters=spec.allow_path_parameters,
    )
