"""The Envoy bootstrap that connects an Envoy to one or more controlplane replicas over ADS."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2, config_source_pb2, grpc_service_pb2
from envoy.extensions.stat_sinks.open_telemetry.v3 import open_telemetry_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from envoy.type.matcher.v3 import string_pb2

from controlplane.overload import OverloadOptions, overload_manager
from controlplane.translate.clusters import HTTP_PROTOCOL_OPTIONS
from controlplane.translate.common import boolean, duration, pack, socket_address, uint32

XDS_CLUSTER = "xds_cluster"
OTEL_SINK = "envoy.stat_sinks.open_telemetry"
NODE_ID_HEADER = "x-controlplane-node-id"
NODE_CLUSTER_HEADER = "x-controlplane-node-cluster"
DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)", re.IGNORECASE)
TLS_SOCKET = "envoy.transport_sockets.tls"


@dataclass(frozen=True)
class XdsTls:
    """Files Envoy reads to speak mTLS to the control plane: paths on Envoy's machine, not read here."""

    cert: str
    """Envoy's client certificate chain (PEM); its SPIFFE ID or CN is the identity node authorization checks."""
    key: str
    ca: str
    """The CA the control plane's server certificate must chain to."""
    server_name: str = ""
    """The name the server certificate must carry (and the SNI); default: each replica's host."""


@dataclass(frozen=True)
class BootstrapOptions:
    """What an Envoy needs to know before it can ask for anything else."""

    node_id: str
    node_cluster: str
    xds: tuple[tuple[str, int], ...]
    """Control-plane replicas (host, port); Envoy balances its one ADS stream across them. A host
    may be a DNS name (e.g. a Kubernetes Service): Envoy then resolves it and uses every address."""
    admin_port: int = 9901
    overload: OverloadOptions = field(default_factory=OverloadOptions)
    """Heap ceiling and global connection cap (controlplane/overload.py)."""
    delta: bool = False
    keepalive_interval_ms: int = 5000
    """HTTP/2 PING on the xDS connection this often; a silent partition shows within
    interval + timeout, and Envoy then reconnects (to another replica if one answers)."""
    keepalive_timeout_ms: int = 3000
    stats_interval_ms: int = 5000
    """How often Envoy pushes its stats (OpenTelemetry sink) to the control plane; 0: never."""
    tls: XdsTls | None = None
    """mTLS on the xDS cluster (which also carries the stats); None: plaintext."""


