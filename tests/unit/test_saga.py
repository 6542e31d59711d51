"""The redemption saga through the Partner port, with a fake partner and a clock moved by hand.

Vienna is the home city, Sint-Niklaas the accepting one; each runs on its own SQLite
store, so a crash is a fresh application opened on the same file. Nothing here waits on
the wall clock: a hold lapses when the test moves the clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aggregates.errors import PreconditionFailed
from aggregates.redemption import ForeignRedemption
from services.city import CityApplication
from services.city_totals import city_totals
from services.event_log import event_type, read_events
from services.federation.acceptor import Acceptor
from services.federation.home import HomeRedemptions
from services.federation.ledger import RedemptionLedger
from services.federation.local_partner import LocalPartner
from services.federation.partner import Outcome, PartnerRefusedCall, PartnerUnreachable, Reservation
from services.federation.sweep import sweep
from services.settings.cities import load_city, load_settings
from services.unit_of_work import UnitOfWork

T0 = dt.datetime(2026, 5, 4, 8, 0, tzinfo=dt.UTC)
HOLD = dt.timedelta(minutes=2)
SIGNING_KEY = Ed25519PrivateKey.generate()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def move(self, delta: dt.timedelta) -> None:
        self.now += delta


class Crash(BaseException):
    """The process dies here: nothing after this point runs, nothing catches it."""


class FakePartner:
    """Vienna as Sint-Niklaas reaches it, with the faults a test asks for, once each."""

    def __init__(self, real: LocalPartner) -> None:
        self.real = real
        self.city = real.city
        self.faults: list[str] = []  # "down", "lose-reply", "refuse-call", "crash"
        self.calls: list[str] = []

    def _call(self, name: str, fn: Any, *args: Any) -> Any:
        self.calls.append(name)
        fault = self.faults.pop(0) if self.faults else ""
        if fault == "crash":
            raise Crash(name)
        if fault == "down":
            raise PartnerUnreachable(f"{self.city} is down")
        if fault == "refuse-call":
            raise PartnerRefusedCall(f"{self.city} refused: busy")
        answer = fn(*args)
        if fault == "lose-reply":
            raise PartnerUnreachable(f"{self.city}'s reply was lost")
        return answer

    def reserve(self, key: str, token: str) -> Reservation:
        result: Reservation = self._call("reserve", self.real.reserve, key, token)
        return result

    def commit(self, key: str, redemption_id: UUID) -> Outcome:
        result: Outcome = self._call("commit", self.real.commit, key, redemption_id)
        return result

    def cancel(self, key: str, redemption_id: UUID, reason: str) -> Outcome:
        result: Outcome = self._call("cancel", self.real.cancel, key, redemption_id, reason)
        return result

    def published_terms(self) -> Any:
        return self.real.published_terms()

    def close(self) -> None:
        pass


class Side:
    """One city: its application on its own store, both sides of redemption, its ledger."""

    def __init__(self, key: str, folder: Path, clock: Clock) -> None:
        self.key, self.folder, self.clock = key, folder, clock
        self.open()

    def open(self) -> None:
        settings = load_settings({"CIVFED_DATA_DIR": str(self.folder)})
        self.app = CityApplication(
            load_city(self.key), settings.eventsourcing_env(self.key), clock=self.clock
        )
        self.home = HomeRedemptions(self.app, SIGNING_KEY, dt.timedelta(minutes=15), HOLD, self.clock)
        self.ledger = RedemptionLedger()
        self.partners: dict[str, Any] = {}
        self.acceptor = Acceptor(self.app, self.partners, {}, self.app.execute, self.clock)

    def restart(self) -> None:
        """A fresh process on the same store: nothing survives but what was saved."""
        self.app.close()
        self.open()

    def sweep(self) -> None:
        sweep(self.home, self.acceptor, self.ledger, self.app.execute)

    def count(self, kind: str) -> int:
        return sum(1 for _, e in read_events(self.app) if event_type(e) == kind)


class World:
    def __init__(self, folder: Path) -> None:
        self.clock = Clock()
        self.vienna = Side("vienna", folder / "vienna", self.clock)
        self.sn = Side("sint_niklaas", folder / "sint_niklaas", self.clock)
        self.wire()
        v = self.vienna.app
        self.wallet = UUID(v.execute(v.open_wallet("w", "resident", "wien-2026-01"))["wallet_id"])
        trip = {"mode": "bike", "distance_m": "1000000", "date": "2026-05-03"}
        v.execute(v.record_activity("t", self.wallet, "trip", trip))  # 1,000 km: 10 tokens
        s = self.sn.app
        self.shop = UUID(s.execute(s.register_merchant("shop", "Bakker", "food", True))["merchant_id"])

    def wire(self) -> None:
        """Sint-Niklaas reaches Vienna through the fake partner (again after a restart)."""
        self.partner = FakePartner(LocalPartner(self.vienna.home, self.vienna.app.execute, "sint_niklaas"))
        self.sn.partners["vienna"] = self.partner
        self.sn.acceptor.keys = {"vienna": SIGNING_KEY.public_key()}

    def voucher(self, amount: int, key: str = "v") -> str:
        token: str = self.vienna.app.execute(self.vienna.home.issue(key, self.wallet, amount))["token"]
        return token

    def sell(self, token: str, key: str = "sale") -> dict[str, Any]:
        return self.sn.acceptor.accept(key, self.shop, token)

    def saga(self) -> ForeignRedemption:
        (saga_id,) = [
            e.originator_id
            for _, e in read_events(self.sn.app)
            if event_type(e) == "ForeignRedemption.Started"
        ]
        return UnitOfWork(self.sn.app).get(saga_id, ForeignRedemption, "saga")

    def holder(self) -> tuple[int, int]:
        w = self.vienna.app.wallet(self.wallet)
        return w.balance, w.held

    def shop_total(self) -> int:
        return sum(line.amount for line in self.sn.app.statement(self.shop))

    def conserved(self) -> None:
        """Issued − spent − burned − lapsed = balances + holds, in both cities; and every
        token Vienna burned is one Sint-Niklaas's shop keeps a credit for."""
        for side in (self.vienna, self.sn):
            totals = city_totals(side.app, side.key)
            wallets = {e.originator_id for _, e in read_events(side.app) if event_type(e) == "Wallet.Opened"}
            assert totals.outstanding == sum(side.app.wallet(w).balance for w in wallets)
            assert totals.held == sum(side.app.wallet(w).held for w in wallets)
        burned = city_totals(self.vienna.app, "vienna").burned
        committed = [e for _, e in read_events(self.sn.app) if event_type(e) == "ForeignRedemption.Committed"]
        assert burned == sum(e.home_amount for e in committed)
        assert self.shop_total() == sum(e.credit for e in committed)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.conserved()
    w.vienna.app.close()
    w.sn.app.close()


