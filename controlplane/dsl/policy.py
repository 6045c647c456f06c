"""Operator policy on where routes may send traffic: set by flags, never by a route file."""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LINK_LOCAL: tuple[Network, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
)
"""Link-local ranges, home of most cloud metadata services (169.254.169.254): denied by default."""

METADATA: tuple[Network, ...] = (
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("100.100.100.200/32"),
)
"""Cloud metadata services outside the link-local ranges (AWS's IPv6 endpoint, Alibaba Cloud's)."""

DEFAULT_DENIED: tuple[Network, ...] = (*LINK_LOCAL, *METADATA)
"""Denied unless the operator allows them (`--allow-link-local`): a route to one would let anyone who
may edit routes read the host's cloud credentials through Envoy."""


@dataclass(frozen=True)
class AddressPolicy:
    """Which endpoint addresses a route file may send traffic to (operator settings, not DSL)."""

    envoy_admin_port: int | None = 9901
    """Envoy's admin port: loopback endpoints on it would let a route reach the admin API.

    None (`--allow-envoy-admin-port`): such endpoints are allowed.
    """
    denied: tuple[Network, ...] = DEFAULT_DENIED
    allowed: tuple[Network, ...] = ()
    """When non-empty, every endpoint must be inside one of these networks."""

    def refusal(self, host: str, port: int) -> str | None:
        """Why `host:port` may not be an endpoint, or None when it may."""
        ip = _ip_address(host)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:169.254.169.254 is 169.254.169.254 on the wire
            host = f"{ip} (IPv4-mapped)"
        if ip.is_unspecified:
            return f"{host} is the unspecified address, not an upstream"
        if port == self.envoy_admin_port and ip.is_loopback:
            return f"{host}:{port} is Envoy's own admin port (see --allow-envoy-admin-port)"
        for net in self.denied:
            if ip.version == net.version and ip in net:
                hint = " (link-local or cloud metadata; see --allow-link-local)" if net in DEFAULT_DENIED else ""
                return f"{host} is in the denied network {net}{hint}"
        if self.allowed and not any(ip.version == n.version and ip in n for n in self.allowed):
            return f"{host} is outside the allowed networks ({', '.join(map(str, self.allowed))})"
        return None


@functools.lru_cache(maxsize=1 << 16)
def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Parsed once per host: every endpoint of a large file is checked against the policy."""
    return ipaddress.ip_address(host)
