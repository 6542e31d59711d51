"""The source registry and the daily tally, as pure domain: who may attest what, with which
key, within which bounds."""

from __future__ import annotations

import datetime as dt
from uuid import uuid4

import pytest

from aggregates.errors import (
    InvalidInput,
    KindNotAttested,
    NotFound,
    OverBound,
    PreconditionFailed,
    SourceRetired,
    StaleClaim,
)
from aggregates.source import Bound, DailyTally, SourceRegistry, check_date

BIKE = Bound("trip", 150_000, "distance_m", {"mode": "bike"})
TWO_TRIPS = Bound("trip", 2)


def registry() -> SourceRegistry:
    book = SourceRegistry("vienna")
    book.register("wien-mobility", "Wien Mobil", "k1", "PEM1", ["trip"], [BIKE], "staff:eva", "pilot")
    return book


def test_a_registered_source_attests_its_kinds_with_its_current_key() -> None:
    book = registry()
    assert book.key_for("wien-mobility", "k1") == "PEM1"
    assert book.check_attests("wien-mobility", "trip").bounds_for("trip") == [BIKE]
    with pytest.raises(KindNotAttested):
        book.check_attests("wien-mobility", "eco_action")
    with pytest.raises(NotFound):
        book.key_for("wien-mobility", "k9")
    with pytest.raises(NotFound):
        book.key_for("another", "k1")


def test_registration_is_checked() -> None:
    book = SourceRegistry("vienna")
    bad = {
        "source_id": ("Wien Mobil!", "n", "k1", "P", ["trip"], [], "s", "r"),
        "kinds": ("wien", "n", "k1", "P", [], [], "s", "r"),
        "bounds": ("wien", "n", "k1", "P", ["trip"], [Bound("eco_action", 1)], "s", "r"),
        "reason": ("wien", "n", "k1", "P", ["trip"], [], "s", " "),
        "key_id": ("wien", "n", "k 1", "P", ["trip"], [], "s", "r"),
    }
    for field, args in bad.items():
        with pytest.raises(InvalidInput) as err:
            book.register(*args)
        assert err.value.field == field
    with pytest.raises(InvalidInput):
        book.register("wien", "n", "k1", "P", ["trip"], [Bound("trip", 0)], "s", "r")
    registry_ = registry()
    with pytest.raises(PreconditionFailed):
        registry_.register("wien-mobility", "again", "k2", "P", ["trip"], [], "s", "r")


def test_a_rotated_key_is_retired_and_the_new_one_signs() -> None:
    book = registry()
    book.rotate_key("wien-mobility", "k2", "PEM2", "staff:eva", "yearly rotation")
    assert book.key_for("wien-mobility", "k2") == "PEM2"
    with pytest.raises(SourceRetired):
        book.key_for("wien-mobility", "k1")
    with pytest.raises(InvalidInput):
        book.rotate_key("wien-mobility", "k1", "PEM3", "staff:eva", "reuse")


def test_a_retired_source_attests_nothing_and_changes_no_more() -> None:
    book = registry()
    book.retire("wien-mobility", "staff:eva", "contract ended")
    with pytest.raises(SourceRetired):
        book.key_for("wien-mobility", "k1")
    with pytest.raises(SourceRetired):
        book.check_attests("wien-mobility", "trip")
    with pytest.raises(SourceRetired):
        book.rotate_key("wien-mobility", "k2", "PEM2", "staff:eva", "too late")
    assert [type(e).__name__ for e in book.collect_events()] == [
        "Created",
        "SourceRegistered",
        "SourceRetired",
    ]


def test_a_bound_holds_over_the_days_sum_not_only_per_claim() -> None:
    tally = DailyTally("vienna", uuid4(), "2026-12-01", "trip")
    adds = tally.check_within([BIKE], {"mode": "bike", "distance_m": 100_000})
    tally.add(adds)
    # 100 km, then 40 km: fine; another 20 km passes 150 km that day.
    tally.add(tally.check_within([BIKE], {"mode": "bike", "distance_m": "40000"}))
    with pytest.raises(OverBound, match="150000 distance_m of trip with mode bike"):
        tally.check_within([BIKE], {"mode": "bike", "distance_m": 20_000})
    # Another mode is not counted against the bike bound.
    assert tally.check_within([BIKE], {"mode": "tram", "distance_m": 900_000}) == {}
    # One claim alone past the bound is refused too.
    with pytest.raises(OverBound):
        DailyTally("vienna", uuid4(), "2026-12-01", "trip").check_within(
            [BIKE], {"mode": "bike", "distance_m": 150_001}
        )
    with pytest.raises(InvalidInput):
        tally.check_within([BIKE], {"mode": "bike", "distance_m": "far"})


def test_a_count_bound_counts_claims() -> None:
    tally = DailyTally("vienna", uuid4(), "2026-12-01", "trip")
    for _ in range(2):
        tally.add(tally.check_within([TWO_TRIPS], {"mode": "tram"}))
    with pytest.raises(OverBound):
        tally.check_within([TWO_TRIPS], {"mode": "tram"})


def test_dates_neither_ahead_nor_older_than_the_window() -> None:
    today = dt.date(2026, 12, 1)
    check_date(today, today, 30)
    check_date(today - dt.timedelta(days=30), today, 30)
    with pytest.raises(InvalidInput) as ahead:
        check_date(today + dt.timedelta(days=1), today, 30)
    assert ahead.value.field == "date"
    with pytest.raises(StaleClaim):
        check_date(today - dt.timedelta(days=31), today, 30)


def test_bounds_round_trip_through_their_stored_form() -> None:
    assert Bound.of(BIKE.as_dict()) == BIKE
    assert Bound.of(TWO_TRIPS.as_dict()) == TWO_TRIPS