def test_a_sale_goes_through_the_port(world: World) -> None:
    out = world.sell(world.voucher(3))
    assert (out["credited"], out["home_amount"], out["home_currency"]) == (150, 3, "Wienertoken")
    assert world.partner.calls == ["reserve", "commit"]
    assert world.holder() == (7, 0)
    assert world.shop_total() == 150


def test_the_hold_lapses_while_the_home_is_unreachable_and_the_credit_is_reversed(world: World) -> None:
    world.partner.faults = ["", "down"]  # the reserve goes through, the commit finds Vienna gone
    with pytest.raises(PartnerUnreachable):
        world.sell(world.voucher(3))
    assert world.saga().state == "credited" and world.holder() == (10, 3)
    world.clock.move(HOLD - dt.timedelta(seconds=1))
    world.vienna.sweep()
    assert world.holder() == (10, 3)  # not yet
    world.clock.move(dt.timedelta(seconds=1))
    world.vienna.sweep()  # Vienna releases the lapsed hold on its own
    assert world.holder() == (10, 0)
    assert world.vienna.count("Redemption.Expired") == 1
    world.sn.sweep()  # Sint-Niklaas asks again: refused, so the shop's credit is reversed
    assert world.saga().state == "reversed"
    assert world.shop_total() == 0
    assert world.vienna.count("Wallet.HoldBurned") == 0


