"""Data minimisation: activity input carries only what the rule needs, and logs carry no
personal data."""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import logging
import pkgutil
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import BaseAggregate, DomainEvent

import aggregates
from aggregates.errors import InvalidInput
from aggregates.rules import INPUT_MODELS
from projections.integration import AMOUNT_FIELDS, PUBLIC_FIELDS, WALLET_REFS, to_integration_event
from projections.log_source import catch_up_log
from projections.projector import Projector
from projections.store import Store
from services.city import CityApplication
from services.relay import Relay
from tests.kafka.conftest import Broker
from tests.rights.apps import city_app, opened, personal_life

TRIP = {"mode": "bike", "distance_m": 12_400, "date": "2026-05-03"}
# What a tracking app could send along, and the rule never needs.
EXTRA = {
    "gps": {"lat": 48.2082, "lon": 16.3738},
    "latitude": 48.2082,
    "route": [[48.2082, 16.3738], [48.2100, 16.3800]],
    "device_location": "48.2082,16.3738",
    "start_address": "Stephansplatz 1",
    "note": "drove the kids to school first, then cycled",
    "behaviour": "always late to work",
}


def test_a_vienna_trip_is_mode_distance_and_date_only() -> None:
    assert set(INPUT_MODELS["measured_quantity"].model_fields) == {"mode", "distance_m", "date"}


@pytest.mark.parametrize("field", sorted(EXTRA))
def test_extra_trip_fields_are_refused_naming_the_field(vienna: CityApplication, field: str) -> None:
    wallet = opened(vienna)
    before = vienna.recorder.max_notification_id()
    with pytest.raises(InvalidInput) as err:
        vienna.execute(vienna.record_activity(f"k:{field}", wallet, "trip", {**TRIP, field: EXTRA[field]}))
    assert err.value.field == field
    assert "not accepted: this rule needs only" in err.value.problem
    assert vienna.recorder.max_notification_id() == before  # nothing about it was stored
    assert vienna.wallet(wallet).balance == 0


@pytest.mark.parametrize(
    ("city", "activity", "fields"),
    [
        ("rome", "eco_action", {"action": "water_refill", "date": "2026-05-03"}),
        ("sint_niklaas", "event_attendance", {"subject": "fair-2026", "date": "2026-05-03"}),
        (
            "sint_niklaas",
            "local_purchase",
            {"amount_cents": 1000, "merchant_id": str(uuid4()), "date": "2026-05-03"},
        ),
    ],
)
def test_every_rule_kind_refuses_location_and_free_text(
    tmp_path: Path, city: str, activity: str, fields: dict[str, Any]
) -> None:
    app = city_app(city, tmp_path)
    wallet = opened(app)
    for field in ("gps", "route", "device_location", "note"):
        with pytest.raises(InvalidInput) as err:
            app.execute(app.record_activity(f"{field}", wallet, activity, {**fields, field: EXTRA[field]}))
        assert err.value.field == field
    app.close()


def test_free_text_in_a_known_field_is_refused_by_the_rule(vienna: CityApplication) -> None:
    wallet = opened(vienna)
    with pytest.raises(InvalidInput) as err:
        vienna.execute(
            vienna.record_activity("k", wallet, "trip", {**TRIP, "mode": "walked my dog past the mosque"})
        )
    assert err.value.field == "mode"


