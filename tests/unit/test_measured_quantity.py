"""Vienna's rule kind, measured_quantity, at its boundaries (pure functions)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from aggregates.errors import InvalidInput
from aggregates.rules import MEASURED_QUANTITY, TripInput, measured_quantity, parse_input
from services.settings.cities import load_city

DAY = dt.date(2026, 5, 3)


def vienna_params() -> dict[str, Any]:
    """The published Vienna rule, read from its rulebook file."""
    (rule,) = load_city("vienna").rules
    assert rule.kind == MEASURED_QUANTITY
    return rule.params


def trip(mode: str, distance_m: int) -> TripInput:
    return TripInput(mode=mode, distance_m=distance_m, date=DAY)


def test_published_vienna_parameters_are_the_ones_the_readme_states() -> None:
    params = vienna_params()
    assert params["unit_grams"] == 20_000
    assert params["baseline_mode"] == "car"
    assert params["factors_g_per_km"]["car"] == 200
    assert params["factors_g_per_km"]["bike"] == 0
    assert params["factors_g_per_km"]["tram"] == 30


@pytest.mark.parametrize(
    ("distance_m", "saved", "tokens", "carried"),
    [
        (99_995, 19_999, 0, 19_999),  # one gram short of a token
        (100_000, 20_000, 1, 0),  # exactly one token, nothing carried
        (100_005, 20_001, 1, 1),  # one gram over
    ],
)
def test_token_boundary_at_20_kg(distance_m: int, saved: int, tokens: int, carried: int) -> None:
    award = measured_quantity(vienna_params(), trip("bike", distance_m), carried=0)
    assert award.quantity == saved
    assert award.amount == tokens
    assert award.carried_after == carried


def test_45_kg_earns_two_tokens_and_carries_5_kg() -> None:
    award = measured_quantity(vienna_params(), trip("bike", 225_000), carried=0)
    assert (award.quantity, award.amount, award.carried_after) == (45_000, 2, 5_000)
    assert award.explanation == (
        "225.0 km by bike on 3 May 2026 saved 45.0 kg CO2; 20.0 kg = 1 token; 5.0 kg carried"
    )


def test_readme_worked_table() -> None:
    """The README's three trips, row by row: saved, carried before, tokens, carried after."""
    params = vienna_params()
    rows = [
        (trip("bike", 225_000), 45_000, 0, 2, 5_000),
        (trip("tram", 50_000), 8_500, 5_000, 0, 13_500),
        (trip("bike", 40_000), 8_000, 13_500, 1, 1_500),
    ]
    carried = 0
    for inp, saved, before, tokens, after in rows:
        assert carried == before
        award = measured_quantity(params, inp, carried)
        assert (award.quantity, award.amount, award.carried_after) == (saved, tokens, after)
        assert award.carried_after is not None
        carried = award.carried_after


def test_carried_grams_complete_a_token() -> None:
    award = measured_quantity(vienna_params(), trip("bike", 5), carried=19_999)
    assert (award.quantity, award.amount, award.carried_after) == (1, 1, 0)


def test_zero_distance_saves_nothing_and_keeps_the_carry() -> None:
    award = measured_quantity(vienna_params(), trip("bike", 0), carried=7_000)
    assert (award.quantity, award.amount, award.carried_after) == (0, 0, 7_000)


def test_factor_equal_to_baseline_saves_nothing() -> None:
    award = measured_quantity(vienna_params(), trip("car", 500_000), carried=3_000)
    assert (award.quantity, award.amount, award.carried_after) == (0, 0, 3_000)


def test_a_custom_mode_equal_to_baseline_saves_nothing() -> None:
    params = {"unit_grams": 1_000, "baseline_mode": "car", "factors_g_per_km": {"car": 150, "taxi": 150}}
    award = measured_quantity(params, trip("taxi", 80_000), carried=0)
    assert (award.quantity, award.amount, award.carried_after) == (0, 0, 0)


def test_fractions_of_a_gram_round_down() -> None:
    # Tram saves 170 g/km: 5 m is 0.85 g, 6 m is 1.02 g.
    assert measured_quantity(vienna_params(), trip("tram", 5), 0).quantity == 0
    assert measured_quantity(vienna_params(), trip("tram", 6), 0).quantity == 1


def test_unknown_mode_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as exc:
        measured_quantity(vienna_params(), trip("jetpack", 10_000), carried=0)
    assert exc.value.field == "mode"
    assert "jetpack" in str(exc.value)


def test_trip_input_takes_only_mode_distance_and_date() -> None:
    ok = parse_input(MEASURED_QUANTITY, {"mode": "bike", "distance_m": 1000, "date": "2026-05-03"})
    assert ok == trip("bike", 1000)
    with pytest.raises(InvalidInput) as exc:
        parse_input(
            MEASURED_QUANTITY,
            {"mode": "bike", "distance_m": 1000, "date": "2026-05-03", "gps": [48.2, 16.37]},
        )
    assert exc.value.field == "gps"
    with pytest.raises(InvalidInput) as exc:
        parse_input(MEASURED_QUANTITY, {"mode": "bike", "distance_m": -1, "date": "2026-05-03"})
    assert exc.value.field == "distance_m"
    with pytest.raises(InvalidInput) as exc:
        parse_input(MEASURED_QUANTITY, {"mode": "bike", "distance_m": 1000})
    assert exc.value.field == "date"
