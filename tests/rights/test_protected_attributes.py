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
from tests.rights.apps import city_app, edited_cities

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


# -- proxies, in every language the federation speaks ------------------------------------------

ECO_POINTS = "recycling_drop_off = 8\n"


def congress_rule(word: str) -> str:
    """A once-per-event rule whose event is `word`."""
    return f"""
[[rules]]
id = "congress"
kind = "once_per_subject"
activity = "{word}"
published_by = "Comune"
reason = "A party congress counted as a civic event"

[rules.params]
award = 10
scope = "wallet"
subject_label = "event"
"""


@pytest.mark.parametrize(
    ("line", "rule_id", "word"),
    [
        ("recycling_postcode_1071 = 20\n", "eco-actions", "recycling_postcode_1071"),
        ("recycling_postcode_1102 = 1\n", "eco-actions", "recycling_postcode_1102"),
        ("mosque_visit = 5\n", "eco-actions", "mosque_visit"),
        ("nationaliteit_nl = 5\n", "eco-actions", "nationaliteit_nl"),
        ("tweede_paspoort = 5\n", "eco-actions", "tweede_paspoort"),
        (congress_rule("partijcongres"), "congress", "partijcongres"),
        (congress_rule("party_congress"), "congress", "party_congress"),
        (congress_rule("parteitag"), "congress", "parteitag"),
    ],
)
def test_proxy_rules_are_refused_at_load_naming_rule_and_word(
    tmp_path: Path, line: str, rule_id: str, word: str
) -> None:
    """A copy of Bologna's rulebook with a proxy in its points table, or a party congress as
    its event, does not start; the refusal names the rule and the word."""
    text = ECO_POINTS + line if line.startswith(word) else None
    cities = (
        edited_cities(tmp_path, "bologna", ECO_POINTS, text)
        if text is not None
        else edited_cities(
            tmp_path, "bologna", 'subject_label = "event"\n', 'subject_label = "event"\n' + line
        )
    )
    with pytest.raises(ProtectedAttribute) as err:
        city_app("bologna", tmp_path / "data", {"CIVFED_CITIES_DIR": str(cities)})
    assert err.value.rule_id == rule_id and repr(word) in err.value.problem
    assert f"rule {rule_id!r}" in str(err.value)
    # Refused before anything was stored: the city has no rulebook at all.
    assert _no_rulebook(tmp_path)


def _no_rulebook(tmp_path: Path) -> bool:
    from services.city import app_name
    from services.event_log import read_events
    from services.rulebook_history import RulebookReader
    from services.settings.cities import load_settings

    env = load_settings({"CIVFED_DATA_DIR": str(tmp_path / "data")}).eventsourcing_env("bologna")
    reader = RulebookReader(app_name("bologna"), env)
    try:
        return not list(read_events(reader))
    finally:
        reader.close()


@pytest.mark.parametrize(
    "word",
    [
        "RecyclingPostcode1071",
        "recycling-postcode-1071",
        "RECYCLING_POSTCODE",
        "PLZ_1010",
        "codice_postale_40121",
        "code_postal_75011",
        "Nationalité",
        "nazionalita_italiana",
        "Staatsangehörigkeit",
        "tweedePaspoort",
        "passeport_etranger",
        "Moschee_Besuch",
        "bezoek_moskee",
        "visite_mosquee",
        "moschea_del_venerdi",
        "synagogue_visit",
        "kirchenbesuch",
        "iscritto_sindacato",
        "Gewerkschaftsmitglied",
        "vakbondslid",
        "membre_syndicat",
        "trade_union",
        "partito_member",
        "parti_politique",
        "quartiere_san_donato",
        "stadsdeel_oost",
        "wijk_12",
        "Bezirk_Favoriten",
        "district_7",
        "neighbourhood_watch",
        "langue_maternelle",
        "moedertaal_turks",
        "Herkunftssprache",
        "language_of_origin",
        "religione_cattolica",
    ],
)
def test_protected_words_and_proxies_are_caught_in_five_languages(word: str) -> None:
    with pytest.raises(ProtectedAttribute) as err:
        check_rule("eco", "fixed_per_action", {"points": {word: 5}}, {})
    assert repr(word) in err.value.problem


@pytest.mark.parametrize(
    "word",
    [
        "bike_to_work",
        "public_transport_ride",
        "water_refill",
        "bus_pass",
        "trace_litter",
        "tram_line_2",
        "departure",
    ],
)
def test_everyday_words_pass(word: str) -> None:
    check_rule("eco", "fixed_per_action", {"points": {word: 5}}, {})
