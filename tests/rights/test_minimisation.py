"""Data minimisation: activity input carries only what the rule needs, and logs carry no
personal data."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from aggregates.errors import InvalidInput
from aggregates.rules import INPUT_MODELS
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