def test_a_commit_past_the_hold_is_refused_even_before_the_home_sweeps(world: World) -> None:
    world.partner.faults = ["", "down"]
    with pytest.raises(PartnerUnreachable):
        world.sell(world.voucher(4))
    world.clock.move(HOLD)
    world.sn.sweep()
    assert world.saga().state == "reversed"
    assert world.holder() == (10, 0)


def test_a_commit_retried_after_a_lost_reply_burns_once_and_is_never_reversed(world: World) -> None:
    # Vienna burns, its reply is lost; the retry is refused as a call (busy), which decides
    # nothing: an earlier attempt may have burned. The credit stays until Vienna answers.
    world.partner.faults = ["", "lose-reply", "refuse-call"]
    token = world.voucher(5)
    with pytest.raises(PartnerUnreachable):
        world.sell(token)
    assert world.holder() == (5, 0)  # burned at home
    with pytest.raises(PartnerUnreachable):
        world.sell(token)  # the shop retries the sale with its key
    assert world.saga().state == "credited"
    world.clock.move(HOLD * 3)  # long past the hold: the commit is on record anyway
    world.vienna.sweep()
    world.sn.sweep()
    assert world.saga().state == "committed"
    assert world.partner.calls == ["reserve", "commit", "commit", "commit"]
    assert world.vienna.count("Wallet.HoldBurned") == 1
    assert world.sn.count("Merchant.PaymentReversed") == 0
    assert world.shop_total() == 250
    assert world.sell(token)["credited"] == 250  # the shop's retry: the stored sale


def test_cancel_after_commit_is_refused_and_moves_nothing(world: World) -> None:
    world.sell(world.voucher(2))
    rid = world.saga().home_redemption_id
    assert rid is not None
    outcome = world.partner.cancel("late-cancel", rid, "changed my mind")
    assert not outcome.decision.accepted
    assert "committed" in outcome.decision.reason
    assert world.holder() == (8, 0)
    assert world.vienna.count("Redemption.Cancelled") == 0


def test_cancel_before_commit_releases_the_hold_and_the_commit_is_then_refused(world: World) -> None:
    world.partner.faults = ["", "down"]
    with pytest.raises(PartnerUnreachable):
        world.sell(world.voucher(2))
    rid = world.saga().home_redemption_id
    assert rid is not None
    assert world.partner.cancel("x", rid, "shop closed").decision.accepted
    assert world.holder() == (10, 0)
    world.sn.sweep()
    assert world.saga().state == "reversed"


def test_a_partner_refusal_refuses_the_sale_and_gives_the_allowance_back(world: World) -> None:
    # The holder has 10 tokens; two vouchers of 8 each are signed, only one can be held.
    first, second = world.voucher(8, "v1"), world.voucher(8, "v2")
    world.sell(first, "s1")
    with pytest.raises(PreconditionFailed, match="refused"):
        world.sell(second, "s2")
    assert world.holder() == (2, 0)
    # A refused call refuses the sale too; nothing was held for it.
    world.partner.faults = ["refuse-call"]
    with pytest.raises(PreconditionFailed, match="refused"):
        world.sell(world.voucher(1, "v3"), "s3")
    states = sorted(
        UnitOfWork(world.sn.app).get(e.originator_id, ForeignRedemption, "saga").state
        for _, e in read_events(world.sn.app)
        if event_type(e) == "ForeignRedemption.Started"
    )
    assert states == ["committed", "refused", "refused"]
    assert world.sn.count("DailyAllowance.Returned") == 2
    assert world.holder() == (2, 0)


def test_a_crash_between_reserve_and_commit_is_finished_after_the_restart(world: World) -> None:
    world.partner.faults = ["", "crash"]  # Sint-Niklaas dies as it is about to commit
    token = world.voucher(3)
    with pytest.raises(Crash):
        world.sell(token)
    world.sn.restart()
    world.wire()
    assert world.saga().state == "credited" and world.holder() == (10, 3)
    world.sn.sweep()
    assert world.saga().state == "committed"
    assert world.holder() == (7, 0)
    assert world.shop_total() == 150
    assert world.sell(token)["credited"] == 150  # the shop's retry of the sale


