"""Envelope encryption of per-owner data keys under the key-store key.

A wrapped key is: version, key-store key id, nonce, AES-GCM(data key). The store's
name and the owner's id are bound in as associated data, so a wrapped key copied to
another owner's row, or to another store, does not open.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.privacy.keystore_key import KeyStoreKeyError, kek_id

WRAP_VERSION = b"\x01"
ID_BYTES, NONCE_BYTES, KEY_BYTES = 8, 12, 32
WRAPPED_BYTES = 1 + ID_BYTES + NONCE_BYTES + KEY_BYTES + 16


class KeyStoreError(Exception):
    """A stored key that does not open: altered, or copied from another owner's row."""


class KeyWrapper:
    """Wraps and unwraps the data keys of the store `store` under one key-store key."""

    def __init__(self, kek: bytes, store: str) -> None:
        self._aead = AESGCM(kek)
        self.kek_id = kek_id(kek)
        self.store = store

    def _aad(self, owner: str) -> bytes:
        return f"civfed keystore v1\x00{self.store}\x00{owner}".encode()

    def wrap(self, owner: str, key: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, key, self._aad(owner))
        return WRAP_VERSION + bytes.fromhex(self.kek_id) + nonce + sealed

    def unwrap(self, owner: str, stored: bytes) -> bytes:
        if len(stored) != WRAPPED_BYTES or stored[:1] != WRAP_VERSION:
            raise KeyStoreError(f"{self.store}: the stored key of {owner} is not a wrapped key")
        if stored[1 : 1 + ID_BYTES].hex() != self.kek_id:
            raise KeyStoreKeyError(
                f"the key of {owner} in {self.store} is wrapped under another key-store key; "
                "after a rotation, point it at the new key file"
            )
        nonce = stored[1 + ID_BYTES : 1 + ID_BYTES + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, stored[1 + ID_BYTES + NONCE_BYTES :], self._aad(owner))
        except InvalidTag:
            raise KeyStoreError(
                f"{self.store}: the stored key of {owner} does not open: it was altered "
                "or copied from another owner's row"
            ) from None
