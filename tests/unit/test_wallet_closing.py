"""Leaving with tokens on hold: held tokens are the holder's during the final spend window."""

from __future__ import annotations

import datetime as dt
from uuid import uuid4

import pytest

from aggregates.errors import WalletClosed
from aggregates.wallet import Wallet

T0 = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)
SHOP = uuid4()


def funded(amount: int) -> Wallet:
    wallet = Wallet.open("vienna", "resident", "wien-2026-01", None)
    wallet.credit(amount, "test-rule", 1, "a1", f"{amount} for a test")
    return wallet


def test_everything_on_hold_still_opens_the_final_spend_window() -> None:
    wallet = funded(3)
    wallet.place_hold("v1", 3, T0 + dt.timedelta(hours=72), "voucher", T0)
    assert wallet.available == 0
    wallet.leave(T0, final_spend_days=30, reason="moving")
    assert not wallet.closed
    assert wallet.closes_at == T0 + dt.timedelta(days=30)
    assert (wallet.balance, wallet.held) == (3, 3)
    # The voucher is still redeemable during the window.
    wallet.spend_hold("v1", SHOP, "voucher:v1", T0 + dt.timedelta(hours=1))
    assert (wallet.balance, wallet.held) == (0, 0)


def test_a_hold_released_in_the_window_stays_spendable_until_it_ends() -> None:
    wallet = funded(3)
    wallet.place_hold("v1", 3, T0 + dt.timedelta(hours=1), "voucher", T0)
    wallet.leave(T0, final_spend_days=30, reason="moving")
    later = T0 + dt.timedelta(days=10)
    wallet.spend(2, SHOP, "after the voucher lapsed", later)  # releases the lapsed hold first
    assert (wallet.balance, wallet.held) == (1, 0)
    with pytest.raises(WalletClosed):
        wallet.spend(1, SHOP, "too late", T0 + dt.timedelta(days=30))
    wallet.finish("final spend window ended", T0 + dt.timedelta(days=30))
    assert wallet.closed and wallet.balance == 0


def test_a_voucher_outliving_the_window_keeps_the_wallet_open_until_it_expires() -> None:
    wallet = funded(5)
    expires = T0 + dt.timedelta(days=40)
    wallet.place_hold("v1", 5, expires, "voucher", T0)
    wallet.leave(T0, final_spend_days=30, reason="moving")
    assert wallet.closes_at == expires
    wallet.spend_hold("v1", SHOP, "voucher:v1", T0 + dt.timedelta(days=35))
    assert wallet.balance == 0


def test_nothing_left_at_all_closes_at_once() -> None:
    wallet = funded(3)
    wallet.spend(3, SHOP, "all of it", T0)
    wallet.leave(T0, final_spend_days=30, reason="moving")
    assert wallet.closed and wallet.closes_at is None
