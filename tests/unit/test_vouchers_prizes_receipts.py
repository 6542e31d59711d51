"""Vouchers, prizes and idempotency receipts as pure aggregates."""

from __future__ import annotations

import datetime as dt
from uuid import uuid4

import pytest

from aggregates.errors import (
    IdempotencyConflict,
    InsufficientBalance,
    InvalidInput,
    OutOfStock,
    PreconditionFailed,
    VoucherAlreadyRedeemed,
    VoucherExpired,
    rebuild,
    refusal,
)
from aggregates.merchant import Prize
from aggregates.receipt import Receipt, params_hash
from aggregates.voucher import Voucher

T0 = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)


def voucher(ttl: dt.timedelta = dt.timedelta(hours=72)) -> Voucher:
    return Voucher("vienna", uuid4(), "hold-1", 3, T0 + ttl)


def test_voucher_redeems_once() -> None:
    v = voucher()
    shop = uuid4()
    v.check_redeemable(T0)
    v.redeem(shop)
    assert v.redeemed_by == shop
    with pytest.raises(VoucherAlreadyRedeemed):
        v.check_redeemable(T0)


def test_voucher_expires_at_its_expiry_instant() -> None:
    v = voucher()
    v.check_redeemable(v.expires_at - dt.timedelta(microseconds=1))
    with pytest.raises(VoucherExpired):
        v.check_redeemable(v.expires_at)
    with pytest.raises(VoucherExpired):
        v.check_redeemable(v.expires_at + dt.timedelta(days=30))


def test_voucher_qr_carries_only_city_and_id() -> None:
    v = voucher()
    assert v.qr_payload == f"civfed:vienna:voucher:{v.id}"
    assert str(v.wallet_id) not in v.qr_payload


def test_prize_stock_decreases_then_runs_out() -> None:
    prize = Prize.offer("rome", uuid4(), "Museum ticket", cost=50, stock=2)
    prize.check_in_stock()
    prize.claim(uuid4())
    assert prize.stock == 1
    prize.check_in_stock()
    prize.claim(uuid4())
    assert prize.stock == 0
    with pytest.raises(OutOfStock, match="Museum ticket"):
        prize.check_in_stock()


@pytest.mark.parametrize(("cost", "stock", "field"), [(0, 1, "cost"), (-5, 1, "cost"), (10, 0, "stock")])
def test_a_prize_needs_a_positive_cost_and_stock(cost: int, stock: int, field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        Prize.offer("rome", uuid4(), "Gelato", cost=cost, stock=stock)
    assert exc.value.field == field


def test_params_hash_ignores_key_order_and_sees_every_value() -> None:
    a = params_hash("spend", {"wallet": "w", "amount": 3})
    assert a == params_hash("spend", {"amount": 3, "wallet": "w"})
    assert a != params_hash("spend", {"wallet": "w", "amount": 4})
    assert a != params_hash("claim_prize", {"wallet": "w", "amount": 3})


def test_receipt_replays_its_result() -> None:
    digest = params_hash("spend", {"amount": 3})
    receipt = Receipt("vienna", "k1", "spend", digest, {"spent": 3, "available": 7})
    assert receipt.id == Receipt.create_id("vienna", "k1")
    assert receipt.id != Receipt.create_id("rome", "k1")
    assert receipt.replay("spend", digest) == {"spent": 3, "available": 7}


def test_receipt_refuses_the_same_key_with_other_parameters() -> None:
    digest = params_hash("spend", {"amount": 3})
    receipt = Receipt("vienna", "k1", "spend", digest, {"spent": 3})
    with pytest.raises(IdempotencyConflict):
        receipt.replay("spend", params_hash("spend", {"amount": 4}))
    with pytest.raises(IdempotencyConflict):
        receipt.replay("claim_prize", digest)


def test_a_recorded_refusal_replays_as_the_same_exception() -> None:
    original = InsufficientBalance("needs 11, available 10")
    digest = params_hash("spend", {"amount": 11})
    receipt = Receipt("vienna", "k2", "spend", digest, refusal(original))
    with pytest.raises(InsufficientBalance) as exc:
        receipt.replay("spend", digest)
    assert str(exc.value) == str(original)


def test_an_unknown_refusal_type_replays_as_precondition_failed() -> None:
    err = rebuild({"refused": "SomethingRemoved", "message": "old refusal"})
    assert type(err) is PreconditionFailed
    assert str(err) == "old refusal"


@pytest.mark.parametrize(
    ("cost", "stock", "field"), [(2.5, 1, "cost"), (10, 1.5, "stock"), (True, 1, "cost")]
)
def test_prize_cost_and_stock_are_whole_numbers(cost: object, stock: object, field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        Prize.offer("rome", uuid4(), "Gelato", cost=cost, stock=stock)  # type: ignore[arg-type]
    assert exc.value.field == field
