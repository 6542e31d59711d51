"""A deterministic season of activity for the embedded federation.

Every command has a fixed idempotency key and the scenario runs on its own
clock, so running it again on the same data directory replays the receipts and
changes no figure.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from uuid import UUID

from aggregates.errors import FundExhausted
from civfed.v1 import cashback_pb2, prizes_pb2
from services import commands as c
from services.city import CityApplication
from services.demo.city_node import Call, DemoNode, Metadata, NodeScenario, answered
from services.demo.clock import START, ScenarioClock
from services.demo.groups import Step, ids, open_residents, run_group
from services.demo.mobility import SOURCE_ID, MobilityProvider
from services.demo.workflow import zwolle
from services.unit_of_work import Job

WEEKS = 4


def vienna(app: CityApplication, clock: ScenarioClock, step: Step, people: int) -> None:
    rnd = random.Random(1)
    wallets = open_residents(app, people, step)
    shops = [
        ("Wiener Linien ticket office", "transport"),
        ("Bio-Markt Naschmarkt", "food"),
        ("Stadtbibliothek cafe", "culture"),
    ]
    merchants = ids(
        [app.execute(app.register_merchant(f"demo:m{i}", n, c, True)) for i, (n, c) in enumerate(shops)],
        "merchant_id",
    )
    modes = ["bike"] * 4 + ["walk"] * 2 + ["tram", "subway", "bus", "train", "escooter", "car"]
    appeals: list[UUID] = []
    # Trips come from the mobility provider, a registered source that signs each one.
    provider = MobilityProvider()
    registry = app.source_registry()
    if SOURCE_ID not in registry.sources:  # the federation demo's nodes may have registered it
        app.execute(provider.registration("demo:mobility-provider"))
        registry = app.source_registry()
    for day in range(WEEKS * 7):
        date = clock.day(day)
        cmds: list[Job] = []
        for w, wallet in enumerate(wallets):
            for t in range(rnd.choice((0, 0, 1, 1, 2))):
                fields = {"mode": rnd.choice(modes), "distance_m": rnd.randint(800, 25_000)}
                claim = provider.trip(f"trip-{w}-{day}-{t}", wallet, fields, date)
                cmds.append(app.job(app.verify_claim_with(registry, claim)))
        run_group(app, cmds, step)
        appeals = vienna_appeals(app, wallets, day, appeals, step)
        if day % 7 == 6:  # Sunday: some residents claim a reward by QR code
            issued = run_group(
                app,
                [
                    app.issue_voucher(f"demo:v{w}:{day}", wallet, 1)
                    for w, wallet in enumerate(wallets)
                    if rnd.random() < 0.4
                ],
                step,
            )
            vouchers = ids(issued, "voucher_id")
            run_group(
                app, [app.redeem_voucher(f"demo:r{v}", v, rnd.choice(merchants)) for v in vouchers[::2]], step
            )


def vienna_appeals(
    app: CityApplication, wallets: list[UUID], day: int, appeals: list[UUID], step: Step
) -> list[UUID]:
    """One resident in 25 appeals a trip the app missed; staff decide within 1 to 9 days."""
    if day == 6:
        cmds = [
            app.file_appeal(
                f"demo:appeal{w}", wallet, "missing_award", f"trip on day {day}", "not counted", "holder"
            )
            for w, wallet in enumerate(wallets)
            if w % 25 == 0
        ]
        return ids(run_group(app, cmds, step), "appeal_id")
    trip = {"mode": "bike", "distance_m": 6000, "date": (START + dt.timedelta(days=6)).date().isoformat()}
    due = [(i, a) for i, a in enumerate(appeals) if day == 7 + i % 9]
    decisions = [
        app.decide_appeal(
            f"demo:decide{a}",
            a,
            i % 3 != 0,
            "trip confirmed in the app's log" if i % 3 else "no trip recorded that day",
            "mobility office, appeals desk",
            {"activity": "trip", "fields": trip} if i % 3 else None,
        )
        for i, a in due
    ]
    run_group(app, decisions, step)
    return appeals


def rome(node: DemoNode, clock: ScenarioClock, step: Step, people: int) -> None:
    """Residents' eco-actions recorded at the desk, with partner prizes over the node's
    contracts: partners offer prizes with their till credential, residents claim them with
    their holder credential, and the partner's till confirms each hand-over."""
    app = node.app
    rnd = random.Random(2)
    consent = app.city.config.consent_versions[-1]
    clock.day(0)
    residents = node.open_wallets([f"demo:res{i}" for i in range(people // 3)], "resident", consent, step)
    businesses = ids(
        node.in_process(
            [app.open_wallet(f"demo:biz{i}", "business", consent) for i in range(people // 20)], step
        ),
        "wallet_id",
    )
    categories = [rnd.choice(["food", "culture", "mobility"]) for _ in range(20)]
    partners = node.register_merchants(
        [(f"demo:partner{i}", f"Partner {i}", c, True, False) for i, c in enumerate(categories)], step
    )
    tills = node.tills(partners, "prize desk", step)
    prizes = node.calls(
        [
            Call(
                node.stubs.prizes.OfferPrize,
                prizes_pb2.OfferPrizeRequest(
                    idempotency_key=f"demo:prize{i}",
                    name=f"Prize {i}",
                    cost=rnd.randint(20, 60),
                    stock=rnd.randint(3, 12),
                ),
                till,
            )
            for i, till in enumerate(tills)
        ],
        step,
    )
    till_of = {p.prize_id: till for p, till in zip(prizes, tills, strict=True)}
    actions = [
        "recycling_drop_off",
        "public_transport_ride",
        "public_transport_ride",
        "bike_share_trip",
        "water_refill",
    ]
    for day in range(WEEKS * 7):
        date = clock.day(day).isoformat()
        until = clock() + dt.timedelta(days=7)
        tourists = ids(
            node.in_process(
                [
                    app.open_wallet(f"demo:tour{day}:{i}", "tourist", consent, until)
                    for i in range(people // 40)
                ],
                step,
            ),
            "wallet_id",
        )
        active = [UUID(w) for w in residents] + businesses + tourists
        cmds = [
            app.record_activity(
                f"demo:act{day}:{i}", w, "eco_action", {"action": rnd.choice(actions), "date": date}
            )
            for i, w in enumerate(active)
            if rnd.random() < 0.6
        ]
        node.in_process(cmds, step)
        if day % 7 == 6:
            claim_prizes(
                node,
                [
                    (f"demo:claim{day}:{i}", w, rnd.choice(prizes).prize_id)
                    for i, w in enumerate(residents)
                    if rnd.random() < 0.3
                ],
                till_of,
                step,
            )


def claim_prizes(
    node: DemoNode, wanted: list[tuple[str, str, str]], till_of: dict[str, Metadata], step: Step
) -> None:
    """Residents claim prizes (key, wallet, prize), each prize's units going to the first to
    claim; the partner's till hands each one over."""
    lanes: dict[str, list[Call]] = {}
    for key, wallet, prize in wanted:
        request = prizes_pb2.ClaimPrizeRequest(idempotency_key=key, wallet_id=wallet, prize_id=prize)
        lanes.setdefault(prize, []).append(Call(node.stubs.prizes.ClaimPrize, request, node.holder(wallet)))
    claimed = node.lanes(list(lanes.values()), step)
    handovers = [
        Call(
            node.stubs.prizes.ConfirmHandover,
            prizes_pb2.ConfirmHandoverRequest(idempotency_key=f"handover:{c.claim_id}", claim_id=c.claim_id),
            till_of[prize],
        )
        for prize, results in zip(lanes, claimed, strict=True)
        for c in answered(results)
    ]
    node.calls(handovers, step)


def sint_niklaas(node: DemoNode, clock: ScenarioClock, step: Step, people: int) -> None:
    """Residents shop at local cafés and shops, whose tills report each purchase with its
    receipt id over the node's cashback contract (the holder earns once per receipt); bike
    engravings, Saturday events and Sunday spending are still recorded in the program."""
    app = node.app
    rnd = random.Random(3)
    consent = app.city.config.consent_versions[-1]
    clock.day(0)
    wallets = node.open_wallets([f"demo:w{i}" for i in range(people)], "resident", consent, step)
    categories = [rnd.choice(["cafe", "food", "retail"]) for _ in range(25)]
    shops = node.register_merchants(
        [(f"demo:shop{i}", f"Lokale winkel {i}", c, True, False) for i, c in enumerate(categories)], step
    )
    chain = node.register_merchants([("demo:chain", "Out-of-town chain store", "retail", False, False)], step)
    till_of = dict(zip(shops, node.tills(shops, "checkout", step), strict=True))
    frames = [f"SN-{rnd.randint(100000, 999999)}" for _ in wallets]
    engravings = [
        app.record_activity(
            f"demo:engr{i}",
            UUID(w),
            "bike_engraving",
            {"subject": frames[i], "date": clock.day(2).isoformat()},
        )
        for i, w in enumerate(wallets)
        if rnd.random() < 0.5
    ]
    node.in_process(engravings, step)
    for day in range(WEEKS * 7):
        date = clock.day(day).isoformat()
        purchases = []
        for i, w in enumerate(wallets):
            if rnd.random() < 0.15:
                cents, shop = rnd.randint(250, 6000), rnd.choice(shops)
                purchases.append(
                    report_purchase(node, shop, f"bon-{day:02d}-{i:04d}", w, cents, date, till_of)
                )
        node.calls(purchases, step)
        cmds: list[Job] = []
        if day % 7 == 5:  # a Saturday event
            cmds += [
                app.record_activity(
                    f"demo:event{day}:{i}",
                    UUID(w),
                    "event_attendance",
                    {"subject": f"event-{day}", "date": date},
                )
                for i, w in enumerate(wallets)
                if rnd.random() < 0.3
            ]
        if day % 7 == 6:
            cmds += [
                app.spend(
                    f"demo:spend{day}:{i}",
                    UUID(w),
                    UUID(rnd.choice(shops + chain)),
                    rnd.randint(100, 400),
                    f"receipt-{day}-{i}",
                )
                for i, w in enumerate(wallets)
                if rnd.random() < 0.4
            ]
        node.in_process(cmds, step)


def report_purchase(
    node: DemoNode, shop: str, receipt: str, wallet: str, cents: int, date: str, till_of: dict[str, Metadata]
) -> Call:
    """A purchase at `shop`, reported by the shop's own till with its receipt id."""
    request = cashback_pb2.ReportPurchaseRequest(
        idempotency_key=f"demo:buy:{receipt}",
        merchant_id=shop,
        receipt_id=receipt,
        wallet_id=wallet,
        amount_cents=cents,
        date=date,
    )
    return Call(node.stubs.cashback.ReportPurchase, request, till_of[shop])


def bologna(app: CityApplication, clock: ScenarioClock, step: Step, people: int) -> None:
    rnd = random.Random(4)
    clock.day(0)
    wallets = open_residents(app, people, step)
    shop = ids(
        [app.execute(app.register_merchant("demo:coop", "Coop di quartiere", "food", True))], "merchant_id"
    )[0]
    for day in range(WEEKS * 7):
        date = clock.day(day).isoformat()
        cmds = [
            app.record_activity(
                f"demo:act{day}:{i}",
                w,
                "eco_action",
                {"action": rnd.choice(["bike_to_work", "bus_ride", "recycling_drop_off"]), "date": date},
            )
            for i, w in enumerate(wallets)
            if rnd.random() < 0.5
        ]
        if day % 7 == 6:
            cmds += [
                app.record_activity(
                    f"demo:clean{day}:{i}", w, "civic_event", {"subject": f"pulizia-{day}", "date": date}
                )
                for i, w in enumerate(wallets)
                if rnd.random() < 0.5
            ]
            cmds += [
                app.spend(f"demo:spend{day}:{i}", w, shop, 20, f"scontrino-{day}-{i}")
                for i, w in enumerate(wallets)
                if i % 5 == 0
            ]
        results = run_group(app, cmds, step)
        if any(isinstance(r, FundExhausted) for r in results):
            top_up_used_up_funds(app, day)


def top_up_used_up_funds(app: CityApplication, day: int) -> None:
    """A fund the season used up (less than a tenth of its declared budget left) is topped up
    by its declared budget again: proposed by the neighbourhood's officer, approved by the
    Giunta, two people. Awards refused meanwhile stay refused (and appealable)."""
    for fund in app.fund_reports():
        if fund.remaining * 10 >= fund.declared:
            continue
        key = f"demo:top-up:{fund.fund_id}:{day}"
        reason = "a busy season of neighbourhood clean-ups"
        proposed = app.execute(
            app.job(c.ProposeFundTopUp(key, fund.fund_id, fund.declared, reason, "staff:demo-quartiere"))
        )
        decision = f"Delibera di Giunta {day}/2026"
        app.execute(
            app.job(
                c.ApproveFundTopUp(
                    f"{key}:approved",
                    fund.fund_id,
                    str(proposed["proposal_id"]),
                    decision,
                    "staff:demo-giunta",
                )
            )
        )


InProcess = Callable[[CityApplication, ScenarioClock, Step, int], None]
# Each city's scenario and how many people it plays with. A city listed with a
# `NodeScenario` is played against its node over gRPC; one with an `InProcess` scenario
# calls its application directly (moving a city over means writing its scenario against
# a `DemoNode`, as `rome`, `sint_niklaas` and `zwolle` are).
SCENARIOS: dict[str, tuple[InProcess | NodeScenario, int]] = {
    "vienna": (vienna, 1000),
    "rome": (rome, 900),
    "sint_niklaas": (sint_niklaas, 400),
    "bologna": (bologna, 200),
    "zwolle": (zwolle, 300),
}
OVER_GRPC = {"rome", "sint_niklaas", "zwolle"}


def estimate(city: str, people: int) -> int:
    """Roughly how many commands a city's scenario runs, for the progress bar."""
    per_day = {"vienna": 0.9, "rome": 0.3, "sint_niklaas": 0.28, "bologna": 0.55, "zwolle": 2.3}[city]
    return int(people * (1 + per_day * WEEKS * 7))
