"""Rewards only: no event, method or API deducts tokens for behaviour, blacklists or ranks
people; tokens leave a wallet only when its holder spends them (in a shop or on municipal
tax), by the depreciation a city publishes in advance, or, after they leave, by the city's
published lapse; rule validation refuses negative awards."""

from __future__ import annotations

import datetime as dt
import inspect
import re
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.domain import Aggregate

import aggregates.appeal
import aggregates.merchant
import aggregates.receipt
import aggregates.redemption
import aggregates.rulebook
import aggregates.treasury
import aggregates.voucher
import aggregates.wallet
import aggregates.workflow
from aggregates.errors import AwardRefused, InvalidInput, NegativeAward
from aggregates.rulebook import check_rule
from aggregates.wallet import Wallet
from civfed.v1 import events_pb2, federation_pb2, merchant_pb2, rulebook_pb2, wallet_pb2
from services.city import CityApplication
from services.federation.home import HomeRedemptions
from services.federation.vouchers import verify
from services.privacy.retention import erase_wallet
from services.settings.cities import load_city, load_settings
from tests.integration.zwolle_season import START, Clock, work_day
from tests.rights.apps import CAPPED_ECO_ACTIONS, city_app, edited_cities, opened

FORBIDDEN = {
    "penalty", "penalise", "penalize", "penalised", "deduct", "deducted", "deduction", "fine", "fined",
    "forfeit", "confiscate", "blacklist", "blacklisted", "blocklist", "ban", "banned", "bar", "barred",
    "rank", "ranked", "ranking", "score", "scored", "scoring", "demerit", "punish", "punished", "sanction",
    "strike", "suspend", "suspended", "flag", "flagged", "watchlist", "leaderboard", "rating", "trust",
}  # fmt: skip
MODULES = (
    aggregates.appeal, aggregates.merchant, aggregates.receipt, aggregates.redemption,
    aggregates.rulebook, aggregates.voucher, aggregates.wallet, aggregates.workflow, aggregates.treasury,
)  # fmt: skip


