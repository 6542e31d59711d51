"""The names a wallet goes by outside the city's store: pseudonyms from the wallet's own key.

Integration events (Kafka) and read models never carry a wallet id. They carry
HMAC-SHA256, under a key derived with HKDF from the wallet's key in the key
store, over the city and the wallet id. Erasure destroys that key, so no one can
compute the pseudonym again, and every message and row that carried it is no
longer linkable to the wallet or the person.

An erasure records the pseudonym in the wallet's `Erased` event before the key
goes, so that event, and any event of the wallet published or replayed after the
key is gone, still names the wallet the same way; the read models then replace the
pseudonym wherever it sits (projections/erasure.py).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from uuid import UUID

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.bounded_cache import BoundedCache
from services.privacy.keystore import KeyStore

INFO = b"civfed pseudonym v1"


def pseudonym_of(wallet_key: bytes, city: str, wallet_id: UUID) -> str:
    """HMAC-SHA256 (hex) of `city:wallet id` under the HKDF-derived pseudonym key."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(wallet_key)
    return hmac.new(derived, f"{city}:{wallet_id}".encode(), hashlib.sha256).hexdigest()


class Pseudonyms:
    """A city's wallet pseudonyms, as the relay and the log source name wallets."""

    def __init__(self, city: str, keys: KeyStore | None, recorded: Callable[[UUID], str | None]) -> None:
        """`recorded(wallet id)`: the pseudonym an erasure recorded, once the key is gone."""
        self.city = city
        self.keys = keys
        self.recorded = recorded
        # Bounded like the key store's cache; the size is the key store's.
        self._erased: BoundedCache[UUID, str] = BoundedCache(keys.cache_size if keys else 1)
        # wallet id -> (the key it was derived from, the pseudonym): a wallet names itself in
        # many events, and deriving costs an HKDF and an HMAC. Used only while the key store
        # still gives that same key, so an erasure ends it at once.
        self._derived: BoundedCache[UUID, tuple[bytes, str]] = BoundedCache(keys.cache_size if keys else 1)

    def __call__(self, wallet_id: UUID) -> str:
        if self.keys is None:
            # Personal encryption off (benchmarks comparing its cost): no key to derive from.
            return str(wallet_id)
        key = self.keys.key_for(wallet_id, create=True)
        if key is not None:
            derived = self._derived.get(wallet_id)
            if derived is not None and derived[0] == key:
                return derived[1]
            fresh = pseudonym_of(key, self.city, wallet_id)
            self._derived.put(wallet_id, (key, fresh))
            return fresh
        name = self._erased.get(wallet_id)
        if name is None:
            # Erased: the name its erasure recorded; a wallet erased before erasures recorded
            # one gets a random name while it stays in this cache, linked to nothing.
            name = self.recorded(wallet_id) or secrets.token_hex(32)
            self._erased.put(wallet_id, name)
        return name

    def prefetch(self, wallet_ids: Iterable[UUID]) -> None:
        """Read the keys of many wallets at once (a page of the log names hundreds)."""
        if self.keys is not None:
            self.keys.prefetch(wallet_ids)

    def of_owner(self, aggregate_id: UUID) -> str | None:
        """The pseudonym of the wallet that owns another aggregate (an appeal), if any."""
        owner = self.keys.owner_of(aggregate_id) if self.keys is not None else None
        return self(owner) if owner is not None else None
