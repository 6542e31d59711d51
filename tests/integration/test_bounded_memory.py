"""What a node keeps per wallet stays at its configured bound, however many wallets there are."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID, uuid4

import pytest

from services import prizes
from services.bounded_cache import BoundedCache
from services.city import CityApplication
from services.event_log import event_type, read_events
from services.identity.credentials import CredentialCheck, NewCredential
from services.privacy.keystore import KeyStore
from services.settings.cities import load_city, load_settings

AGGREGATES = 5
KEYS = 4
WALLETS = 30


@pytest.fixture
def app(tmp_path: Path) -> CityApplication:
    settings = load_settings(
        {
            "CIVFED_DATA_DIR": str(tmp_path),
            "CIVFED_AGGREGATE_CACHE_SIZE": str(AGGREGATES),
            "CIVFED_KEY_CACHE_SIZE": str(KEYS),
        }
    )
    city = CityApplication(load_city("vienna"), settings.eventsourcing_env("vienna"))
    yield city
    city.close()


def open_wallets(app: CityApplication, n: int) -> list[UUID]:
    consent = app.city.config.consent_versions[-1]
    out = app.execute_group([app.open_wallet(f"w{i}", "resident", consent) for i in range(n)])
    return [UUID(o["wallet_id"]) for o in out if isinstance(o, dict)]


def test_more_wallets_than_the_caches_hold_leave_them_at_their_bounds(app: CityApplication) -> None:
    wallets = open_wallets(app, WALLETS)
    assert len(wallets) == WALLETS
    tokens = {}
    for w in wallets:
        new = NewCredential.make("holder", w)
        app.execute(app.issue_credential(f"cred:{w}", new, "first", 30, "staff", first_only=True))
        tokens[w] = new.token
    check = CredentialCheck(app)
    for w in wallets:
        # A holder's call: the credential checked against its keyring, then the balance read.
        principal = check.principal(tokens[w])
        assert principal is not None and principal.wallet_id == w
        assert app.balance_view(w).balance == 0
        assert app.pseudonym(w)  # each wallet's key is read (and its pseudonym derived)
    assert app.keys is not None
    assert app.keys.cache_size == KEYS
    assert app.keys.cached == KEYS
    cache = app.repository.cache
    assert cache is not None
    assert len(cache.cache) <= AGGREGATES
    # Evicted entries are read again from the store, unchanged.
    first = wallets[0]
    assert app.wallet(first).id == first
    assert app.keys.key_for(first, create=False) is not None
    assert app.keys.cached == KEYS


def test_the_key_store_reads_an_evicted_key_back_and_keeps_an_erasure(tmp_path: Path) -> None:
    keys = KeyStore.sqlite(str(tmp_path / "k.sqlite"), "t_keys", bytes(32), cache_size=2)
    owners = [uuid4() for _ in range(6)]
    made = {o: keys.key_for(o, create=True) for o in owners}
    assert keys.cached == 2
    assert keys.erase([owners[0]]) == 1
    for o in owners[1:]:
        assert keys.key_for(o, create=False) == made[o]
    assert keys.cached == 2
    assert keys.key_for(owners[0], create=False) is None  # evicted, and still erased
    for subject, owner in zip(owners[:3], owners[3:], strict=True):
        keys.link(subject, owner)
    assert [keys.owner_of(s) for s in owners[:3]] == owners[3:]
    keys.close()


def test_the_prize_book_decodes_only_prize_events_and_moves_past_the_rest(app: CityApplication) -> None:
    """The node's sweep follows prizes from the log: with a million wallets' events in it,
    it must neither decode nor re-read them on every round."""
    open_wallets(app, 10)
    shop = UUID(app.execute(app.register_merchant("shop", "Shop", "food", True))["merchant_id"])
    prize = UUID(app.execute(app.offer_prize("mug", shop, "Mug", 1, 3))["prize_id"])
    open_wallets(app, 10)
    book = prizes.PrizeBook().refresh(app)
    assert book.prize_ids() == [prize]
    assert book.position == app.recorder.max_notification_id()
    decoded = [event_type(e) for _, e in read_events(app, topics=prizes.TOPICS)]
    assert decoded == ["Prize.Offered"]
    more = UUID(app.execute(app.offer_prize("cup", shop, "Cup", 1, 3))["prize_id"])
    assert book.refresh(app).prize_ids() == [prize, more]


def test_a_bounded_cache_drops_the_least_recently_used() -> None:
    cache: BoundedCache[str, int] = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now "b" is the least recently used
    cache.put("c", 3)
    assert len(cache) == 2
    assert "b" not in cache
    assert cache.get("a") == 1 and cache.get("c") == 3
    with pytest.raises(ValueError):
        BoundedCache(0)
