"""Listener -> Envoy Listener (LDS): an HTTP connection manager fetching its routes over RDS.

Defaults follow Envoy's "Configuring Envoy as an edge proxy" page: trusted client address from
the connection, normalized paths with merged slashes, escaped slashes redirected, headers with
underscores rejected, bounded buffers, HTTP/2 stream and window limits, timeouts on every phase;
and, beyond that page, paths with `;` parameters refused (see `http_filters.path_parameter_guard`).
"""

from __future__ import annotations

from envoy.config.core.v3 import protocol_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.filters.network.connection_limit.v3 import connection_limit_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm

from controlplane.model import HttpOptions, Listener
from controlplane.translate.common import (
    EDGE_BUFFER_LIMIT_BYTES,
    H2_INITIAL_CONNECTION_WINDOW,
    H2_INITIAL_STREAM_WINDOW,
    ads_config_source,
    boolean,
    duration,
    pack,
    socket_address,
    uint32,
)
from controlplane.translate.http_filters import http_filters, path_parameter_guard

HCM = "envoy.filters.network.http_connection_manager"
CONNECTION_LIMIT = "envoy.filters.network.connection_limit"
H2_MAX_CONCURRENT_STREAMS = 100


def listener(spec: Listener) -> listener_pb2.Listener:
    """The Envoy listener for `spec`; its routes come from the RouteConfiguration of the same name."""
    filters = [listener_components_pb2.Filter(name=HCM, typed_config=pack(http_connection_manager(spec)))]
    if spec.http.max_connections:
        limit = connection_limit_pb2.ConnectionLimit(stat_prefix=spec.name)
        limit.max_connections.value = spec.http.max_connections
        filters.insert(0, listener_components_pb2.Filter(name=CONNECTION_LIMIT, typed_config=pack(limit)))
    return listener_pb2.Listener(
        name=spec.name,
        address=socket_address(spec.address, spec.port),
        per_connection_buffer_limit_bytes=uint32(EDGE_BUFFER_LIMIT_BYTES),
        filter_chains=[listener_components_pb2.FilterChain(filters=filters)],
    )


def http_connection_manager(spec: Listener) -> hcm.HttpConnectionManager:
    """The HTTP connection manager with edge-safe defaults."""
    options = spec.http
    return hcm.HttpConnectionManager(
        stat_prefix=spec.name,
        codec_type=hcm.HttpConnectionManager.AUTO,
        rds=hcm.Rds(config_source=ads_config_source(), route_config_name=spec.name),
        http_filters=_http_filters(options),
        use_remote_address=boolean(options.use_remote_address),
        xff_num_trusted_hops=options.xff_num_trusted_hops,
        normalize_path=boolean(True),
        merge_slashes=True,
        path_with_escaped_slashes_action=hcm.HttpConnectionManager.UNESCAPE_AND_REDIRECT,
        common_http_protocol_options=_common_options(options),
        http2_protocol_options=protocol_pb2.Http2ProtocolOptions(
            max_concurrent_streams=uint32(H2_MAX_CONCURRENT_STREAMS),
            initial_stream_window_size=uint32(H2_INITIAL_STREAM_WINDOW),
            initial_connection_window_size=uint32(H2_INITIAL_CONNECTION_WINDOW),
        ),
        stream_idle_timeout=duration(options.stream_idle_timeout_ms),
        request_timeout=duration(options.request_timeout_ms),
        request_headers_timeout=duration(options.request_headers_timeout_ms),
        max_request_headers_kb=uint32(options.max_request_headers_kb),
    )


def _http_filters(options: HttpOptions) -> list[hcm.HttpFilter]:
    """The fixed chain, behind the path-parameter guard unless the listener allows `;` in paths."""
    guard = [] if options.allow_path_parameters else [path_parameter_guard()]
    return [*guard, *http_filters()]


def _common_options(options: HttpOptions) -> protocol_pb2.HttpProtocolOptions:
    return protocol_pb2.HttpProtocolOptions(
        idle_timeout=duration(options.idle_timeout_ms),
        headers_with_underscores_action=protocol_pb2.HttpProtocolOptions.REJECT_REQUEST,
    )
