"""The xDS port's protection at start: plaintext only on loopback, TLS files checked, flags that fit together.

Only loopback networking is allowed here, so the non-loopback refusal is tested as a function
and through the CLI, which refuses before binding anything.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from controlplane.app import ServeOptions, xds_credentials
from controlplane.cli import main
from controlplane.tls import TlsError, TlsFiles, is_loopback_host, plaintext_refusal, read_tls, tls_files
from tests.certs import DAY, NOW, Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.1", False),
        ("192.168.1.10", False),
        ("controlplane.svc", False),
        ("localhost.example.com", False),
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize(
    ("address", "insecure", "refused"),
    [
        pytest.param("127.0.0.1:18000", False, False, id="loopback"),
        pytest.param("[::1]:18000", False, False, id="ipv6-loopback"),
        pytest.param("localhost:18000", False, False, id="localhost"),
        pytest.param("0.0.0.0:18000", False, True, id="all-interfaces"),
        pytest.param("[::]:18000", False, True, id="ipv6-all-interfaces"),
        pytest.param(":18000", False, True, id="no-host"),
        pytest.param("10.1.2.3:18000", False, True, id="private-address"),
        pytest.param("0.0.0.0:18000", True, False, id="insecure-given"),
    ],
)
def test_plaintext_is_refused_off_loopback_without_insecure(address: str, insecure: bool, refused: bool) -> None:
    reason = plaintext_refusal(address, insecure)
    assert (reason is not None) is refused
    if reason is not None:
        assert reason.startswith(f"--xds-address {address} is not a loopback address")
        assert "--tls-cert, --tls-key and --client-ca" in reason and "--insecure" in reason


def test_tls_flags_go_together() -> None:
    assert tls_files(None, None, None) is None
    with pytest.raises(TlsError, match="--tls-cert, --tls-key and --client-ca go together: --client-ca missing"):
        tls_files(Path("c"), Path("k"), None)
    with pytest.raises(TlsError, match="--tls-key and --client-ca missing"):
        tls_files(Path("c"), None, None)


def test_good_files_are_read(pki: Pki) -> None:
    material = read_tls(TlsFiles(pki.server.cert_path, pki.server.key_path, pki.ca.path))
    assert material.cert.startswith(b"-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        pytest.param("missing", r"missing\.crt: cannot read: No such file", id="missing"),
        pytest.param("not-pem", r"server\.key: no PEM certificate in it", id="key-given-as-cert"),
        pytest.param("ca-not-pem", r"empty\.pem: no PEM certificate in it", id="empty-ca"),
        pytest.param("cert-as-key", r"server\.crt: not an unencrypted PEM private key", id="cert-given-as-key"),
        pytest.param(
            "other-key",
            r"gateway\.key: this private key does not belong to the certificate in .*server\.crt",
            id="wrong-key",
        ),
        pytest.param("expired", r"expired\.crt: the certificate expired at 20", id="expired"),
        pytest.param("future", r"server\.crt: the certificate is not valid before 20", id="not-yet-valid"),
    ],
)
def test_unusable_files_are_refused_with_the_file_and_reason(
    case: str, expected: str, pki: Pki, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("", encoding="utf-8")
    s, ca = pki.server, pki.ca.path
    files = {
        "missing": TlsFiles(tmp_path / "missing.crt", s.key_path, ca),
        "not-pem": TlsFiles(s.key_path, s.key_path, ca),
        "ca-not-pem": TlsFiles(s.cert_path, s.key_path, empty),
        "cert-as-key": TlsFiles(s.cert_path, s.cert_path, ca),
        "other-key": TlsFiles(s.cert_path, pki.gateway.key_path, ca),
        "expired": TlsFiles(pki.expired.cert_path, pki.expired.key_path, ca),
        "future": TlsFiles(s.cert_path, s.key_path, ca),
    }[case]
    now = NOW - 3 * DAY if case == "future" else None
    with pytest.raises(TlsError, match=expected):
        read_tls(files, now)


SERVE = ["serve", "--config", "routes.yaml"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--xds-address", "0.0.0.0:18000"],
            "--xds-address 0.0.0.0:18000 is not a loopback address",
            id="plaintext-off-loopback",
        ),
        pytest.param(["--tls-cert", "c.pem"], "--tls-key and --client-ca missing", id="partial-tls"),
        pytest.param(
            ["--node-authorization", "RULES"], "--node-authorization needs --tls-cert", id="rules-without-tls"
        ),
        pytest.param(
            ["--insecure", "--tls-cert", "SERVER"], "--insecure contradicts --tls-cert", id="insecure-and-tls"
        ),
        pytest.param(["--tls-cert", "GATEWAY"], "does not belong to the certificate", id="bad-files"),
        pytest.param(
            ["--node-authorization", "BAD_RULES"], "rules.yaml:2:15: rules[0].identity: `*` is allowed", id="bad-rules"
        ),
    ],
)
def test_serve_refuses_to_start(
    args: list[str], message: str, pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules, bad = tmp_path / "rules.yaml", tmp_path / "bad" / "rules.yaml"
    rules.write_text("rules:\n  - identity: x\n    node_clusters: [edge]\n", encoding="utf-8")
    bad.parent.mkdir()
    bad.write_text("rules:\n  - identity: a*b\n    node_clusters: [edge]\n", encoding="utf-8")
    server = [str(pki.server.cert_path), "--tls-key", str(pki.server.key_path), "--client-ca", str(pki.ca.path)]
    replace = {
        "RULES": [str(rules)],
        "BAD_RULES": [str(bad), "--tls-cert", *server],
        "SERVER": server,
        "GATEWAY": [str(pki.server.cert_path), "--tls-key", str(pki.gateway.key_path), "--client-ca", str(pki.ca.path)],
    }
    argv = [*SERVE, *(part for arg in args for part in replace.get(arg, [arg]))]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("controlplane serve: ") and message in err, err


def test_insecure_is_allowed_and_loudly_logged(caplog: pytest.LogCaptureFixture) -> None:
    options = ServeOptions(config_paths=("r.yaml",), xds_address="0.0.0.0:18000", insecure=True)
    assert xds_credentials(options) is None
    assert any(
        r.levelname == "WARNING" and r.getMessage().startswith("INSECURE: xDS in plaintext") for r in caplog.records
    )


def test_tls_without_rules_warns_that_node_authorization_is_off(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    files = TlsFiles(pki.server.cert_path, pki.server.key_path, pki.ca.path)
    options = ServeOptions(config_paths=("r.yaml",), xds_address="0.0.0.0:18000", tls=files)
    assert xds_credentials(options) is not None
    assert [r.getMessage() for r in caplog.records if "node authorization is off" in r.getMessage()]


def test_expiry_is_checked_against_now(pki: Pki) -> None:
    files = TlsFiles(pki.server.cert_path, pki.server.key_path, pki.ca.path)
    with pytest.raises(TlsError, match="expired"):
        read_tls(files, NOW + datetime.timedelta(days=30))
