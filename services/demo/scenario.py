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

from services.city import CityApplication
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


def rome(app: CityApplication, clock: ScenarioClock, step: Step, people: int) -> None:
    rnd = random.Random(2)
    consent = app.city.config.consent_versions[-1]
    clock.day(0)
    residents = ids(
        run_group(
            app, [app.open_wallet(f"demo:res{i}", "resident", consent) for i in range(people // 3)], step
        ),
        "wallet_id",
    )
    businesses = ids(
        run_group(
            app, [app.open_wallet(f"demo:biz{i}", "business", consent) for i in range(people // 20)], step
        ),
        "wallet_id",
    )
    partners = ids(
        run_group(
            app,
            [
                app.register_merchant(
                    f"demo:partner{i}", f"Partner {i}", rnd.choice(["food", "culture", "mobility"]), True
                )
                for i in range(20)
            ],
            step,
        ),
        "merchant_id",
    )
    prizes = ids(
        run_group(
            app,
            [
                app.offer_prize(f"demo:prize{i}", m, f"Prize {i}", rnd.randint(20, 60), rnd.randint(3, 12))
                for i, m in enumerate(partners)
            ],
            step,
        ),
        "prize_id",
    )
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
            run_group(
                app,
                [
                    app.open_wallet(f"demo:tour{day}:{i}", "tourist", consent, until)
                    for i in range(people // 40)
                ],
                step,
            ),
            "wallet_id",
        )
        active = residents + businesses + tourists
        cmds = [
            app.record_activity(
                f"demo:act{day}:{i}", w, "eco_action", {"action": rnd.choice(actions), "date": date}
            )
            for i, w in enumerate(active)
            if rnd.random() < 0.6
        ]
        run_group(app, cmds, step)
        if day % 7 == 6:
            run_group(
                app,
                [
                    app.claim_prize(f"demo:claim{day}:{i}", w, rnd.choice(prizes))
                    for i, w in enumerate(residents)
                    if rnd.random() < 0.3
                ],
                step,
            )


def sint_niklaas(app: CityApplication, clock: ScenarioClock, step: Step, people: int) -> None:
    rnd = random.Random(3)
    clock.day(0)
    wallets = open_residents(app, people, step)
    shops = ids(
        run_group(
            app,
            [
                app.register_merchant(
                    f"demo:shop{i}", f"Lokale winkel {i}", rnd.choice(["cafe", "food", "retail"]), True
                )
                for i in range(25)
            ],
            step,
        ),
        "merchant_id",
    )
    chain = ids(
        [app.execute(app.register_merchant("demo:chain", "Out-of-town chain store", "retail", False))],
        "merchant_id",
    )
    frames = [f"SN-{rnd.randint(100000, 999999)}" for _ in wallets]
    engravings = [
        app.record_activity(
            f"demo:engr{i}", w, "bike_engraving", {"subject": frames[i], "date": clock.day(2).isoformat()}
        )
        for i, w in enumerate(wallets)
        if rnd.random() < 0.5
    ]
    run_group(app, engravings, step)
    for day in range(WEEKS * 7):
        date = clock.day(day).isoformat()
        cmds = [
            app.record_activity(
                f"demo:buy{day}:{i}",
                w,
                "local_purchase",
                {"amount_cents": rnd.randint(250, 6000), "merchant_id": str(rnd.choice(shops)), "date": date},
            )
            for i, w in enumerate(wallets)
            if rnd.random() < 0.15
        ]
        if day % 7 == 5:  # a Saturday event
            cmds += [
                app.record_activity(
                    f"demo:event{day}:{i}", w, "event_attendance", {"subject": f"event-{day}", "date": date}
                )
                for i, w in enumerate(wallets)
                if rnd.random() < 0.3
            ]
        if day % 7 == 6:
            cmds += [
                app.spend(
                    f"demo:spend{day}:{i}",
                    w,
                    rnd.choice(shops + chain),
                    rnd.randint(100, 400),
                    f"receipt-{day}-{i}",
                )
                for i, w in enumerate(wallets)
                if rnd.random() < 0.4
            ]
        run_group(app, cmds, step)


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
                if rnd.random() < 0.2
            ]
            cmds += [
                app.spend(f"demo:spend{day}:{i}", w, shop, 20, f"scontrino-{day}-{i}")
                for i, w in enumerate(wallets)
                if i % 5 == 0
            ]
        run_group(app, cmds, step)


SCENARIOS: dict[str, tuple[Callable[[CityApplication, ScenarioClock, Step, int], None], int]] = {
    "vienna": (vienna, 1000),
    "rome": (rome, 900),
    "sint_niklaas": (sint_niklaas, 400),
    "bologna": (bologna, 200),
    "zwolle": (zwolle, 300),
}


def estimate(city: str, people: int) -> int:
    """Roughly how many commands a city's scenario runs, for the progress bar."""
    per_day = {"vienna": 0.9, "rome": 0.3, "sint_niklaas": 0.28, "bologna": 0.55, "zwolle": 2.3}[city]
    return int(people * (1 + per_day * WEEKS * 7))
