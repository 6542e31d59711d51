"""Three city applications on SQLite, joined through the Partner port by a faulty network.

Every step is one random act of a resident, a shop, a node or the world: earning,
spending, local vouchers, cross-city sales and their retries, sweeps, a crash between two
saves (the node restarts from its store), held requests delivered late and out of order,
the clock moved past a hold's expiry. A sale is answered before its saga's last step is
saved, as on a node: the step waits in its node's queue until a step saves it, and a
crash loses it. After every step the books of every city are
checked (services/simulation/checks.py); every `heal_every` steps, and at the end, the
network heals, every hold must be resolved, and every pair of partner cities clears what is
open between them (cleared + open = the redemptions between them, on both sides).

All randomness comes from one seeded generator and time from the simulation's clock, so a
seed replays exactly: the trace digest of two runs of one seed is the same.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aggregates.clearing import Figures, Line, period_end
from aggregates.errors import DomainError
from aggregates.payout import period_end as last_day
from services import commands as cmds
from services.city import CityApplication
from services.clock import utcnow
from services.federation.acceptor import Acceptor
from services.federation.clearing import Answer, Clearing, ClearingPartner
from services.federation.home import HomeRedemptions
from services.federation.ledger import RedemptionLedger
from services.federation.local_partner import LocalPartner
from services.federation.partner import Partner, PartnerUnreachable
from services.federation.sweep import sweep
from services.settings.cities import load_city, load_settings
from services.simulation.checks import Books, SimulationFailure
from services.simulation.network import Crash, Network
from services.unit_of_work import Job

T0 = dt.datetime(2030, 3, 4, 8, 0, tzinfo=dt.UTC)
HOLD = dt.timedelta(seconds=120)
VOUCHER_TTL = dt.timedelta(minutes=15)
# Who takes whose tokens (as the packaged city files agree).
ACCEPTS = {"vienna": ["rome"], "rome": ["vienna"], "sint_niklaas": ["vienna", "rome"]}
CITIES = list(ACCEPTS)
RESIDENTS = 6
SHOPS = 2
# Shop payouts: the shops' account, and the first week paid out: each run pays the next week,
# and there are enough weeks before T0 for a run every step of the longest simulation.
PAYEE = "BE71096123456769"
PAYOUT_WEEKS = dt.date(1970, 1, 5)


class SimClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def move(self, delta: dt.timedelta) -> None:
        self.now += delta


class SimApp(CityApplication):
    """A city application that can be told to die before one of its next saves."""

    crash_in: int | None = None

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        if self.crash_in is not None:
            if self.crash_in <= 0:
                self.crash_in = None
                raise Crash(self.key)
            self.crash_in -= 1
        return super().save(*objs, **kwargs)


class SimNode:
    """One city's node: its application on its own SQLite file, both sides of redemption."""

    def __init__(
        self,
        key: str,
        folder: Path,
        clock: SimClock,
        signing_key: Ed25519PrivateKey,
        keys: dict[str, Ed25519PublicKey],
        network: Network,
        clearing_port: Callable[[str, str], ClearingPartner],
    ) -> None:
        self.key, self.folder, self.clock = key, folder, clock
        self.signing_key, self.keys, self.network = signing_key, keys, network
        self.clearing_port = clearing_port
        # The ledger is a read model of the store with its position, as a projection kept on
        # disk would be: a restart reads on from where it was instead of from the start.
        self.ledger = RedemptionLedger()
        self.open()

    def open(self) -> None:
        settings = load_settings({"CIVFED_DATA_DIR": str(self.folder)})
        self.app = SimApp(load_city(self.key), settings.eventsourcing_env(self.key), clock=self.clock)
        self.home = HomeRedemptions(self.app, self.signing_key, VOUCHER_TTL, HOLD, self.clock)
        homes = ACCEPTS[self.key]
        partners: dict[str, Partner] = {h: self.network.partner(self.key, h) for h in homes}
        keys = {h: self.keys[h] for h in homes}
        # Steps queued as a node's writer queues them, saved by `save_queued`, lost in a crash.
        self.queued: list[Job] = []
        self.acceptor = Acceptor(self.app, partners, keys, self.app.execute, self.clock, self.queued.append)
        self.served: dict[str, LocalPartner] = {}
        # Clearing with every city it has an agreement with, either way round.
        others = {c: self.keys[c] for c in CITIES if c in homes or self.key in ACCEPTS[c]}
        clearing_partners = {c: self.clearing_port(self.key, c) for c in others}
        self.clearing = Clearing(
            self.app, self.signing_key, others, clearing_partners, self.app.execute, self.clock
        )

    def serving(self, caller: str) -> LocalPartner:
        """This node as home city, as partner `caller` reaches it."""
        if caller not in self.served:
            self.served[caller] = LocalPartner(self.home, self.app.execute, caller)
        return self.served[caller]

    def restart(self) -> None:
        """A fresh process on the same store: only what was saved survives."""
        self.app.crash_in = None
        self.app.close()
        self.open()

    def sweep(self) -> None:
        sweep(self.home, self.acceptor, self.ledger, self.app.execute)

    def save_queued(self) -> int:
        """Save what the acceptor queued, as the node's writer would with its next batch."""
        saved = 0
        while self.queued:
            self.app.execute(self.queued.pop(0))
            saved += 1
        return saved


