"""What must hold in every city after every step of the simulation.

Read from each city's own events as they are recorded (only the new ones each step):

- conservation: issued − spent − burned − lapsed = balances + holds (the city's own
  accounting, services/city_totals.py), and no wallet below zero available;
- shops: local payments equal what wallets spent; redemption credits, less reversals,
  equal the credit of the sagas still credited or committed;
- no voucher paid twice: one credit per saga, one committed saga per voucher across all
  cities, one burn per home redemption, one redemption per local voucher;
- no shop credited without a matching burn or a reversal: a committed saga's redemption
  was burned at its home, a reversed one never is;
- shops' money: tokens received − paid out (payout runs) = what the shops still have to be
  paid out, each read from its own aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from services.city import CityApplication
from services.city_totals import CityTotals
from services.event_log import event_type, read_events
from services.funds import FundBooks

LOCAL_KINDS = ("payment", "prize", "voucher")


class SimulationFailure(AssertionError):
    """A broken invariant; the simulation fills in the seed and the step."""

    seed: int = 0
    step: int = 0
    trace: list[str] = []  # noqa: RUF012 - replaced per failure

    def report(self) -> str:
        return f"seed {self.seed}, step {self.step}: {self.args[0]}"


@dataclass
class Books:
    city: str
    position: int = 0
    totals: CityTotals = field(init=False)
    local_paid: int = 0
    redemption_credit: int = 0  # paid for redemptions, less reversals
    saga_credit: int = 0  # the credit of sagas credited or committed, from the sagas' events
    unfinished: set[UUID] = field(default_factory=set)  # sagas started, reserved or credited
    sagas: dict[UUID, dict[str, Any]] = field(default_factory=dict)  # saga id -> what is known
    reserved: set[UUID] = field(default_factory=set)  # home side: redemptions reserved now
    redemption_holds: set[str] = field(default_factory=set)  # holds placed for redemptions, open
    burned: dict[UUID, int] = field(default_factory=dict)  # home redemption id -> amount committed
    burns: set[UUID] = field(default_factory=set)  # home redemption ids whose hold was burned
    reversed_rids: set[UUID] = field(default_factory=set)  # home redemption ids reversed here
    committed_vouchers: set[tuple[str, UUID]] = field(default_factory=set)
    redeemed_vouchers: set[UUID] = field(default_factory=set)
    wallets: dict[UUID, tuple[int, int]] = field(default_factory=dict)  # balance, held
    balances: int = 0  # the sum of the wallets' balances as last read
    holds: int = 0
    new_commits: list[tuple[str, UUID, int]] = field(default_factory=list)
    new_reversals: list[tuple[str, UUID]] = field(default_factory=list)
    new_burns: list[UUID] = field(default_factory=list)
    # Shop payouts: received net of reversals, paid out, and each shop's balance as last read.
    shop_received: int = 0
    shop_paid_out: int = 0
    shops: dict[UUID, int] = field(default_factory=dict)
    # Funds and budgets: each fund's figures from its events and the wallets' (services/funds.py).
    funds: FundBooks = field(default_factory=FundBooks)

    def __post_init__(self) -> None:
        self.totals = CityTotals(self.city)

    def fail(self, message: str) -> None:
        raise SimulationFailure(f"{self.city}: {message}")

    def read(self, app: CityApplication) -> None:
        """Take in the city's new events, then check its own books."""
        touched: set[UUID] = set()
        for notification_id, e in read_events(app, after=self.position):
            self.position = notification_id
            kind = event_type(e)
            self.apply(kind, e)
            if kind == "Wallet.Opened":
                self.wallets[e.originator_id] = (0, 0)
            elif kind == "Merchant.Registered":
                self.shops[e.originator_id] = 0
            touched.add(e.originator_id)
        # Each wallet as its aggregate now stands, read again whenever an event of its own
        # was recorded (after a restart too: the stored events are all there is).
        for w in touched:
            if w in self.wallets:
                wallet = app.wallet(w)
                before = self.wallets[w]
                self.wallets[w] = (wallet.balance, wallet.held)
                self.balances += wallet.balance - before[0]
                self.holds += wallet.held - before[1]
                if wallet.available < 0:
                    self.fail(f"wallet {w} has {wallet.available} available")
        for m in touched & self.shops.keys():
            self.shops[m] = app.repository.get(m).to_pay_out
        if self.shop_received - self.shop_paid_out != sum(self.shops.values()):
            self.fail(
                f"shops received {self.shop_received}, were paid out {self.shop_paid_out}; "
                f"their balances are {sum(self.shops.values())}"
            )
        balances, held = self.balances, self.holds
        if self.totals.outstanding != balances or self.totals.held != held:
            self.fail(
                f"issued − spent − burned − lapsed = {self.totals.outstanding}, held {self.totals.held};"
                f" balances {balances}, holds {held}"
            )
        if self.local_paid != self.totals.spent:
            self.fail(f"shops were paid {self.local_paid} locally, wallets spent {self.totals.spent}")
        credited = self.saga_credit
        if self.redemption_credit != credited:
            self.fail(f"shops hold {self.redemption_credit} for redemptions, sagas credited {credited}")
        for problem in self.funds.problems(app):
            self.fail(problem)

    def apply(self, kind: str, e: Any) -> None:
        self.totals.apply(kind, e)
        self.funds.apply(kind, e)
        sid = e.originator_id
        if kind == "Merchant.Paid":
            self.shop_received += e.amount
            if e.kind in LOCAL_KINDS:
                self.local_paid += e.amount
            else:
                self.redemption_credit += e.amount
        elif kind == "Merchant.PaymentReversed":
            self.shop_received -= e.amount
            self.redemption_credit -= e.amount
        elif kind == "Merchant.PaidOut":
            self.shop_paid_out += e.amount
        elif kind == "Voucher.Redeemed":
            if sid in self.redeemed_vouchers:
                self.fail(f"local voucher {sid} redeemed twice")
            self.redeemed_vouchers.add(sid)
        elif kind == "ForeignRedemption.Started":
            self.sagas[sid] = {
                "home": e.home,
                "voucher": e.voucher_id,
                "credit": e.credit,
                "state": "started",
            }
        elif kind == "ForeignRedemption.Reserved":
            self.sagas[sid].update(state="reserved", rid=e.home_redemption_id)
        elif kind == "ForeignRedemption.MerchantCredited":
            if self.sagas[sid]["state"] != "reserved":
                self.fail(f"saga {sid} credited from {self.sagas[sid]['state']}")
            self.sagas[sid]["state"] = "credited"
            self.saga_credit += self.sagas[sid]["credit"]
        elif kind == "ForeignRedemption.Committed":
            saga = self.sagas[sid]
            saga["state"] = "committed"
            self.unfinished.discard(sid)
            voucher = (saga["home"], saga["voucher"])
            if voucher in self.committed_vouchers:
                self.fail(f"voucher {voucher} paid twice")
            self.committed_vouchers.add(voucher)
            self.new_commits.append((saga["home"], saga["rid"], e.home_amount))
        elif kind == "ForeignRedemption.CreditReversed":
            saga = self.sagas[sid]
            saga["state"] = "reversed"
            self.saga_credit -= saga["credit"]
            self.unfinished.discard(sid)
            self.reversed_rids.add(saga["rid"])
            self.new_reversals.append((saga["home"], saga["rid"]))
        elif kind == "ForeignRedemption.Refused":
            self.sagas[sid]["state"] = "refused"
            self.unfinished.discard(sid)
        elif kind == "Redemption.Reserved":
            self.reserved.add(sid)
        elif kind in ("Redemption.Cancelled", "Redemption.Expired"):
            self.reserved.discard(sid)
        elif kind == "Wallet.HoldPlaced" and e.purpose.startswith("redemption"):
            self.redemption_holds.add(e.hold_id)
        elif kind == "Wallet.HoldReleased":
            self.redemption_holds.discard(e.hold_id)
        elif kind == "Wallet.HoldBurned":
            rid = e.redemption_id
            if rid in self.burns:
                self.fail(f"redemption {rid} burned twice")
            self.burns.add(rid)
            self.new_burns.append(rid)
            self.redemption_holds.discard(e.hold_id)
        elif kind == "Redemption.Committed":
            self.burned[sid] = e.amount
            self.reserved.discard(sid)

    def check_against(self, books: dict[str, Books]) -> None:
        """Across cities: every commit here burned at its home; nothing reversed here burned."""
        for home, rid, amount in self.new_commits:
            if books[home].burned.get(rid) != amount:
                self.fail(f"shop credited for {home} redemption {rid}, which {home} did not burn ({amount})")
        for home, rid in self.new_reversals:
            if rid in books[home].burned:
                self.fail(f"credit reversed for {home} redemption {rid}, which {home} burned")
        self.new_commits.clear()
        self.new_reversals.clear()
        for rid in self.new_burns:
            if rid not in self.burned:
                self.fail(f"hold of redemption {rid} burned, the redemption not committed")
            for other in books.values():
                if rid in other.reversed_rids:
                    self.fail(f"burned redemption {rid}, whose credit {other.city} reversed")
        self.new_burns.clear()

    def summary(self) -> str:
        t = self.totals
        return f"{self.city}:issued={t.issued},spent={t.spent},burned={t.burned},held={t.held}"