def test_a_crash_between_reserve_and_commit_past_the_hold_reverses(world: World) -> None:
    world.partner.faults = ["", "crash"]
    with pytest.raises(Crash):
        world.sell(world.voucher(3))
    world.clock.move(HOLD)
    world.sn.restart()
    world.vienna.restart()
    world.wire()
    world.vienna.sweep()
    world.sn.sweep()
    assert world.saga().state == "reversed"
    assert world.holder() == (10, 0)
    assert world.shop_total() == 0


def test_a_crash_after_the_home_reserved_but_before_the_saga_saved_lets_the_hold_lapse(world: World) -> None:
    # The reserve's reply is lost with the process: the saga never learnt of the hold.
    world.partner.faults = ["lose-reply"]
    with pytest.raises(PartnerUnreachable):
        world.sell(world.voucher(3))
    assert world.saga().state == "started" and world.holder() == (10, 3)
    world.sn.restart()
    world.wire()
    world.sn.sweep()  # without the token the saga cannot go on: refused
    assert world.saga().state == "refused"
    world.clock.move(HOLD)
    world.vienna.sweep()
    assert world.holder() == (10, 0)
    assert world.vienna.count("Redemption.Expired") == 1


def test_a_sale_answered_before_its_last_step_is_saved_is_finished_after_a_crash(world: World) -> None:
    # The shop is answered once Vienna committed; the saga's last step is only queued, and
    # the process dies before it is saved. Nothing the answer said is lost with it.
    queued: list[Any] = []
    world.sn.acceptor.submit = queued.append
    token = world.voucher(3)
    out = world.sell(token)
    assert (out["credited"], out["home_amount"]) == (150, 3)
    assert len(queued) == 1 and world.saga().state == "credited"
    assert world.holder() == (7, 0) and world.shop_total() == 150  # burned at home, credited here
    assert world.sell(token)["credited"] == 150  # the shop's retry: answered the same way
    assert world.partner.calls == ["reserve", "commit", "commit"]
    world.sn.restart()
    world.wire()
    world.clock.move(HOLD * 3)  # long past the hold: the commit is on record at home
    world.sn.sweep()
    assert world.saga().state == "committed"
    assert world.partner.calls == ["commit"]  # the sweep asked again, and Vienna still accepts
    assert world.vienna.count("Wallet.HoldBurned") == 1
    assert world.sn.count("Merchant.PaymentReversed") == 0
    assert world.shop_total() == 150
    assert world.sell(token)["credited"] == 150


def test_a_sale_answered_before_its_last_step_is_saved_commits_once_it_is(world: World) -> None:
    queued: list[Any] = []
    world.sn.acceptor.submit = queued.append
    out = world.sell(world.voucher(4))
    assert out["credited"] == 200 and world.saga().state == "credited"
    (step,) = queued
    world.sn.app.execute(step)  # the node's writer saves it with its next batch
    assert world.saga().state == "committed"
    world.sn.app.execute(step)  # saved twice (the sweep got there first): changes nothing
    assert world.sn.count("ForeignRedemption.Committed") == 1
    world.sn.sweep()
    assert world.partner.calls == ["reserve", "commit"]  # nothing left to ask


def test_a_sale_goes_on_from_the_saga_its_start_saved_and_a_retry_reads_it_back(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    given: list[ForeignRedemption | None] = []
    advance = Acceptor._advance

    def recorded(self: Acceptor, *args: Any) -> Any:
        given.append(args[3] if len(args) > 3 else None)
        return advance(self, *args)

    monkeypatch.setattr(Acceptor, "_advance", recorded)
    token = world.voucher(3)
    assert world.sell(token)["credited"] == 150
    first = given[0]
    assert first is not None and first.id == world.saga().id
    # The retry's start is its stored result: the saga is read as stored, already committed.
    assert world.sell(token)["credited"] == 150
    assert given[1] is None
    assert world.partner.calls == ["reserve", "commit"]