@dataclass
class Sale:
    """A cross-city sale a shop has begun: it keeps the token and its key to retry."""

    n: int
    home: str
    acceptor: str
    shop: int
    token: str
    key: str
    amount: int


@dataclass
class Result:
    seed: int
    steps: int
    digest: str
    counts: dict[str, int] = field(default_factory=dict)
    trace: list[str] = field(default_factory=list)


class Simulation:
    def __init__(self, seed: int, folder: Path, fault_rate: float = 0.3, heal_every: int = 250) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.clock = SimClock()
        self.heal_every = heal_every
        self.trace: list[str] = []
        self.step_no = 0
        self.counts: dict[str, int] = {}
        self.network = Network(self.rng, self._serving, fault_rate, self._note)
        signing = {c: Ed25519PrivateKey.generate() for c in CITIES}
        public = {c: k.public_key() for c, k in signing.items()}
        self.nodes = {
            c: SimNode(c, folder / c, self.clock, signing[c], public, self.network, self._clearing_port)
            for c in CITIES
        }
        self.cleared_months = 0
        self.books = {c: Books(c) for c in CITIES}
        self.wallets: dict[str, list[UUID]] = {}
        self.shops: dict[str, list[UUID]] = {}
        self.open_sales: list[Sale] = []
        self.done_sales: list[Sale] = []
        self.local_vouchers: list[tuple[str, UUID]] = []
        self.sales = 0
        self.payout_runs = 0
        self._populate()

    # -- plumbing ---------------------------------------------------------------
    def _serving(self, city: str, caller: str) -> Partner:
        return self.nodes[city].serving(caller)

    def _clearing_port(self, caller: str, city: str) -> ClearingPartner:
        return DirectClearing(self, caller, city)

    def _note(self, line: str) -> None:
        self.trace.append(f"{self.step_no} {line}")

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def _populate(self) -> None:
        for city in CITIES:
            self.wallets[city], self.shops[city] = [], []
            for _ in range(RESIDENTS):
                self._newcomer(city)
            for _ in range(SHOPS):
                self._new_shop(city)

    def _newcomer(self, city: str) -> None:
        """A resident joins; the last RESIDENTS to join are the ones who act. (Everyone's
        balance still counts: the same people acting for ever would only make their event
        streams, and each read of them, longer.)"""
        app = self.nodes[city].app
        consent = app.city.config.consent_versions[-1]
        key = f"sim:w{len(self.wallets[city])}"
        self.wallets[city].append(UUID(app.execute(app.open_wallet(key, "resident", consent))["wallet_id"]))

    def _new_shop(self, city: str) -> None:
        app = self.nodes[city].app
        n = len(self.shops[city])
        shop = app.execute(app.register_merchant(f"sim:s{n}", f"Shop {n}", "food", True))
        self.shops[city].append(UUID(shop["merchant_id"]))
        if app.city.config.payouts is not None and app.city.config.payouts.none is None:
            # A company account, so its payouts go into the file.
            shop_id = UUID(shop["merchant_id"])
            app.execute(cmds.SetBankAccount(f"sim:s{n}:bank", shop_id, PAYEE, "", "Shop", False, "sim"))

    def _shop(self, city: str) -> tuple[int, UUID]:
        n = len(self.shops[city]) - SHOPS + self.rng.randrange(SHOPS)
        return n, self.shops[city][n]

    # -- the run ------------------------------------------------------------------
    def run(self, steps: int, on_step: Callable[[int], None] | None = None) -> Result:
        try:
            for n in range(1, steps + 1):
                self.step_no = n
                self.step()
                if n % self.heal_every == 0 or n == steps:
                    self.heal()
                if on_step is not None:
                    on_step(n)
        except SimulationFailure as failure:
            failure.seed, failure.step = self.seed, self.step_no
            failure.trace = self.trace[-40:]
            raise
        finally:
            for node in self.nodes.values():
                node.app.close()
        self._note("end " + " ".join(self.books[c].summary() for c in CITIES))
        digest = hashlib.sha256("\n".join(self.trace).encode()).hexdigest()
        return Result(self.seed, steps, digest, dict(sorted(self.counts.items())), self.trace)

    ACTIONS: tuple[tuple[str, int], ...] = (
        ("earn", 18),
        ("spend", 8),
        ("local_voucher", 4),
        ("sell", 22),
        ("retry_sale", 8),
        ("present_again", 3),
        ("sweep", 8),
        ("deliver_held", 5),
        ("crash", 4),
        ("save_queued", 6),
        ("tick", 10),
        ("lapse", 2),
        ("payout", 2),
    )

    def step(self) -> None:
        names = [a for a, _ in self.ACTIONS]
        weights = [w for _, w in self.ACTIONS]
        action = self.rng.choices(names, weights)[0]
        self._count(action)
        try:
            outcome = getattr(self, f"do_{action}")()
        except Crash as crash:
            outcome = f"crash {crash.city}"
            self.network.crashed.append(crash.city)
        self._note(f"{action} {outcome}")
        for city in dict.fromkeys(self.network.crashed):
            self._count("restart")
            self.nodes[city].restart()
        self.network.crashed.clear()
        self.check()

    def check(self) -> None:
        for city in CITIES:
            self.books[city].read(self.nodes[city].app)
        for city in CITIES:
            self.books[city].check_against(self.books)

    # -- acts -----------------------------------------------------------------------
    def _resident(self, city: str) -> tuple[int, UUID]:
        i = len(self.wallets[city]) - RESIDENTS + self.rng.randrange(RESIDENTS)
        return i, self.wallets[city][i]

    def do_earn(self) -> str:
        city = self.rng.choice(CITIES)
        i, wallet = self._resident(city)
        app = self.nodes[city].app
        day = (self.clock().date() - dt.timedelta(days=1)).isoformat()
        if city == "vienna":
            km = self.rng.randint(100, 1000)
            activity, fields = "trip", {"mode": "bike", "distance_m": str(km * 1000), "date": day}
        elif city == "rome":
            action = self.rng.choice(
                ["recycling_drop_off", "public_transport_ride", "bike_share_trip", "water_refill"]
            )
            activity, fields = "eco_action", {"action": action, "date": day}
        else:
            activity, fields = "event_attendance", {"subject": f"event-{self.step_no}", "date": day}
        try:
            out = app.execute(app.record_activity(f"sim:earn:{self.step_no}", wallet, activity, fields))
        except DomainError as exc:
            return f"{city} w{i} {type(exc).__name__}"
        return f"{city} w{i} +{out['amount']}"

    def do_spend(self) -> str:
        city = self.rng.choice(CITIES)
        i, wallet = self._resident(city)
        app = self.nodes[city].app
        amount = self.rng.randint(1, max(1, app.wallet(wallet).available // 2 + 2))
        _, shop = self._shop(city)
        try:
            app.execute(app.spend(f"sim:spend:{self.step_no}", wallet, shop, amount, f"r{self.step_no}"))
        except DomainError as exc:
            return f"{city} w{i} {amount} {type(exc).__name__}"
        return f"{city} w{i} {amount}"

    def do_local_voucher(self) -> str:
        city = self.rng.choice(CITIES)
        app = self.nodes[city].app
        if self.local_vouchers and self.rng.random() < 0.3:
            # A voucher already out, presented (perhaps again) at a shop of its city.
            vcity, voucher = self.rng.choice(self.local_vouchers)
            vapp = self.nodes[vcity].app
            _, shop = self._shop(vcity)
            try:
                vapp.execute(vapp.redeem_voucher(f"sim:redeem:{self.step_no}", voucher, shop))
            except DomainError as exc:
                return f"{vcity} redeem {type(exc).__name__}"
            return f"{vcity} redeem ok"
        i, wallet = self._resident(city)
        amount = self.rng.randint(1, 5)
        try:
            out = app.execute(app.issue_voucher(f"sim:lv:{self.step_no}", wallet, amount))
        except DomainError as exc:
            return f"{city} w{i} issue {amount} {type(exc).__name__}"
        voucher = UUID(out["voucher_id"])
        self.local_vouchers.append((city, voucher))
        del self.local_vouchers[:-50]
        _, shop = self._shop(city)
        app.execute(app.redeem_voucher(f"sim:redeem:{self.step_no}", voucher, shop))
        return f"{city} w{i} voucher {amount} redeemed"

    def do_sell(self) -> str:
        acceptor = self.rng.choice(CITIES)
        home = self.rng.choice(ACCEPTS[acceptor])
        i, wallet = self._resident(home)
        home_node = self.nodes[home]
        available = home_node.app.wallet(wallet).available
        amount = self.rng.randint(1, max(1, min(available + 2, 40)))
        try:
            token = home_node.app.execute(home_node.home.issue(f"sim:issue:{self.step_no}", wallet, amount))[
                "token"
            ]
        except DomainError as exc:
            return f"{home}->{acceptor} w{i} {amount} issue {type(exc).__name__}"
        self.sales += 1
        sale = Sale(
            self.sales, home, acceptor, self.rng.randrange(SHOPS), token, f"sim:sale:{self.sales}", amount
        )
        return f"{home}->{acceptor} w{i} {amount} sale{sale.n} " + self._attempt(sale)

    def _attempt(self, sale: Sale) -> str:
        node = self.nodes[sale.acceptor]
        shop = self.shops[sale.acceptor][sale.shop]
        try:
            out = node.acceptor.accept(sale.key, shop, sale.token)
        except PartnerUnreachable:
            if sale not in self.open_sales:
                self.open_sales.append(sale)
            return "pending"
        except DomainError as exc:
            self._close(sale)
            return type(exc).__name__
        except Crash:
            if sale not in self.open_sales:
                self.open_sales.append(sale)
            raise
        self._close(sale)
        return f"credited {out['credited']}"

    def _close(self, sale: Sale) -> None:
        if sale in self.open_sales:
            self.open_sales.remove(sale)
        self.done_sales.append(sale)
        del self.done_sales[:-50]

    def do_retry_sale(self) -> str:
        if not self.open_sales:
            return "none"
        sale = self.rng.choice(self.open_sales)
        return f"sale{sale.n} " + self._attempt(sale)

    def do_present_again(self) -> str:
        """A voucher already presented, shown at a shop once more (a replay): never paid twice."""
        if not self.done_sales:
            return "none"
        old = self.rng.choice(self.done_sales)
        acceptor = self.rng.choice([c for c in CITIES if old.home in ACCEPTS[c]])
        self.sales += 1
        shop, _ = self._shop(acceptor)
        sale = Sale(self.sales, old.home, acceptor, shop, old.token, f"sim:sale:{self.sales}", old.amount)
        return f"sale{old.n} again as sale{sale.n} at {sale.acceptor} " + self._attempt(sale)

    def do_sweep(self) -> str:
        city = self.rng.choice(CITIES)
        self.nodes[city].sweep()
        return city

    def do_deliver_held(self) -> str:
        return f"{self.network.deliver_held()} delivered"

    def do_crash(self) -> str:
        city = self.rng.choice(CITIES)
        saves = self.rng.randint(0, 3)
        self.nodes[city].app.crash_in = saves
        return f"{city} after {saves} saves"

    def do_save_queued(self) -> str:
        city = self.rng.choice(CITIES)
        return f"{city} {self.nodes[city].save_queued()}"

    def do_tick(self) -> str:
        seconds = self.rng.randint(1, 240)
        self.clock.move(dt.timedelta(seconds=seconds))
        return f"+{seconds}s"

    def do_payout(self) -> str:
        """A payout run in Sint-Niklaas, four eyes: proposed, then run by someone else. A run
        a crash cut short is tried again for the same period, and pays nobody twice."""
        app = self.nodes["sint_niklaas"].app
        # Weeks long past: a run pays what shops collected up to it, whatever its period.
        week = (PAYOUT_WEEKS + dt.timedelta(weeks=self.payout_runs)).isocalendar()
        period = f"{week.year}-W{week.week:02d}"
        if last_day(period, "weekly") >= self.clock().date():
            return f"{period} not over yet: nothing to run"
        app.execute(cmds.ProposePayoutRun(f"sim:propose:{period}", period, "staff:sim-a"))
        out = app.execute(cmds.RunPayouts(f"sim:run:{period}:{self.step_no}", period, "staff:sim-b"))
        self.payout_runs += 1
        return f"{period} {out['tokens']} tokens {out['cents']} cents"

    def do_lapse(self) -> str:
        """Past every hold's expiry: a commit from now on finds its hold lapsed."""
        self.clock.move(HOLD + dt.timedelta(seconds=1))
        return "past the holds"

    # -- healing ----------------------------------------------------------------------
    def heal(self) -> None:
        """The network heals, held requests arrive, time passes every hold; then every hold and
        every saga must be resolved, in every city."""
        self.network.faulty = False
        for node in self.nodes.values():
            node.app.crash_in = None
        delivered = self.network.deliver_held(everything=True)
        self.clock.move(HOLD + dt.timedelta(seconds=1))
        for _ in range(2):
            for city in CITIES:
                self.nodes[city].sweep()
        self.check()
        self._check_resolved()
        self._clear()
        self.open_sales.clear()
        self.network.faulty = True
        for city in CITIES:
            self._newcomer(city)
            self._new_shop(city)
        self._count("heal")
        self._note(f"heal {delivered} delivered")

    def _clear(self) -> None:
        """Every pair of partners clears one more month, from the month after the wall clock's
        (the store dates events by the wall clock, the nodes' commands by the simulation's,
        which runs years ahead): each clearing takes everything not cleared yet. Then for each
        pair, on both sides, what was cleared plus what is open is every redemption between
        them, as the redemption ledger counts them."""
        now = utcnow()
        year, month = divmod(now.year * 12 + now.month + self.cleared_months, 12)
        period = f"{year}-{month + 1:02d}"
        if period_end(period) <= self.clock():
            self.cleared_months += 1
            pairs = sorted({tuple(sorted((a, b))) for a in CITIES for b in ACCEPTS[a]})
            for a, b in pairs:
                # Each side runs it in turn.
                proposer, partner = (a, b) if self.cleared_months % 2 else (b, a)
                statement = self.nodes[proposer].clearing.run(partner, period)
                self._note(f"clear {a}-{b} {statement.owed_by_a}/{statement.owed_by_b}")
        for city in CITIES:
            node = self.nodes[city]
            ledger = node.ledger.refresh(node.app)
            statements = node.clearing.statements()
            for partner, (ours, theirs, _) in node.clearing.open_positions().items():
                mine = [s for s in statements if {s.city_a, s.city_b} == {city, partner}]
                cleared_ours = sum(s.figures.owed_by(city) for s in mine)
                cleared_theirs = sum(s.figures.owed_by(partner) for s in mine)
                position = ledger.positions.get(partner)
                payable, receivable = (position.payable, position.receivable) if position else (0, 0)
                if (cleared_ours + ours, cleared_theirs + theirs) != (payable, receivable):
                    raise SimulationFailure(
                        f"{city} with {partner}: cleared + open = {cleared_ours} + {ours} owed and "
                        f"{cleared_theirs} + {theirs} owed to it, but the redemptions between them are "
                        f"{payable} and {receivable}"
                    )

    def _check_resolved(self) -> None:
        for city in CITIES:
            books = self.books[city]
            if books.reserved:
                raise SimulationFailure(
                    f"{city}: redemptions {sorted(books.reserved)} still reserved after healing"
                )
            unfinished = {s: books.sagas[s]["state"] for s in books.unfinished}
            if unfinished:
                raise SimulationFailure(f"{city}: sagas {unfinished} unfinished after healing")
            if books.redemption_holds:
                raise SimulationFailure(
                    f"{city}: holds {sorted(books.redemption_holds)} remain after healing"
                )


def scratch_dir() -> str | None:
    """Where the stores go: a memory-backed folder if the host has one (every save is still
    an SQLite transaction, only without waiting on a disk), else the usual temporary one."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def simulate(
    seed: int,
    steps: int,
    folder: Path | None = None,
    on_step: Callable[[int], None] | None = None,
    fault_rate: float = 0.3,
) -> Result:
    """Run the simulation in `folder` (a fresh temporary one if None)."""
    if folder is not None:
        return Simulation(seed, folder, fault_rate).run(steps, on_step)
    with tempfile.TemporaryDirectory(prefix="civfed-sim-", dir=scratch_dir()) as tmp:
        return Simulation(seed, Path(tmp), fault_rate).run(steps, on_step)


class DirectClearing:
    """The clearing port of `caller` to `city`'s node, called directly: the simulation
    clears once the network has healed."""

    def __init__(self, sim: Simulation, caller: str, city: str) -> None:
        self.sim, self.caller, self.city = sim, caller, city

    def propose(self, figures: Figures, signature: bytes, lines: Sequence[Line]) -> Answer:
        return self.sim.nodes[self.city].clearing.receive(self.caller, figures, signature, lines)