def parse_xds_addresses(text: str) -> tuple[tuple[str, int], ...]:
    """`127.0.0.1:18000,cp.example.svc:18000` -> ((host, port), ...); hosts are IPs or DNS names."""
    result: list[tuple[str, int]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        host, _, port = item.rpartition(":")
        host = host.strip("[]")
        if not (is_ip(host) or is_dns_name(host)):
            raise ValueError(f"{host!r} is neither an IP address nor a DNS name")
        if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:  # isdigit() alone takes "²"
            raise ValueError(f"invalid port in {item!r}")
        result.append((host, int(port)))
    if not result:
        raise ValueError("give at least one HOST:PORT")
    return tuple(result)


def is_ip(host: str) -> bool:
    """True for an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_dns_name(host: str) -> bool:
    """True for dot-separated labels of letters, digits and inner hyphens, the last not all digits (RFC 1123)."""
    labels = host.removesuffix(".").split(".")
    return len(host) <= 253 and not labels[-1].isdigit() and all(DNS_LABEL.fullmatch(label) for label in labels)


def bootstrap(options: BootstrapOptions) -> bootstrap_pb2.Bootstrap:
    """ADS over gRPC to every replica: HTTP/2 keepalives, quick reconnects, admin on loopback."""
    result = bootstrap_pb2.Bootstrap()
    result.node.id = options.node_id
    result.node.cluster = options.node_cluster
    result.admin.address.CopyFrom(socket_address("127.0.0.1", options.admin_port))
    # Loopback only; outside the global connection cap, so an operator can still look inside an
    # Envoy that is refusing connections.
    result.admin.ignore_global_conn_limit = True
    ads = result.dynamic_resources.ads_config
    ads.api_type = (
        config_source_pb2.ApiConfigSource.DELTA_GRPC if options.delta else config_source_pb2.ApiConfigSource.GRPC
    )
    ads.transport_api_version = config_source_pb2.ApiVersion.V3
    ads.set_node_on_first_message_only = True
    ads.grpc_services.append(_xds_grpc_service())
    for config in (result.dynamic_resources.cds_config, result.dynamic_resources.lds_config):
        config.ads.SetInParent()
        config.resource_api_version = config_source_pb2.ApiVersion.V3
    result.static_resources.clusters.append(xds_cluster(options))
    if (overload := overload_manager(options.overload)) is not None:
        result.overload_manager.CopyFrom(overload)
    if options.stats_interval_ms:
        result.stats_flush_interval.CopyFrom(duration(options.stats_interval_ms))
        result.stats_sinks.add(name=OTEL_SINK, typed_config=pack(stats_sink(options.node_id, options.node_cluster)))
    return result


def stats_sink(node_id: str, node_cluster: str) -> open_telemetry_pb2.SinkConfig:
    """Envoy's OpenTelemetry stats sink, pushing to the control plane over the xDS cluster.

    Counters are reported as running totals: Envoy's deltas of per-endpoint counters lose
    whatever a read of its admin `/stats` latched in between (see telemetry/counters.py).
    Histograms are reported as deltas, tags as attributes (`envoy.cluster_name`,
    `envoy.response_code_class`, `envoy.endpoint_address`), and the node id and cluster travel
    as gRPC metadata so the collector knows which Envoy is speaking (and, over mTLS, can check
    that its certificate may speak for that node).
    """
    service = grpc_service_pb2.GrpcService()
    service.envoy_grpc.cluster_name = XDS_CLUSTER
    service.initial_metadata.add(key=NODE_ID_HEADER, value=node_id)
    service.initial_metadata.add(key=NODE_CLUSTER_HEADER, value=node_cluster)
    return open_telemetry_pb2.SinkConfig(
        grpc_service=service,
        report_counters_as_deltas=False,
        report_histograms_as_deltas=True,
        emit_tags_as_attributes=boolean(True),
        use_tag_extracted_name=boolean(True),
    )


XDS_RETRY_BASE_MS = 250
XDS_RETRY_MAX_MS = 1000


def _xds_grpc_service() -> grpc_service_pb2.GrpcService:
    """The ADS stream; after a disconnect Envoy retries from 250ms, backing off to 1s.

    Envoy waits a random time up to the current interval before each attempt. With a 5s cap, an
    Envoy that failed a few attempts while a replica restarted (about a second) could wait up to
    4s more after it was back (measured: 1.2-2.3s to resync 3 Envoys); with 1s it reconnects
    within a second. A refused connection costs a replica nothing, so the faster retry is cheap.
    """
    service = grpc_service_pb2.GrpcService()
    service.envoy_grpc.cluster_name = XDS_CLUSTER
    backoff = service.envoy_grpc.retry_policy.retry_back_off
    backoff.base_interval.CopyFrom(duration(XDS_RETRY_BASE_MS))
    backoff.max_interval.CopyFrom(duration(XDS_RETRY_MAX_MS))
    return service


def xds_cluster(options: BootstrapOptions) -> cluster_pb2.Cluster:
    """An HTTP/2 cluster of every replica, pinged so that a dead or partitioned peer is noticed.

    STATIC when every replica is an IP address; with a DNS name, STRICT_DNS: Envoy re-resolves the
    names (every 5 s) and takes every address they return, so a headless Service gives one
    endpoint per control-plane pod. IPv4 is preferred, IPv6 used when there is no IPv4 address.
    """
    cluster = cluster_pb2.Cluster(name=XDS_CLUSTER, type=cluster_pb2.Cluster.STATIC, connect_timeout=duration(1000))
    if not all(is_ip(host) for host, _ in options.xds):
        cluster.type = cluster_pb2.Cluster.STRICT_DNS
        cluster.dns_lookup_family = cluster_pb2.Cluster.V4_PREFERRED
    cluster.load_assignment.cluster_name = XDS_CLUSTER
    locality = cluster.load_assignment.endpoints.add()
    for host, port in options.xds:
        locality.lb_endpoints.add().endpoint.address.CopyFrom(socket_address(host, port))
    protocol = http_protocol_options_pb2.HttpProtocolOptions()
    h2 = protocol.explicit_http_config.http2_protocol_options
    h2.connection_keepalive.interval.CopyFrom(duration(options.keepalive_interval_ms))
    h2.connection_keepalive.timeout.CopyFrom(duration(options.keepalive_timeout_ms))
    cluster.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS].CopyFrom(pack(protocol))
    cluster.upstream_connection_options.tcp_keepalive.keepalive_time.CopyFrom(uint32(30))
    if options.tls is not None:
        cluster.transport_socket.CopyFrom(xds_transport_socket(options.tls, options.xds))
    return cluster


def xds_transport_socket(tls: XdsTls, replicas: tuple[tuple[str, int], ...]) -> base_pb2.TransportSocket:
    """mTLS to the replicas: Envoy's certificate, the CA, and which names the server certificate must carry.

    Without a server name, each replica's host must be in the certificate (a DNS SAN for a name,
    an IP SAN for an address), so another certificate of the same CA, such as an Envoy's, cannot
    pose as the control plane. SNI is set when there is one name to send.
    """
    context = tls_pb2.UpstreamTlsContext()
    common = context.common_tls_context
    common.alpn_protocols.append("h2")
    certificate = common.tls_certificates.add()
    certificate.certificate_chain.filename = tls.cert
    certificate.private_key.filename = tls.key
    validation = common.validation_context
    validation.trusted_ca.filename = tls.ca
    hosts = [tls.server_name] if tls.server_name else [host for host, _ in replicas]
    names = list(dict.fromkeys(host.removesuffix(".") for host in hosts))
    for name in names:
        validation.match_typed_subject_alt_names.append(_san_matcher(name))
    if len(names) == 1 and not is_ip(names[0]):
        context.sni = names[0]
    return base_pb2.TransportSocket(name=TLS_SOCKET, typed_config=pack(context))


def _san_matcher(name: str) -> common_pb2.SubjectAltNameMatcher:
    """An IP SAN matcher for an address, a DNS SAN matcher for a name."""
    kind = common_pb2.SubjectAltNameMatcher.IP_ADDRESS if is_ip(name) else common_pb2.SubjectAltNameMatcher.DNS
    return common_pb2.SubjectAltNameMatcher(san_type=kind, matcher=string_pb2.StringMatcher(exact=name))
