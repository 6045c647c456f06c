"""Where routes may send traffic: Envoy's admin port, link-local, deny and allow lists."""

from __future__ import annotations

import ipaddress

import pytest

from controlplane.dsl import AddressPolicy

PRIVATE = ipaddress.ip_network("10.0.0.0/8")


@pytest.mark.parametrize(
    ("policy", "host", "port", "refused"),
    [
        pytest.param(AddressPolicy(), "127.0.0.1", 9901, "admin port", id="admin-port-loopback"),
        pytest.param(AddressPolicy(), "127.0.0.2", 9901, "admin port", id="admin-port-other-loopback"),
        pytest.param(AddressPolicy(), "::1", 9901, "admin port", id="admin-port-ipv6-loopback"),
        pytest.param(AddressPolicy(), "10.0.0.1", 9901, None, id="admin-port-number-elsewhere"),
        pytest.param(AddressPolicy(envoy_admin_port=15000), "127.0.0.1", 15000, "admin", id="custom-admin"),
        pytest.param(AddressPolicy(), "0.0.0.0", 80, "unspecified", id="unspecified"),
        pytest.param(AddressPolicy(), "169.254.169.254", 80, "denied network", id="metadata"),
        pytest.param(AddressPolicy(), "fe80::1", 80, "denied network", id="ipv6-link-local"),
        pytest.param(AddressPolicy(denied=(PRIVATE,)), "10.1.2.3", 80, "denied", id="deny-list"),
        pytest.param(AddressPolicy(allowed=(PRIVATE,)), "192.168.1.1", 80, "outside", id="allow-list"),
        pytest.param(AddressPolicy(allowed=(PRIVATE,)), "10.1.2.3", 80, None, id="allow-list-hit"),
        pytest.param(AddressPolicy(), "127.0.0.1", 8080, None, id="ordinary"),
        pytest.param(AddressPolicy(), "fd00:ec2::254", 80, "cloud metadata", id="aws-ipv6-metadata"),
        pytest.param(AddressPolicy(), "100.100.100.200", 80, "cloud metadata", id="alibaba-metadata"),
        pytest.param(AddressPolicy(), "100.100.100.201", 80, None, id="next-to-metadata"),
        pytest.param(AddressPolicy(denied=()), "169.254.169.254", 80, None, id="link-local-allowed"),
        pytest.param(AddressPolicy(envoy_admin_port=None), "127.0.0.1", 9901, None, id="admin-port-allowed"),
    ],
)
def test_refusal(policy: AddressPolicy, host: str, port: int, refused: str | None) -> None:
    reason = policy.refusal(host, port)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason
