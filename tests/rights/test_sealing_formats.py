"""An event's personal fields sealed together (`sealed:v2`), and events stored with one seal
per field (`sealed:v1`) still read: both open with the owner's key and redact once it is gone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from aggregates.wallet import Wallet
from services.city import CityApplication
from services.privacy.sealing import REDACTED, SEALED, SEALED_ALL, SEALED_FIELDS, ShreddingMapper
from tests.rights.apps import city_app, opened

TRIP = {"mode": "bike", "distance_m": 212_345, "date": "2026-05-03"}


def credited(app: CityApplication) -> tuple[Any, StoredEvent]:
    w = opened(app)
    app.execute(app.record_activity("t1", w, "trip", TRIP, "trip-ref-7741"))
    stored = [e for e in app.recorder.select_events(w) if e.topic.endswith("Wallet.Credited")]
    assert len(stored) == 1
    return w, stored[0]


def mapper(app: CityApplication) -> ShreddingMapper:
    assert isinstance(app.mapper, ShreddingMapper)
    return app.mapper


def test_an_events_fields_are_sealed_together_and_open_with_the_key(tmp_path: Path) -> None:
    app = city_app("vienna", tmp_path)
    w, stored = credited(app)
    state = json.loads(stored.state)
    envelope = state[SEALED_FIELDS]
    assert envelope["seal"] == SEALED_ALL and envelope["owner"] == str(w)
    personal = ["activity_id", "claim_id", "explanation", "explanation_args", "explanation_id", "on"]
    assert sorted(envelope["shapes"]) == personal
    assert not set(personal) & set(state)
    assert b"trip-ref-7741" not in stored.state and b"2026-05-03" not in stored.state
    # The explanation's parameters (the distance, the mode) are sealed with its text.
    assert b"212345" not in stored.state and b"bike" not in stored.state
    event = mapper(app).to_domain_event(stored)
    assert event.activity_id == "trip-ref-7741" and event.on == "2026-05-03"
    assert event.explanation_args["distance_m"] == 212_345 and event.explanation_args["mode"] == "bike"
    assert SEALED_FIELDS not in vars(event)
    assert app.keys is not None
    app.keys.erase([w])
    gone = mapper(app).to_domain_event(stored)
    assert (gone.activity_id, gone.explanation, gone.on, gone.claim_id) == (REDACTED,) * 4
    assert (gone.explanation_id, gone.explanation_args) == (REDACTED, {"redacted": REDACTED})
    assert gone.amount == event.amount  # the amount is not personal: it stays
    app.close()


def test_the_sealed_fields_are_bound_to_their_event(tmp_path: Path) -> None:
    app = city_app("vienna", tmp_path)
    _, stored = credited(app)
    moved = StoredEvent(stored.originator_id, stored.originator_version + 1, stored.topic, stored.state)
    with pytest.raises(InvalidTag):
        mapper(app).to_domain_event(moved)
    app.close()


def test_events_sealed_field_by_field_still_read_and_redact(tmp_path: Path) -> None:
    app = city_app("vienna", tmp_path)
    w, stored = credited(app)
    seals = mapper(app)
    event = seals.to_domain_event(stored)
    assert app.keys is not None
    key = app.keys.key_for(w, create=False)
    # The same event as the earlier format stored it: each personal field its own seal.
    state = {k: v for k, v in vars(event).items() if k not in ("originator_id", "originator_version")}
    for name in ("activity_id", "explanation", "on", "claim_id"):
        state[name] = seals._seal(key, w, event.originator_id, event.originator_version, name, state[name])
        assert state[name]["seal"] == SEALED
    old = StoredEvent(
        event.originator_id,
        event.originator_version,
        get_topic(Wallet.Credited),
        seals.transcoder.encode(state),
    )
    assert b"trip-ref-7741" not in old.state
    again = seals.to_domain_event(old)
    assert (again.activity_id, again.explanation, again.on) == (
        event.activity_id,
        event.explanation,
        event.on,
    )
    app.keys.erase([w])
    gone = seals.to_domain_event(old)
    assert (gone.activity_id, gone.explanation, gone.on, gone.claim_id) == (REDACTED,) * 4
    app.close()


def test_a_receipts_result_redacts_as_a_dict(tmp_path: Path) -> None:
    app = city_app("vienna", tmp_path)
    w, _ = credited(app)
    assert app.keys is not None
    app.keys.erase([w])
    app2 = city_app("vienna", tmp_path)
    # A retried key replays the stored result: once erased, what it held reads redacted.
    assert app2.execute(app2.record_activity("t1", w, "trip", TRIP, "trip-ref-7741")) == {
        "redacted": REDACTED
    }
    app2.close()
    app.close()
