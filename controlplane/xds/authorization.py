"""Node authorization: which client certificate may claim which Envoy node, checked before serving.

An Envoy says who it is in the `node` of its first request; over mTLS the certificate says who
it really is. The rules (operator configuration, handed over as plain data) map an identity,
the certificate's `spiffe://` URI SANs or else its common name, to the node clusters and node
ids it may claim. A claim outside the rules is refused with PERMISSION_DENIED before any
config is built or sent, so a stolen gateway certificate cannot fetch another group's config.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from cryptography import x509
from cryptography.x509.oid import NameOID

log = logging.getLogger(__name__)

PLAINTEXT = "plaintext"
"""The identity shown for a connection without TLS."""
SPIFFE_PREFIX = "spiffe://"
NO_IDENTITY = "a certificate without SPIFFE ID or common name"


@dataclass(frozen=True)
class PeerIdentity:
    """Who a verified client certificate names: its SPIFFE IDs, else its common name."""

    names: tuple[str, ...]

    def __str__(self) -> str:
        return ", ".join(self.names) or NO_IDENTITY


@dataclass(frozen=True)
class NodeRule:
    """One identity (exact, or a prefix ending in `*`) and the nodes it may claim."""

    identity: str
    node_clusters: tuple[str, ...]
    """Node clusters (Envoy's `node.cluster`) it may claim, exact names."""
    node_ids: tuple[str, ...] = ()
    """Glob patterns its node id must match (`gateway-*`); empty: any node id."""
    origin: str = ""
    """Where the rule was written (`FILE:LINE`), for log lines."""

    def names(self, identity: str) -> bool:
        """Whether this rule is about `identity`."""
        if self.identity.endswith("*"):
            return identity.startswith(self.identity[:-1])
        return identity == self.identity

    def allows(self, node_id: str, node_cluster: str) -> bool:
        """Whether the node (id, cluster) is one this rule lets its identity claim."""
        if node_cluster not in self.node_clusters:
            return False
        return not self.node_ids or any(fnmatch.fnmatchcase(node_id, p) for p in self.node_ids)


@dataclass(frozen=True)
class NodeAuthorization:
    """The rules; None: authorization is off and any verified certificate may claim any node."""

    rules: tuple[NodeRule, ...] | None = None

    @property
    def enabled(self) -> bool:
        """Whether claims are checked against rules."""
        return self.rules is not None

    def refusal(self, identity: PeerIdentity | None, node_id: str, node_cluster: str) -> str | None:
        """Why `identity` may not claim this node, or None when it may (always, without TLS or rules)."""
        if identity is None or self.rules is None:
            return None
        matching = [r for r in self.rules if any(r.names(name) for name in identity.names)]
        if any(r.allows(node_id, node_cluster) for r in matching):
            return None
        if any(node_cluster in r.node_clusters for r in matching):
            return f"{identity} may not claim node id {node_id!r} in node cluster {node_cluster}"
        return f"{identity} may not claim node cluster {node_cluster}"

    def refusal_without_node(self, identity: PeerIdentity | None) -> str | None:
        """For calls that name no node (a CSDS query): the identity must appear in some rule."""
        if identity is None or self.rules is None:
            return None
        if any(r.names(name) for r in self.rules for name in identity.names):
            return None
        return f"{identity} matches no node authorization rule"


def identity_of(context: Any) -> PeerIdentity | None:
    """The verified client certificate's identity; None on a plaintext connection."""
    pems = context.auth_context().get("x509_pem_cert")
    return identity_from_pem(pems[0]) if pems else None


@functools.lru_cache(maxsize=1024)
def identity_from_pem(pem: bytes) -> PeerIdentity:
    """SPIFFE URI SANs when there are any, else the subject's common names (cached: every call asks).

    A certificate the TLS stack verified but that cannot be read here names nobody: no rule matches it.
    """
    try:
        certificate = x509.load_pem_x509_certificate(pem)
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = [u for u in sans.get_values_for_type(x509.UniformResourceIdentifier) if u.startswith(SPIFFE_PREFIX)]
    except x509.ExtensionNotFound:
        uris = []
    except ValueError:
        return PeerIdentity(())
    if uris:
        return PeerIdentity(tuple(uris))
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return PeerIdentity(tuple(str(n.value) for n in names))


def label(identity: PeerIdentity | None) -> str:
    """What the status page shows for a connection: the identity, or `plaintext`."""
    return PLAINTEXT if identity is None else str(identity)


class NodeGuard:
    """Admits a call's claimed node, or ends the call with PERMISSION_DENIED and a log line."""

    def __init__(self, authorization: NodeAuthorization | None = None) -> None:
        self.authorization = authorization or NodeAuthorization()

    async def admit(self, context: Any, node_id: str, node_cluster: str) -> str:
        """The peer's identity label, once it may claim the node; otherwise the call is aborted."""
        identity = identity_of(context)
        reason = self.authorization.refusal(identity, node_id, node_cluster)
        if reason is not None:
            await self.refuse(context, label(identity), node_id, node_cluster, reason)
        return label(identity)

    async def admit_without_node(self, context: Any) -> str:
        """For calls that name no node: the identity must be known to the rules."""
        identity = identity_of(context)
        reason = self.authorization.refusal_without_node(identity)
        if reason is not None:
            await self.refuse(context, label(identity), "", "", reason)
        return label(identity)

    async def refuse(self, context: Any, identity: str, node_id: str, node_cluster: str, reason: str) -> NoReturn:
        """Log the refusal (peer, identity, claimed node) and end the call with PERMISSION_DENIED."""
        log.warning(
            "node authorization refused: peer=%s identity=%s node=%s cluster=%s: %s",
            context.peer(),
            identity,
            node_id,
            node_cluster,
            reason,
        )
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, reason)
        raise AssertionError("context.abort returned")  # grpc.aio's abort always raises
