"""City files are validated at start-up; every problem names its file and field."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from services.settings.cities import city_keys, load_city
from services.settings.errors import ConfigError

CITY = """
key = "linz"
name = "Linz"
participant_kinds = ["resident"]
consent_versions = ["linz-1"]

[currency]
name = "Linzer Punkte"
"""

RULE = """
[[rules]]
id = "{id}"
kind = "fixed_per_action"
activity = "{activity}"
published_by = "Stadt Linz"
reason = "test"

[rules.params.points]
tree_planted = 5
"""


def write(folder: Path, city: str = CITY, rulebook: str = RULE.format(id="trees", activity="green")) -> Path:
    (folder / "linz").mkdir(parents=True, exist_ok=True)
    (folder / "linz" / "city.toml").write_text(city)
    (folder / "linz" / "rulebook.toml").write_text(rulebook)
    return folder


def test_the_packaged_cities_are_the_five_and_all_load() -> None:
    assert city_keys() == ["bologna", "rome", "sint_niklaas", "vienna", "zwolle"]
    for key in city_keys():
        assert load_city(key).config.key == key


def test_a_valid_new_city_loads(tmp_path: Path) -> None:
    city = load_city("linz", write(tmp_path))
    assert city.config.name == "Linz"
    assert [r.id for r in city.rules] == ["trees"]
    assert city_keys(tmp_path) == ["linz"]


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    write(tmp_path)
    (tmp_path / "linz" / "rulebook.toml").unlink()
    with pytest.raises(ConfigError, match=r"missing file .*rulebook\.toml"):
        load_city("linz", tmp_path)


def test_broken_toml_is_named(tmp_path: Path) -> None:
    write(tmp_path, city=CITY + "\n[currency\n")
    with pytest.raises(ConfigError, match=r"city\.toml"):
        load_city("linz", tmp_path)


def test_an_unknown_field_is_named(tmp_path: Path) -> None:
    write(tmp_path, city=CITY.replace('name = "Linz"', 'name = "Linz"\nscore_citizens = true'))
    with pytest.raises(ConfigError, match="score_citizens"):
        load_city("linz", tmp_path)


def test_a_key_that_differs_from_its_folder_is_refused(tmp_path: Path) -> None:
    write(tmp_path, city=CITY.replace('key = "linz"', 'key = "graz"'))
    with pytest.raises(ConfigError, match="does not match folder"):
        load_city("linz", tmp_path)


def test_an_unknown_participant_kind_is_refused(tmp_path: Path) -> None:
    write(tmp_path, city=CITY.replace('["resident"]', '["resident", "foreigner"]'))
    with pytest.raises(ConfigError, match="participant_kinds"):
        load_city("linz", tmp_path)


def test_a_rule_id_used_twice_is_refused(tmp_path: Path) -> None:
    twice = RULE.format(id="trees", activity="green") + RULE.format(id="trees", activity="other")
    write(tmp_path, rulebook=twice)
    with pytest.raises(ConfigError, match="'trees'"):
        load_city("linz", tmp_path)


def test_two_rules_for_one_activity_are_refused(tmp_path: Path) -> None:
    # Only one rule decides an activity; a second would silently never apply.
    twice = RULE.format(id="trees", activity="green") + RULE.format(id="more-trees", activity="green")
    write(tmp_path, rulebook=twice)
    with pytest.raises(ConfigError, match="'green'"):
        load_city("linz", tmp_path)


CATEGORIES = """
[merchant_categories]
food = "Lebensmittel"
cafe = "Cafés und Bars"
"""


def test_merchant_categories_are_codes_with_display_names(tmp_path: Path) -> None:
    assert load_city("linz", write(tmp_path)).config.merchant_categories == {}  # none declared
    city = load_city("linz", write(tmp_path, city=CITY + CATEGORIES))
    assert city.config.merchant_categories == {"food": "Lebensmittel", "cafe": "Cafés und Bars"}
    for key in city_keys():  # every packaged city declares its list
        assert load_city(key).config.merchant_categories


@pytest.mark.parametrize(
    "line",
    [
        '"Dr Maria Muster psychotherapy" = "Therapy"',  # free text is no code
        'Food = "Food"',  # codes are lowercase
        '"9shops" = "Shops"',
        f'{"x" * 33} = "Too long"',
        'food = ""',  # a display name is required
        'food = "   "',
        "food = 1",
    ],
)
def test_a_malformed_merchant_category_is_named(tmp_path: Path, line: str) -> None:
    write(tmp_path, city=CITY + "\n[merchant_categories]\n" + line + "\n")
    with pytest.raises(ConfigError, match="merchant_categories"):
        load_city("linz", tmp_path)


def test_claim_terms_and_desk_activities(tmp_path: Path) -> None:
    # Without the table: a 30-day window, and every kind may still be recorded at a desk.
    terms = load_city("linz", write(tmp_path)).config.claims
    assert (terms.max_age_days, terms.desk_activities) == (30, None)
    write(tmp_path, city=CITY + '\n[claims]\nmax_age_days = 7\ndesk_activities = ["green"]\n')
    terms = load_city("linz", tmp_path).config.claims
    assert (terms.max_age_days, terms.desk_activities) == (7, ["green"])
    write(tmp_path, city=CITY + "\n[claims]\nmax_age_days = -1\n")
    with pytest.raises(ConfigError, match="max_age_days"):
        load_city("linz", tmp_path)


def test_payouts_publish_an_exact_euro_value_and_a_valid_account_or_say_there_are_none(
    tmp_path: Path,
) -> None:
    terms = load_city("sint_niklaas").config.payouts
    assert terms is not None and Fraction(terms.euro_cents_per_token_unit or "") == Fraction(1, 2)
    zwolle = load_city("zwolle").config.payouts
    assert zwolle is not None and zwolle.none and not zwolle.euro_cents_per_token_unit
    good = (
        '\n[payouts]\neuro_cents_per_token_unit = "1/3"\n'
        'debtor_name = "Linz"\ndebtor_iban = "BE68539007547034"\n'
    )
    write(tmp_path, CITY + good)
    assert load_city("linz", tmp_path).config.payouts is not None
    for broken in (
        good.replace("BE68539007547034", "BE68539007547035"),  # check digits
        good.replace('"1/3"', '"-1/3"'),
        '\n[payouts]\neuro_cents_per_token_unit = "1"\n',  # no account
        '\n[payouts]\nnone = "no euro value"\neuro_cents_per_token_unit = "1"\n',
    ):
        write(tmp_path, CITY + broken)
        with pytest.raises(ConfigError, match="payouts"):
            load_city("linz", tmp_path)
