"""Mutual TLS between city nodes; the peer's certificate names the city calling."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import grpc

from services.grpc.auth import PermissionDenied


def server_credentials(cert: Path, key: Path, ca: Path) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())], root_certificates=ca.read_bytes(), require_client_auth=True
    )


def public_server_credentials(cert: Path, key: Path) -> grpc.ServerCredentials:
    """For apps, tills and staff: the node proves who it is; callers bring bearer credentials."""
    return grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())], require_client_auth=False)


def channel_credentials(cert: Path, key: Path, ca: Path) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(), private_key=key.read_bytes(), certificate_chain=cert.read_bytes()
    )


def peer_identities(context: grpc.ServicerContext) -> set[str]:
    """The common name and subject alternative names of the verified peer certificate."""
    auth = context.auth_context()
    names = auth.get("x509_common_name", []) + auth.get("x509_subject_alternative_name", [])
    return {n.decode() if isinstance(n, bytes) else str(n) for n in names}


def partner_city(context: grpc.ServicerContext, partners: Iterable[str]) -> str:
    """The configured partner city this peer's certificate names, or a refusal."""
    matches = peer_identities(context) & set(partners)
    if len(matches) != 1:
        raise PermissionDenied("peer certificate does not name a configured partner city")
    return matches.pop()