def words(name: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", name)}


def aggregate_classes() -> list[type[Aggregate]]:
    return [
        cls
        for m in MODULES
        for cls in vars(m).values()
        if isinstance(cls, type) and issubclass(cls, Aggregate) and cls is not Aggregate
    ]


def event_classes(cls: type[Aggregate]) -> list[type]:
    """The aggregate's own event classes (not eventsourcing's generic ones)."""
    generic = {v.__name__ for v in vars(Aggregate).values() if isinstance(v, type)}
    return [
        v
        for v in vars(cls).values()
        if isinstance(v, type) and issubclass(v, Aggregate.Event) and v.__name__ not in generic
    ]


def test_no_event_or_method_names_a_penalty_blacklist_or_ranking() -> None:
    names = []
    for cls in aggregate_classes():
        names += [cls.__name__] + [e.__name__ for e in event_classes(cls)]
        names += [n for n, _ in inspect.getmembers(cls, callable) if not n.startswith("__")]
    names += [n for n, _ in inspect.getmembers(CityApplication, callable) if not n.startswith("__")]
    assert len(names) > 100
    assert [n for n in names if words(n) & FORBIDDEN] == []


def proto_names() -> list[str]:
    names = []
    for module in (wallet_pb2, merchant_pb2, federation_pb2, rulebook_pb2, events_pb2):
        d = module.DESCRIPTOR
        for service in d.services_by_name.values():
            names += [service.name] + [m.name for m in service.methods]
        for message in d.message_types_by_name.values():
            names += [message.name] + [f.name for f in message.fields]
    return names


def test_no_api_deducts_blacklists_or_ranks() -> None:
    names = proto_names()
    assert {"WalletService", "Spend", "FederationService", "GetRulebook"} <= set(names)
    assert [n for n in names if words(n) & FORBIDDEN] == []


OUTFLOWS = {
    "Wallet.Spent",
    "Wallet.HoldSpent",
    "Wallet.HoldBurned",
    "Wallet.Lapsed",
    "Wallet.TaxPaid",  # the holder pays municipal tax
    "Wallet.Depreciated",  # the depreciation the city published in advance, the same for all
}


def every_wallet_event(app: CityApplication) -> list[UUID]:
    """Wallets whose histories, together, hold every kind of wallet event."""
    home = HomeRedemptions(app, Ed25519PrivateKey.generate(), dt.timedelta(hours=1), dt.timedelta(minutes=5))
    trip = {"mode": "bike", "distance_m": 500_000, "date": "2026-05-03"}
    a, b = opened(app, "a"), opened(app, "b")
    shop = UUID(app.execute(app.register_merchant("shop", "Bakery", "food", True))["merchant_id"])
    for w in (a, b):
        app.execute(app.record_activity(f"{w}:t", w, "trip", trip))  # Credited
        app.execute(app.record_activity(f"{w}:p", w, "trip", {**trip, "distance_m": 1_000}))  # Progressed
        app.execute(app.spend(f"{w}:s", w, shop, 1, "bread"))  # Spent
    voucher = UUID(app.execute(app.issue_voucher("v", a, 1))["voucher_id"])  # HoldPlaced
    app.execute(app.redeem_voucher("r", voucher, shop))  # HoldSpent
    token = app.execute(home.issue("rv", a, 1))["token"]
    held = app.execute(home.reserve("res", "sint_niklaas", verify(token, home.signing_key.public_key())))
    app.execute(home.commit("com", "sint_niklaas", UUID(held["redemption_id"])))  # HoldBurned
    token = app.execute(home.issue("rv2", a, 1))["token"]
    held = app.execute(home.reserve("res2", "sint_niklaas", verify(token, home.signing_key.public_key())))
    app.execute(
        home.cancel("can", "sint_niklaas", UUID(held["redemption_id"]), "shop closed")
    )  # HoldReleased
    app.execute(app.file_appeal("f", a, "award", "x", "too little", "holder"))  # AppealLodged
    app.execute(app.close_wallet("close", a, "moving"))  # CloseScheduled (30-day final spend window)
    erase_wallet(app, "erase", b, "asked")  # Closed, Lapsed, Erased
    return [a, b]


def depreciating_wallet_events(app: CityApplication, clock: Clock) -> list[UUID]:
    """A wallet in a depreciating currency: lots, recorded depreciation, tax, leaving."""
    assert app.workflow is not None
    w = opened(app, "z")
    work_day(app, app.workflow, clock, "d0", START, {w: 600})  # Credited, LotOpened
    shop = UUID(app.execute(app.register_merchant("shop", "Bakker", "food", True, True))["merchant_id"])
    clock.set(START + dt.timedelta(days=200))
    app.execute(app.spend("s", w, shop, 100, "bread"))  # Depreciated, Spent, LotsDrawn
    app.execute(app.workflow.pay_tax("t", w, 100, "AANSLAG-2026-0001"))  # TaxPaid, LotsDrawn
    return [w]


def tourist_expiry_events(app: CityApplication, clock: Clock) -> list[UUID]:
    """A Rome tourist wallet whose validity ends: the expiry is recorded, then the lapse."""
    consent = app.city.config.consent_versions[-1]
    until = clock() + dt.timedelta(days=2)
    w = UUID(app.execute(app.open_wallet("open:tourist", "tourist", consent, until))["wallet_id"])
    drop = {"action": "recycling_drop_off", "date": "2026-05-04"}
    app.execute(app.record_activity("t1", w, "eco_action", drop))  # Credited
    clock.set(until + dt.timedelta(days=app.city.config.final_spend_days))
    app.execute(app.close_wallet("leave", w))  # Expired, its window over: Closed, Lapsed
    return [w]


def refused_award_events(app: CityApplication) -> list[UUID]:
    """A wallet whose award a rule's daily cap refused (Bologna with a capped eco-actions rule)."""
    w = opened(app, "capped")
    drop = {"action": "recycling_drop_off", "date": "2026-05-04"}
    app.execute(app.record_activity("c1", w, "eco_action", drop))  # Credited: 8 of 10
    with pytest.raises(AwardRefused, match="per wallet per day"):
        app.execute(app.record_activity("c2", w, "eco_action", drop))  # AwardRefused
    return [w]


def test_tokens_leave_a_wallet_only_by_spending_or_the_published_lapse(
    vienna: CityApplication, tmp_path: Path
) -> None:
    clock = Clock()
    settings = load_settings({"CIVFED_DATA_DIR": str(tmp_path / "zwolle")})
    zwolle = CityApplication(load_city("zwolle"), settings.eventsourcing_env("zwolle"), clock=clock)
    seen: set[str] = set()
    decreasing: set[str] = set()
    capped = city_app(
        "bologna",
        tmp_path / "capped",
        {"CIVFED_CITIES_DIR": str(edited_cities(tmp_path, "bologna", *CAPPED_ECO_ACTIONS))},
    )
    rome_clock = Clock()
    rome_settings = load_settings({"CIVFED_DATA_DIR": str(tmp_path / "rome")})
    rome = CityApplication(load_city("rome"), rome_settings.eventsourcing_env("rome"), clock=rome_clock)
    for app, wallets in (
        (vienna, every_wallet_event(vienna)),
        (rome, tourist_expiry_events(rome, rome_clock)),
        (zwolle, depreciating_wallet_events(zwolle, clock)),
        (capped, refused_award_events(capped)),
    ):
        for w in wallets:
            for e in app.events.get(w):
                kind = type(e).__qualname__
                seen.add(kind)
                if e.originator_version > 1:
                    before = app.repository.get(w, version=e.originator_version - 1).balance
                    after = app.repository.get(w, version=e.originator_version).balance
                    if after < before:
                        decreasing.add(kind)
    zwolle.close()
    rome.close()
    capped.close()
    assert seen == {f"Wallet.{e.__name__}" for e in event_classes(Wallet)}, "a wallet event is not exercised"
    assert decreasing == OUTFLOWS


def test_only_spending_and_leaving_reach_the_outflow_events() -> None:
    private = {
        "Wallet.Spent": "_spent",
        "Wallet.HoldSpent": "_hold_spent",
        "Wallet.HoldBurned": "_hold_burned",
    }
    private["Wallet.Lapsed"] = "_lapsed"
    private["Wallet.TaxPaid"] = "_tax_paid"
    private["Wallet.Depreciated"] = "_depreciated"
    callers = {
        name
        for name, fn in inspect.getmembers(Wallet, inspect.isfunction)
        if not name.startswith("_") and any(f"self.{m}(" in inspect.getsource(fn) for m in private.values())
    }
    # Spending by the holder (directly, by voucher, at a partner city's shop, on tax),
    # leaving, and recording the published depreciation of a wallet's lots.
    assert callers == {"spend", "spend_hold", "burn_hold", "finish", "pay_tax", "revalue"}


def test_a_negative_credit_is_refused(vienna: CityApplication) -> None:
    wallet = vienna.wallet(opened(vienna))
    with pytest.raises(InvalidInput) as err:
        wallet.credit(-1, "r", 1, "a", "x")
    assert err.value.field == "amount"


@pytest.mark.parametrize(
    ("kind", "params", "where"),
    [
        ("fixed_per_action", {"points": {"litter_picking": -5}}, "params.points.litter_picking"),
        ("once_per_subject", {"award": -100, "scope": "city"}, "params.award"),
        ("percentage_of_amount", {"basis_points": -500}, "params.basis_points"),
        (
            "measured_quantity",
            {"unit_grams": 20000, "baseline_mode": "car", "factors_g_per_km": {"car": 200, "suv": 400}},
            "mode 'suv'",
        ),
    ],
)
def test_rule_validation_refuses_negative_awards(kind: str, params: dict[str, Any], where: str) -> None:
    with pytest.raises(NegativeAward) as err:
        check_rule("bad-rule", kind, params, {})
    assert err.value.rule_id == "bad-rule" and where in err.value.problem


def test_a_negative_rule_in_a_rulebook_file_stops_start_up(tmp_path: Path) -> None:
    import shutil

    from services.settings.cities import PACKAGED_CITIES

    cities = tmp_path / "cities"
    shutil.copytree(PACKAGED_CITIES, cities)
    book = cities / "rome" / "rulebook.toml"
    book.write_text(book.read_text().replace("water_refill = 2", "water_refill = -2"))
    with pytest.raises(NegativeAward, match="eco-actions"):
        city_app("rome", tmp_path / "data", {"CIVFED_CITIES_DIR": str(cities)})
