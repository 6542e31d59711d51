"""The key-store key (KEK): the one key that wraps every per-wallet data key.

It lives in a file named by CIVFED_KEYSTORE_KEY_FILE: 32 random bytes, base64-encoded
(44 characters, a trailing newline allowed), as `openssl rand -base64 32` writes it.
Kept outside the database, so a database backup alone opens no personal data.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from services.settings.errors import ConfigError

SETTING = "CIVFED_KEYSTORE_KEY_FILE"
# Where the embedded (SQLite) default keeps a key it made itself, in the data dir.
DEFAULT_NAME = "keystore.key"
KEY_BYTES = 32


class KeyStoreKeyError(ConfigError):
    """The key-store key is missing, malformed or not the one the store was wrapped with."""

    def __init__(self, detail: str, setting: str = SETTING) -> None:
        super().__init__(f"{setting}: {detail}")
        self.detail = detail


def read_kek(path: Path, setting: str = SETTING) -> bytes:
    """The key in `path`; a missing, unreadable or malformed file names `setting`."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise KeyStoreKeyError(f"no such file {path}", setting) from None
    except OSError as exc:
        raise KeyStoreKeyError(f"cannot read {path} ({exc.strerror})", setting) from None
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyStoreKeyError(
            f"{path} must hold {KEY_BYTES} random bytes, base64-encoded (44 characters, "
            "for example from `openssl rand -base64 32`)",
            setting,
        )
    return key


def kek_id(kek: bytes) -> str:
    """A public fingerprint of the key: the store records which key wrapped its rows."""
    return hashlib.sha256(b"civfed keystore key id\x00" + kek).hexdigest()[:16]


def generate_kek(path: Path) -> bytes:
    """The key in `path`, made there first (mode 0600) if there is none yet.

    Written to a private temporary file and linked into place, so two processes
    starting together agree on one key and never read a half-written file.
    """
    if path.exists():
        return read_kek(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)) + b"\n")
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return read_kek(path)
