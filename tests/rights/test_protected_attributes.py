"""No protected attributes: a rule that refers to nationality, ethnicity, religion, political
opinion, health, sexual orientation, union membership or the like is refused when published,
as is a condition that reads another city's data."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from aggregates.errors import ProtectedAttribute, RuleRejected
from aggregates.rulebook import Rule, Rulebook, check_rule
from services.settings.cities import PACKAGED_CITIES
from tests.rights.apps import city_app

POINTS = {"points": {"litter_picking": 10}}
ATTRIBUTES = [
    "nationality",
    "dual_nationality",
    "citizenship",
    "ethnicity",
    "ethnic_origin",
    "race",
    "religion",
    "religious_affiliation",
    "political_opinion",
    "party_membership",
    "health_status",
    "disability",
    "sexual_orientation",
    "gender_identity",
    "union_membership",
    "trade_union",
    "country_of_birth",
    "migration_background",
]


@pytest.mark.parametrize("attribute", ATTRIBUTES)
def test_a_condition_on_a_protected_attribute_is_refused(attribute: str) -> None:
    with pytest.raises(ProtectedAttribute) as err:
        check_rule("eco", "fixed_per_action", POINTS, {attribute: ["x"]})
    assert err.value.rule_id == "eco" and attribute in err.value.problem


@pytest.mark.parametrize(
    ("params", "conditions"),
    [
        (POINTS, {"participant_kinds": ["resident_with_dual_nationality"]}),
        ({"points": {"mosque_visit_religious": 5}}, {}),
        ({"points": {"litter_picking": 10, "bonus_if_Union_Member": 5}}, {}),
        ({"points": {"health_checkup": 5}}, {}),
    ],
)
def test_protected_words_anywhere_in_a_rule_are_refused(
    params: dict[str, Any], conditions: dict[str, Any]
) -> None:
    with pytest.raises(ProtectedAttribute):
        check_rule("eco", "fixed_per_action", params, conditions)


def test_neutral_words_are_not_caught() -> None:
    check_rule("eco", "fixed_per_action", {"points": {"trace_litter": 3, "bike_repair": 2}}, {})


@pytest.mark.parametrize("condition", ["rome.eco_points", "vienna:trips", "bologna.wallets.balance"])
def test_a_condition_reading_another_citys_data_is_refused(condition: str) -> None:
    with pytest.raises(RuleRejected) as err:
        check_rule("eco", "fixed_per_action", POINTS, {condition: {"min": 100}})
    assert "reads another city's data" in err.value.problem


def test_publishing_a_protected_rule_records_nothing() -> None:
    book = Rulebook("bologna")
    book.publish(Rule("eco", "fixed_per_action", "eco_action", 0, POINTS), "council", "start")
    version = book.version
    with pytest.raises(ProtectedAttribute):
        book.publish(
            Rule("eco", "fixed_per_action", "eco_action", 0, POINTS, {"nationality": ["IT"]}), "x", "y"
        )
    assert book.version == version and book.rules["eco"].conditions == {}


def test_a_city_file_with_a_protected_condition_does_not_start(tmp_path: Path) -> None:
    cities = tmp_path / "cities"
    shutil.copytree(PACKAGED_CITIES, cities)
    book = cities / "rome" / "rulebook.toml"
    text = book.read_text().replace(
        'participant_kinds = ["resident", "tourist", "business"]',
        'participant_kinds = ["resident", "tourist", "business"]\nnationality = ["IT"]',
    )
    book.write_text(text)
    with pytest.raises(ProtectedAttribute, match="eco-actions"):
        city_app("rome", tmp_path / "data", {"CIVFED_CITIES_DIR": str(cities)})
