"""Listeners, virtual hosts and routes: what traffic goes where."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from controlplane.model.hashing import cached_hash


@dataclass(frozen=True)
class HeaderMatch:
    """Match one request header; exactly one of the kinds applies (`present` when none is set)."""

    name: str
    kind: str
    """`exact`, `prefix`, `suffix`, `contains`, `regex` or `present`."""
    value: str = ""
    invert: bool = False


@dataclass(frozen=True)
class QueryMatch:
    """Match one query parameter."""

    name: str
    kind: str
    """`exact`, `prefix`, `suffix`, `contains`, `regex` or `present`."""
    value: str = ""


@dataclass(frozen=True)
class Match:
    """Request matching: exactly one path rule plus optional headers, query and methods."""

    path_kind: str
    """`prefix`, `path` (exact) or `regex`."""
    path: str
    headers: tuple[HeaderMatch, ...] = ()
    query: tuple[QueryMatch, ...] = ()
    methods: tuple[str, ...] = ()
    case_sensitive: bool = True


@dataclass(frozen=True, order=True)
class WeightedTarget:
    """One service in a weighted split."""

    service: str
    weight: int = 1


@dataclass(frozen=True)
class Retries:
    """Retry policy; `other_host` makes a retry avoid the endpoint that just failed."""

    attempts: int
    on: tuple[str, ...] = ("connect-failure", "refused-stream", "reset")
    per_try_timeout_ms: int = 0
    backoff_base_ms: int = 0
    backoff_max_ms: int = 0
    status_codes: tuple[int, ...] = ()
    other_host: bool = True


@dataclass(frozen=True)
class Redirect:
    """Answer with an HTTP redirect instead of proxying."""

    status: int = 301
    scheme: str = ""
    host: str = ""
    port: int = 0
    path: str = ""
    prefix: str = ""
    strip_query: bool = False


@dataclass(frozen=True)
class DirectResponse:
    """Answer directly from Envoy."""

    status: int
    body: str = ""


@dataclass(frozen=True)
class Rewrite:
    """Rewrite the path (prefix or regex) and/or the Host header before proxying."""

    prefix: str | None = None
    regex: str = ""
    substitution: str = ""
    host: str = ""


@dataclass(frozen=True)
class HeaderOps:
    """Header changes: `set` overwrites, `add` appends, `remove` deletes."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.set or self.add or self.remove)


@dataclass(frozen=True, order=True)
class Mirror:
    """Copy a share of requests to another service; its responses are discarded."""

    service: str
    percent: float = 100.0


@dataclass(frozen=True)
class Fault:
    """Inject delays and/or aborts into a share of requests (for resilience testing)."""

    delay_ms: int = 0
    """0 means no delay (the DSL requires at least 1ms when a delay is given)."""
    delay_percent: float = 0.0
    abort_status: int = 0
    abort_percent: float = 0.0


@dataclass(frozen=True)
class RateLimit:
    """Local (per Envoy) token-bucket rate limit: `requests` per `per_ms`, bursts up to `burst`."""

    requests: int
    per_ms: int
    burst: int


@dataclass(frozen=True)
class Cors:
    """Cross-origin resource sharing policy."""

    allow_origins: tuple[str, ...]
    """Exact origins, or `*`; an entry starting with `~` is an RE2 regex."""
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_s: int = 0
    """0 leaves Access-Control-Max-Age unset (the browser's default); the DSL requires at least 1s."""
    allow_credentials: bool = False


@dataclass(frozen=True)
class Route:
    """One routing rule; exactly one of `targets`, `redirect`, `direct_response` is set."""

    __hash__ = cached_hash

    match: Match
    name: str = ""
    targets: tuple[WeightedTarget, ...] = ()
    redirect: Redirect | None = None
    direct_response: DirectResponse | None = None
    timeout_ms: int | None = None
    """None keeps Envoy's default (15s); 0 disables the timeout."""
    idle_timeout_ms: int | None = None
    """None keeps the listener's stream idle timeout; 0 disables the idle timeout for this route."""
    retries: Retries | None = None
    rewrite: Rewrite | None = None
    request_headers: HeaderOps = HeaderOps()
    response_headers: HeaderOps = HeaderOps()
    mirrors: tuple[Mirror, ...] = ()
    fault: Fault | None = None
    rate_limit: RateLimit | None = None
    cors: Cors | None = None


@dataclass(frozen=True)
class VirtualHost:
    """A set of domains and the ordered routes that serve them (first match wins)."""

    __hash__ = cached_hash

    name: str
    domains: tuple[str, ...]
    routes: tuple[Route, ...]
    request_headers: HeaderOps = HeaderOps()
    response_headers: HeaderOps = HeaderOps()
    rate_limit: RateLimit | None = None
    cors: Cors | None = None


@dataclass(frozen=True)
class HttpOptions:
    """HTTP connection manager settings; defaults follow Envoy's edge-proxy best practices."""

    use_remote_address: bool = True
    xff_num_trusted_hops: int = 0
    idle_timeout_ms: int = 3_600_000
    request_timeout_ms: int = 300_000
    stream_idle_timeout_ms: int = 300_000
    request_headers_timeout_ms: int = 10_000
    max_request_headers_kb: int = 60
    max_connections: int = 0
    """0 means no per-listener connection limit."""
    allow_path_parameters: bool = False
    """False: refuse (403) paths holding `;` or `%3B`. Servlet containers and Spring strip
    `;params` from each segment, so `/admin;x` routes past a rule on `/admin` to their `/admin`."""


@dataclass(frozen=True)
class Listener:
    """A port Envoy listens on, serving HTTP by its virtual hosts."""

    __hash__ = cached_hash

    name: str
    port: int
    address: str = "0.0.0.0"
    virtual_hosts: tuple[VirtualHost, ...] = ()
    node_clusters: tuple[str, ...] = ()
    """Empty: every Envoy gets this listener; otherwise only those whose node.cluster is listed."""
    http: HttpOptions = HttpOptions()

    def serves(self, node_cluster: str | None) -> bool:
        """Whether an Envoy of `node_cluster` gets this listener (None: render everything)."""
        return node_cluster is None or not self.node_clusters or node_cluster in self.node_clusters


def referenced_services(listeners: Iterable[Listener]) -> set[str]:
    """Names of the services that routes of `listeners` send or mirror traffic to."""
    names: set[str] = set()
    for item in listeners:
        for host in item.virtual_hosts:
            for route in host.routes:
                names.update(t.service for t in route.targets)
                names.update(m.service for m in route.mirrors)
    return names
