"""Small protobuf builders shared by every resource kind."""

from __future__ import annotations

from typing import Any

from envoy.config.core.v3 import address_pb2, config_source_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import any_pb2, duration_pb2, wrappers_pb2

LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE_TYPE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT_TYPE = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"


def short_type(type_url: str) -> str:
    """`type.googleapis.com/envoy.config.cluster.v3.Cluster` -> `Cluster`, for logs and pages."""
    return type_url.rsplit(".", 1)[-1]


EDGE_BUFFER_LIMIT_BYTES = 32 * 1024
"""Per-connection buffer limit Envoy's edge best practices recommend for listeners and clusters."""
H2_INITIAL_STREAM_WINDOW = 64 * 1024
"""HTTP/2 stream window of the edge best practices, downstream and upstream: Envoy's default of
256 MiB lets one stream buffer far more than the 32 KiB connection limit meant to allow."""
H2_INITIAL_CONNECTION_WINDOW = 1024 * 1024
"""HTTP/2 connection window of the edge best practices, downstream and upstream."""


def duration(ms: int) -> duration_pb2.Duration:
    """A protobuf Duration from milliseconds."""
    return duration_pb2.Duration(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def pack(message: Any) -> any_pb2.Any:
    """Pack into an Any deterministically, so map fields inside never reorder between runs."""
    packed = any_pb2.Any()
    packed.Pack(message, deterministic=True)
    return packed


def uint32(value: int) -> wrappers_pb2.UInt32Value:
    """A UInt32Value wrapper."""
    return wrappers_pb2.UInt32Value(value=value)


def boolean(value: bool) -> wrappers_pb2.BoolValue:
    """A BoolValue wrapper."""
    return wrappers_pb2.BoolValue(value=value)


def fractional_percent(percent: float) -> percent_pb2.FractionalPercent:
    """A FractionalPercent in millionths, exact for up to four decimals of a percent."""
    return percent_pb2.FractionalPercent(
        numerator=round(percent * 10_000), denominator=percent_pb2.FractionalPercent.MILLION
    )


def socket_address(host: str, port: int) -> address_pb2.Address:
    """A TCP socket address."""
    return address_pb2.Address(socket_address=address_pb2.SocketAddress(address=host, port_value=port))


def ads_config_source() -> config_source_pb2.ConfigSource:
    """Fetch over the aggregated (ADS) stream with the v3 API."""
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.ApiVersion.V3,
    )
