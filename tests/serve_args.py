"""Reading `controlplane serve` command lines in deployment files (compose, Kubernetes manifests)."""

from __future__ import annotations

from controlplane.tls import SERVE_FLAGS, plaintext_refusal

DEFAULT_XDS_ADDRESS = "127.0.0.1:18000"
"""`serve`'s default --xds-address."""


def flag(args: list[str], name: str) -> str:
    """The value after `name` in a command, or ""."""
    return args[args.index(name) + 1] if name in args[:-1] else ""


def plaintext_refused(args: list[str]) -> str | None:
    """Why `serve` with these arguments would refuse to start in plaintext, or None.

    Off loopback it needs every mTLS flag or an explicit --insecure.
    """
    if all(f in args for f in SERVE_FLAGS):
        return None
    return plaintext_refusal(flag(args, "--xds-address") or DEFAULT_XDS_ADDRESS, "--insecure" in args)
