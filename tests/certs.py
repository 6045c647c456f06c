"""Certificates made in the test: a CA, an unknown CA, a server certificate, client certificates.

EC P-256 keys (fast to make); files are PEM in a temporary directory, named after what they are.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as objects and as PEM files."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path
    key_path: Path

    @property
    def cert_pem(self) -> bytes:
        return self.cert_path.read_bytes()

    @property
    def key_pem(self) -> bytes:
        return self.key_path.read_bytes()


class Authority:
    """A CA that issues certificates into `folder`."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder, self.name = folder, name
        folder.mkdir(parents=True, exist_ok=True)
        self.ca = self._write(name, *_self_signed(name))

    @property
    def path(self) -> Path:
        return self.ca.cert_path

    def server(self, name: str = "server", hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Issued:
        """A server certificate whose SANs are `hosts` (IP SANs for addresses, DNS SANs for names)."""
        sans = [_san(host) for host in hosts]
        return self.issue(name, sans, ExtendedKeyUsageOID.SERVER_AUTH)

    def client(self, name: str, spiffe: str = "", cn: str = "", not_after: datetime.datetime | None = None) -> Issued:
        """A client certificate with a SPIFFE URI SAN and/or a CN; `not_after` in the past makes it expired."""
        sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(spiffe)] if spiffe else []
        return self.issue(name, sans, ExtendedKeyUsageOID.CLIENT_AUTH, cn=cn, not_after=not_after)

    def issue(
        self,
        name: str,
        sans: list[x509.GeneralName],
        usage: x509.ObjectIdentifier,
        cn: str = "",
        not_after: datetime.datetime | None = None,
    ) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
        end = not_after or NOW + DAY
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.ca.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(min(NOW - DAY, end - DAY))
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=not cn)
        return self._write(name, builder.sign(self.ca.key, hashes.SHA256()), key)

    def _write(self, name: str, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Issued:
        cert_path, key_path = self.folder / f"{name}.crt", self.folder / f"{name}.key"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return Issued(certificate, key, cert_path, key_path)


def _self_signed(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 10 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


@dataclass(frozen=True)
class Pki:
    """Everything the mTLS tests use, made once per test module."""

    ca: Authority
    unknown_ca: Authority
    server: Issued
    gateway: Issued
    """spiffe://cluster.local/ns/edge/sa/gateway: may claim node cluster `edge`."""
    expired: Issued
    """The gateway's identity, expired yesterday."""
    cn_only: Issued
    """Only a common name (`ops-tool`), no SAN."""
    stranger: Issued
    """A client certificate from the unknown CA, with the gateway's identity."""


GATEWAY_ID = "spiffe://cluster.local/ns/edge/sa/gateway"


def make_pki(folder: Path) -> Pki:
    """A CA with a server and three client certificates, and an unknown CA with one."""
    ca = Authority(folder / "ca", "ca")
    unknown = Authority(folder / "unknown", "unknown-ca")
    return Pki(
        ca=ca,
        unknown_ca=unknown,
        server=ca.server(),
        gateway=ca.client("gateway", spiffe=GATEWAY_ID),
        expired=ca.client("expired", spiffe=GATEWAY_ID, not_after=NOW - DAY),
        cn_only=ca.client("ops-tool", cn="ops-tool"),
        stranger=unknown.client("stranger", spiffe=GATEWAY_ID),
    )
