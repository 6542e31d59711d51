"""The wallet aggregate: carried remainders, and a balance that never goes negative."""

from __future__ import annotations

import datetime as dt
import random
from uuid import uuid4

import pytest

from aggregates.errors import (
    HoldNotActive,
    InsufficientBalance,
    InvalidInput,
    WalletClosed,
)
from aggregates.rules import TripInput, measured_quantity
from aggregates.wallet import Wallet
from services.settings.cities import load_city

T0 = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)
SHOP = uuid4()


def resident() -> Wallet:
    return Wallet.open("vienna", "resident", "wien-2026-01", None)


def funded(amount: int) -> Wallet:
    wallet = resident()
    wallet.credit(amount, "test-rule", 1, "a1", f"{amount} for a test")
    return wallet


def event_names(wallet: Wallet) -> list[str]:
    return [type(e).__name__ for e in wallet.collect_events()]


def test_carried_remainder_across_many_trips_is_exact() -> None:
    (rule,) = load_city("vienna").rules
    wallet = resident()
    rnd = random.Random(7)
    total_grams = 0
    for n in range(300):
        mode = rnd.choice(["bike", "walk", "tram", "bus", "subway", "car", "escooter"])
        inp = TripInput(mode=mode, distance_m=rnd.randint(0, 40_000), date=dt.date(2026, 5, 4))
        award = measured_quantity(rule.params, inp, wallet.carried.get(rule.id, 0))
        assert award.quantity is not None
        total_grams += award.quantity
        wallet.credit(
            award.amount,
            rule.id,
            1,
            f"trip-{n}",
            award.explanation,
            rule.id,
            award.carried_after,
            award.quantity,
        )
        # After every trip: tokens plus carried grams account for every gram saved.
        assert wallet.balance * 20_000 + wallet.carried[rule.id] == total_grams
        assert 0 <= wallet.carried[rule.id] < 20_000
    assert wallet.balance == total_grams // 20_000
    assert total_grams > 20_000 * 10


def test_a_trip_below_one_token_is_recorded_as_progress_with_its_carry() -> None:
    wallet = resident()
    wallet.credit(0, "mobility-co2", 1, "t1", "8.5 kg carried", "mobility-co2", 8_500, 8_500)
    assert wallet.balance == 0
    assert wallet.carried == {"mobility-co2": 8_500}
    assert event_names(wallet) == ["Opened", "Progressed"]


def test_negative_credit_is_impossible() -> None:
    wallet = funded(10)
    with pytest.raises(InvalidInput) as exc:
        wallet.credit(-1, "r", 1, "a2", "never")
    assert exc.value.field == "amount"
    assert wallet.balance == 10


def test_spending_more_than_the_balance_is_refused_and_changes_nothing() -> None:
    wallet = funded(10)
    wallet.collect_events()
    with pytest.raises(InsufficientBalance):
        wallet.spend(11, SHOP, "p1", T0)
    assert wallet.balance == 10
    assert wallet.collect_events() == []
    wallet.spend(10, SHOP, "p2", T0)
    assert wallet.balance == 0
    with pytest.raises(InsufficientBalance):
        wallet.spend(1, SHOP, "p3", T0)
    assert wallet.balance == 0


@pytest.mark.parametrize("amount", [0, -5])
def test_spending_nothing_or_a_negative_amount_is_invalid(amount: int) -> None:
    wallet = funded(10)
    with pytest.raises(InvalidInput) as exc:
        wallet.spend(amount, SHOP, "p", T0)
    assert exc.value.field == "amount"
    assert wallet.balance == 10


def test_holds_reduce_what_can_be_spent() -> None:
    wallet = funded(10)
    wallet.place_hold("h1", 7, T0 + dt.timedelta(hours=1), "voucher", T0)
    assert (wallet.balance, wallet.held, wallet.available) == (10, 7, 3)
    with pytest.raises(InsufficientBalance):
        wallet.spend(4, SHOP, "p", T0)
    with pytest.raises(InsufficientBalance):
        wallet.place_hold("h2", 4, T0 + dt.timedelta(hours=1), "voucher", T0)
    wallet.spend(3, SHOP, "p", T0)
    assert (wallet.balance, wallet.available) == (7, 0)
    wallet.spend_hold("h1", SHOP, "voucher", T0)
    assert (wallet.balance, wallet.held, wallet.available) == (0, 0, 0)


def test_an_expired_hold_is_released_with_an_event() -> None:
    wallet = funded(10)
    expires = T0 + dt.timedelta(hours=1)
    wallet.place_hold("h1", 10, expires, "voucher", T0)
    wallet.collect_events()
    with pytest.raises(InsufficientBalance):
        wallet.spend(1, SHOP, "p", expires - dt.timedelta(microseconds=1))
    # At the expiry instant the hold has lapsed: the spend releases it first.
    wallet.spend(4, SHOP, "p", expires)
    assert (wallet.balance, wallet.held, wallet.available) == (6, 0, 6)
    assert [type(e).__name__ for e in wallet.collect_events()] == ["HoldReleased", "Spent"]
    with pytest.raises(HoldNotActive):
        wallet.spend_hold("h1", SHOP, "voucher", expires)


