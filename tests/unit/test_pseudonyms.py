"""Wallet pseudonyms: HMAC under a key derived from the wallet's own key, gone with it."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from uuid import UUID, uuid4

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.privacy.keystore import KeyStore
from services.privacy.pseudonyms import INFO, Pseudonyms, pseudonym_of


def keystore() -> KeyStore:
    return KeyStore.sqlite(":memory:", "vienna_keys", os.urandom(32))


def test_a_pseudonym_is_hmac_sha256_of_city_and_wallet_under_the_hkdf_derived_key() -> None:
    key, wallet = os.urandom(32), uuid4()
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"civfed pseudonym v1").derive(key)
    expected = hmac.new(derived, f"vienna:{wallet}".encode(), hashlib.sha256).hexdigest()
    assert INFO == b"civfed pseudonym v1"
    assert pseudonym_of(key, "vienna", wallet) == expected
    assert re.fullmatch(r"[0-9a-f]{64}", expected) and str(wallet) not in expected
    # Another city, wallet or key names it differently.
    assert pseudonym_of(key, "rome", wallet) != expected
    assert pseudonym_of(key, "vienna", uuid4()) != expected
    assert pseudonym_of(os.urandom(32), "vienna", wallet) != expected


def test_the_same_wallet_keeps_its_pseudonym_until_its_key_is_erased() -> None:
    keys = keystore()
    recorded: dict[UUID, str] = {}
    names = Pseudonyms("vienna", keys, recorded.get)
    anna, bert = uuid4(), uuid4()
    first = names(anna)
    assert names(anna) == first != names(bert)
    key = keys.key_for(anna, create=False)
    assert key is not None and first == pseudonym_of(key, "vienna", anna)
    # After the erasure: only what the erasure recorded names it; nothing computes it again.
    recorded[anna] = first
    keys.erase([anna])
    assert keys.key_for(anna, create=True) is None
    assert names(anna) == first
    fresh = Pseudonyms("vienna", keys, lambda _w: None)
    unnamed = fresh(anna)
    assert unnamed != first and fresh(anna) == unnamed  # random, for this process's lifetime
    keys.close()


def test_an_appeal_is_named_by_its_owner() -> None:
    keys = keystore()
    names = Pseudonyms("vienna", keys, lambda _w: None)
    anna, appeal = uuid4(), uuid4()
    keys.link(appeal, anna)
    assert names.of_owner(appeal) == names(anna)
    assert names.of_owner(uuid4()) is None
    keys.close()
