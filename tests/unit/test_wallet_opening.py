"""Opening wallets: consent, participant kinds, and the tourist validity end."""

from __future__ import annotations

import datetime as dt
from uuid import uuid4

import pytest

from aggregates.errors import InvalidInput, WalletExpired
from aggregates.wallet import Wallet

T0 = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)


def test_a_wallet_opens_only_with_recorded_consent() -> None:
    with pytest.raises(InvalidInput) as exc:
        Wallet.open("rome", "resident", "", None)
    assert exc.value.field == "consent_version"
    wallet = Wallet.open("rome", "resident", "roma-2026-03", None)
    (opened,) = wallet.collect_events()
    assert opened.consent_version == "roma-2026-03"  # type: ignore[attr-defined]


def test_unknown_participant_kind_is_refused() -> None:
    with pytest.raises(InvalidInput) as exc:
        Wallet.open("rome", "vip", "roma-2026-03", None)
    assert exc.value.field == "participant_kind"


@pytest.mark.parametrize("kind", ["resident", "tourist", "business"])
def test_each_participant_kind_opens(kind: str) -> None:
    until = T0 + dt.timedelta(days=7) if kind == "tourist" else None
    wallet = Wallet.open("rome", kind, "roma-2026-03", until)
    assert (wallet.participant_kind, wallet.balance, wallet.closed) == (kind, 0, False)


def test_a_tourist_wallet_needs_a_validity_end() -> None:
    with pytest.raises(InvalidInput) as exc:
        Wallet.open("rome", "tourist", "roma-2026-03", None)
    assert exc.value.field == "valid_until"


def test_a_tourist_wallet_works_until_its_validity_end_and_not_at_it() -> None:
    end = T0 + dt.timedelta(days=7)
    wallet = Wallet.open("rome", "tourist", "roma-2026-03", end)
    wallet.credit(20, "eco-actions", 1, "a1", "recycling")
    wallet.check_active(end - dt.timedelta(microseconds=1))
    wallet.spend(5, uuid4(), "p1", end - dt.timedelta(seconds=1))
    with pytest.raises(WalletExpired):
        wallet.check_active(end)
    with pytest.raises(WalletExpired):
        wallet.spend(5, uuid4(), "p2", end + dt.timedelta(days=1))
    assert wallet.balance == 15


def test_a_validity_end_needs_a_time_zone() -> None:
    with pytest.raises(InvalidInput) as exc:
        Wallet.open("rome", "tourist", "roma-2026-03", dt.datetime(2026, 7, 8, 12, 0))
    assert exc.value.field == "valid_until"