def test_an_expired_hold_cannot_be_spent_or_burned() -> None:
    wallet = funded(10)
    expires = T0 + dt.timedelta(hours=1)
    wallet.place_hold("h1", 5, expires, "redemption", T0)
    with pytest.raises(HoldNotActive):
        wallet.spend_hold("h1", SHOP, "late", expires)
    with pytest.raises(HoldNotActive):
        wallet.burn_hold("h1", "rome", uuid4(), expires)
    assert wallet.balance == 10
    wallet.release_expired(expires)
    assert (wallet.held, wallet.available) == (0, 10)


def test_random_commands_never_make_balance_or_availability_negative() -> None:
    rnd = random.Random(3)
    wallet = resident()
    now = T0
    for n in range(2_000):
        now += dt.timedelta(minutes=rnd.randint(0, 30))
        op = rnd.randrange(5)
        try:
            if op == 0:
                wallet.credit(rnd.randint(0, 5), "r", 1, f"a{n}", "award")
            elif op == 1:
                wallet.spend(rnd.randint(-2, 8), SHOP, f"p{n}", now)
            elif op == 2:
                expiry = now + dt.timedelta(minutes=rnd.randint(1, 90))
                wallet.place_hold(f"h{n}", rnd.randint(1, 6), expiry, "voucher", now)
            elif op == 3 and wallet.holds:
                wallet.spend_hold(rnd.choice(sorted(wallet.holds)), SHOP, f"v{n}", now)
            elif op == 4:
                wallet.release_expired(now)
        except (InsufficientBalance, InvalidInput, HoldNotActive):
            pass
        assert wallet.balance >= 0
        assert wallet.available >= 0
        assert wallet.held == sum(h.amount for h in wallet.holds.values())


def test_a_closed_wallet_refuses_spending() -> None:
    wallet = funded(10)
    wallet.close("opted out")
    with pytest.raises(WalletClosed):
        wallet.spend(1, SHOP, "p", T0)
    with pytest.raises(WalletClosed):
        wallet.check_active(T0)
    assert wallet.balance == 10


def test_no_method_removes_tokens_except_spending_by_the_holder() -> None:
    """Rewards only: the only ways out are the holder's spends and redemptions."""
    public = {n for n in dir(Wallet) if not n.startswith("_") and callable(getattr(Wallet, n))}
    outflows = {"spend", "spend_hold", "burn_hold"}
    assert outflows <= public
    for name in public:
        assert not any(word in name for word in ("debit", "penal", "fine", "deduct", "revoke", "confiscat"))


@pytest.mark.parametrize("amount", [1.5, 0.5, True, "3"])
def test_money_is_whole_numbers_only(amount: object) -> None:
    wallet = funded(10)
    wallet.collect_events()
    with pytest.raises(InvalidInput) as exc:
        wallet.spend(amount, SHOP, "p", T0)  # type: ignore[arg-type]
    assert exc.value.field == "amount"
    with pytest.raises(InvalidInput):
        wallet.place_hold("h", amount, T0 + dt.timedelta(hours=1), "voucher", T0)  # type: ignore[arg-type]
    assert (wallet.balance, wallet.held) == (10, 0)
    assert wallet.collect_events() == []


def test_an_award_keeps_its_explanation_as_a_message_id_and_parameters_and_older_events_replay() -> None:
    inp = TripInput(mode="bike", distance_m=225_000, date=dt.date(2026, 5, 3))
    award = measured_quantity(
        {"factors_g_per_km": {"car": 200, "bike": 0}, "baseline_mode": "car", "unit_grams": 20000}, inp, 0
    )
    wallet = resident()
    wallet.credit(
        award.amount,
        "mobility-co2",
        1,
        "t1",
        award.explanation,
        "mobility-co2",
        award.carried_after,
        award.quantity,
        explanation_id=award.message,
        explanation_args=award.args,
    )
    wallet.credit(0, "mobility-co2", 1, "t2", "1.0 km by bike", "mobility-co2", 5_200, 200)
    events = wallet.collect_events()
    credited, progressed = events[1], events[2]
    assert (credited.explanation_id, credited.explanation_args) == (award.message, award.args)
    assert credited.explanation == award.explanation
    # An award without a message id records none (as every award did before there were ids).
    assert (progressed.explanation_id, progressed.explanation_args) == ("", None)
    # Events stored before explanations had ids lack those fields, and still replay.
    for e in events[1:]:
        vars(e).pop("explanation_id", None)
        vars(e).pop("explanation_args", None)
    replayed = None
    for e in events:
        replayed = e.mutate(replayed)
    assert isinstance(replayed, Wallet)
    assert (replayed.balance, replayed.carried) == (2, {"mobility-co2": 5_200})
