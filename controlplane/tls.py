"""mTLS on the xDS port: certificate files checked at start, gRPC credentials, and the plaintext rule.

Everything an Envoy learns from the control plane (every route, every endpoint) and everything
it may do there (claim a node, push stats, register endpoints) goes over the xDS port, so that
port is either mTLS or loopback; plaintext elsewhere takes an explicit `--insecure`.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from controlplane.errors import ControlPlaneError

SERVE_FLAGS = ("--tls-cert", "--tls-key", "--client-ca")


class TlsError(ControlPlaneError):
    """A certificate, key or CA file that cannot be used, or TLS flags that do not fit together."""


@dataclass(frozen=True)
class TlsFiles:
    """Where this side's certificate chain, its private key, and the CA trusted for the peer are."""

    cert: Path
    key: Path
    ca: Path


@dataclass(frozen=True)
class TlsMaterial:
    """The PEM bytes of TlsFiles, read and checked once at start."""

    cert: bytes
    key: bytes
    ca: bytes


def tls_files(
    cert: Path | None, key: Path | None, ca: Path | None, flags: tuple[str, ...] = SERVE_FLAGS
) -> TlsFiles | None:
    """The three files, or None when none is given; raises TlsError when only some are."""
    given = (cert, key, ca)
    if all(p is None for p in given):
        return None
    if cert is None or key is None or ca is None:
        missing = " and ".join(f for f, p in zip(flags, given, strict=True) if p is None)
        raise TlsError(f"{', '.join(flags[:2])} and {flags[2]} go together: {missing} missing")
    return TlsFiles(cert, key, ca)


def read_tls(files: TlsFiles, now: datetime.datetime | None = None) -> TlsMaterial:
    """Read and check the files: PEM certificates, a key that belongs to the certificate, a valid period."""
    cert, key, ca = (_read(path) for path in (files.cert, files.key, files.ca))
    chain = _certificates(cert, files.cert)
    _certificates(ca, files.ca)
    try:
        private_key = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as exc:
        raise TlsError(f"{files.key}: not an unencrypted PEM private key ({exc})") from None
    if _public(private_key.public_key()) != _public(chain[0].public_key()):
        raise TlsError(f"{files.key}: this private key does not belong to the certificate in {files.cert}")
    _check_validity(chain[0], files.cert, now or datetime.datetime.now(datetime.UTC))
    return TlsMaterial(cert, key, ca)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _certificates(pem: bytes, path: Path) -> list[x509.Certificate]:
    try:
        found = x509.load_pem_x509_certificates(pem)
    except ValueError:
        found = []
    if not found:
        raise TlsError(f"{path}: no PEM certificate in it")
    return found


def _public(key: object) -> bytes:
    encoding, fmt = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return bytes(key.public_bytes(encoding, fmt))  # type: ignore[attr-defined]


def _check_validity(certificate: x509.Certificate, path: Path, now: datetime.datetime) -> None:
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if now < start:
        raise TlsError(f"{path}: the certificate is not valid before {start:%Y-%m-%d %H:%M}Z")
    if now > end:
        raise TlsError(f"{path}: the certificate expired at {end:%Y-%m-%d %H:%M}Z")


def server_credentials(material: TlsMaterial) -> grpc.ServerCredentials:
    """Server side of mTLS: a client without a certificate signed by the CA fails the handshake."""
    return grpc.ssl_server_credentials(
        [(material.key, material.cert)], root_certificates=material.ca, require_client_auth=True
    )


def channel_credentials(material: TlsMaterial) -> grpc.ChannelCredentials:
    """Client side of mTLS (`controlplane register`): our certificate, and the CA the server must chain to."""
    return grpc.ssl_channel_credentials(
        root_certificates=material.ca, private_key=material.key, certificate_chain=material.cert
    )


def is_loopback_host(host: str) -> bool:
    """True for `localhost`, 127.0.0.0/8, ::1 and their IPv4-mapped forms; False for all-interfaces and names."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def plaintext_refusal(address: str, insecure: bool) -> str | None:
    """Why xDS may not be served in plaintext on `address` (HOST:PORT), or None when it may."""
    host = address.rpartition(":")[0]
    if insecure or is_loopback_host(host):
        return None
    return (
        f"--xds-address {address} is not a loopback address, and xDS in plaintext there would let anyone "
        "who reaches it read every route and claim any node: give --tls-cert, --tls-key and --client-ca "
        "(see docs/security.md), or --insecure to serve plaintext knowingly"
    )
