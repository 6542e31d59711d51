"""The key and certificate files a node's settings name, checked before anything starts.

Settings validation only sees that the files exist. Without this check a wrong file
shows up later as a traceback: cryptography's error names no setting, and grpc
reports any bad TLS file (or a key that is not the certificate's) as "Failed to bind".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from services.federation.vouchers import load_private_key, load_public_key
from services.settings import pem_files
from services.settings.errors import ConfigError
from services.settings.node import NodeSettings

T = TypeVar("T")


def check_node_files(settings: NodeSettings) -> None:
    """Raise ConfigError naming the first setting whose file is unreadable or of the wrong kind."""
    _read("CIVFED_SIGNING_KEY_FILE", load_private_key, settings.CIVFED_SIGNING_KEY_FILE)
    for city, partner in sorted(settings.CIVFED_PARTNERS.items()):
        _read(f"CIVFED_PARTNERS.{city}.public_key_file", load_public_key, partner.public_key_file)
    _read("CIVFED_TLS_CA_FILE", pem_files.certificates, settings.CIVFED_TLS_CA_FILE)
    chain = _read("CIVFED_TLS_CERT_FILE", pem_files.certificates, settings.CIVFED_TLS_CERT_FILE)
    key = _read("CIVFED_TLS_KEY_FILE", pem_files.private_key, settings.CIVFED_TLS_KEY_FILE)
    # The node's own certificate comes first in a chain file.
    if not pem_files.same_key(chain[0], key):
        raise ConfigError(
            "CIVFED_TLS_KEY_FILE does not match CIVFED_TLS_CERT_FILE"
            f" ({settings.CIVFED_TLS_KEY_FILE} is not the key of {settings.CIVFED_TLS_CERT_FILE})"
        )


def _read(setting: str, load: Callable[[Path], T], path: Path) -> T:
    try:
        return load(path)
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path} ({exc.strerror})") from None
    except ValueError as exc:
        raise ConfigError(f"{setting}: {exc}") from None