def test_logs_never_contain_personal_data(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = city_app("vienna", tmp_path)
    secrets: list[str] = []
    wallets: list[UUID] = []
    for tag in ("anna", "bert", "cleo"):
        wallet, personal = personal_life(app, tag)
        wallets.append(wallet)
        secrets += personal
    with pytest.raises(InvalidInput):
        app.execute(app.record_activity("gps", wallets[0], "trip", {**TRIP, "note": "secret note 4471"}))
    secrets.append("secret note 4471")
    store = Store(f"sqlite:///{tmp_path / 'rm.sqlite'}")
    relay = Relay(app, "vienna", broker.bootstrap, store, partitions=1, timeout_ms=3000)
    assert relay.publish_once(limit=10_000) > 0
    relay.close()
    # A relay whose broker is gone logs a warning: that path must be clean too.
    down = Relay(app, "vienna", "127.0.0.1:1", Store(f"sqlite:///{tmp_path / 'r2.sqlite'}"), timeout_ms=300)
    assert down.publish_once(limit=10_000) == 0
    down.close()
    assert catch_up_log(Projector(store), app, "vienna") > 0
    store.close()
    app.close()
    assert len(caplog.records) > 10  # the run did log, at every level
    assert [s for s in secrets if s in caplog.text] == []


def domain_event_types() -> dict[str, type]:
    """Every event class of every aggregate in the domain, by its published type name."""
    found: dict[str, type] = {}
    for module in pkgutil.iter_modules(aggregates.__path__):
        mod = importlib.import_module(f"aggregates.{module.name}")
        for cls in vars(mod).values():
            if inspect.isclass(cls) and issubclass(cls, BaseAggregate) and cls.__module__ == mod.__name__:
                for member in vars(cls).values():
                    if inspect.isclass(member) and issubclass(member, DomainEvent):
                        found[member.__qualname__] = member
    return found


def fields_of(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        names |= set(getattr(klass, "__annotations__", {}))
    return names - {
        "originator_id",
        "originator_version",
        "timestamp",
        "originator_id_type",
        "originator_topic",
    }


# Per-person detail that never leaves the city's store, on any event: a field whose name
# holds one of these. A wallet reference leaves only as the wallet's pseudonym (WALLET_REFS).
PERSON_DETAIL = (
    "wallet",
    "owner",
    "name",
    "explanation",
    "reason",
    "quantity",
    "distance",
    "merchant",
    "purchase",
    "activity",
    "claim",
    "subject_ref",
    "filed_by",
    "purpose",
    "reference",
    "voucher",
    "redemption",
    "credential",
    "secret",
    "label",
    "source",
    "minutes",
    "place",
)
# The shops' own events and a shop's prize name the shop: a shop is not a person, and no
# wallet stands beside it there.
SHOP_EVENTS = ("Merchant.", "Prize.Offered")


def test_every_event_type_in_the_domain_has_a_known_allowlist_and_no_person_detail_leaves() -> None:
    types = domain_event_types()
    assert len(types) > 100 and "Wallet.Credited" in types and "ForeignRedemption.Committed" in types
    # Nothing is published that the domain does not have, and nothing a type does not carry.
    assert set(PUBLIC_FIELDS) <= set(types)
    for type_name, fields in PUBLIC_FIELDS.items():
        assert set(fields) <= fields_of(types[type_name]), type_name
    leaving = {t: PUBLIC_FIELDS.get(t, ()) for t in types}
    for type_name, fields in sorted(leaving.items()):
        for field in fields:
            if field in WALLET_REFS:
                continue  # published as the wallet's pseudonym, checked below
            if field == "merchant_id" and type_name.startswith(SHOP_EVENTS):
                continue
            assert not any(word in field for word in PERSON_DETAIL), (type_name, field)
    # A trip's distance (and the CO2 it saved) is per person: it stays in the store.
    assert "quantity" in fields_of(types["Wallet.Credited"]) and "quantity" not in AMOUNT_FIELDS
    assert [t for t, f in leaving.items() if "quantity" in f] == []
    # What each type would carry, were it built with every field set: the allowlist only.
    wallet, name = uuid4(), "ab" * 32
    for type_name, cls in types.items():
        event = cls.__new__(cls)
        for field in fields_of(cls):
            value: object = f"{field}-value"
            if field.endswith("wallet_id"):
                value = wallet
            elif field == "pseudonym":
                value = name  # what an erasure recorded
            object.__setattr__(event, field, value)
        for amount in AMOUNT_FIELDS:
            object.__setattr__(event, amount, 7)
        # A wallet's own event has the wallet as its aggregate; others name it in a field.
        object.__setattr__(event, "originator_id", wallet if type_name.startswith("Wallet.") else uuid4())
        object.__setattr__(event, "originator_version", 1)
        object.__setattr__(event, "timestamp", dt.datetime(2026, 5, 3, tzinfo=dt.UTC))
        out = to_integration_event("vienna", 1, event, lambda _w: name)
        if type_name not in PUBLIC_FIELDS:
            assert out is None, type_name
            continue
        assert out is not None
        published = set(out.payload.refs) | set(out.payload.amounts)
        assert published <= set(PUBLIC_FIELDS[type_name]), type_name
        raw = out.SerializeToString()
        assert str(wallet).encode() not in raw, type_name  # never the wallet id
        if type_name.startswith("Wallet.") or "wallet_id" in published:
            assert name.encode() in raw, type_name  # its pseudonym instead
