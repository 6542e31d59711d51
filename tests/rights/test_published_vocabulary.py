"""A published vocabulary: every city declares the action and event kinds it rewards, each
with its purpose in plain words, and a rule may name only declared kinds. A new kind is a
visible change to the city file, never a word slipped into a points table."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregates.errors import ProtectedAttribute, RuleRejected
from aggregates.vocabulary import named_kinds
from services.settings.cities import city_keys, load_city
from tests.rights.apps import city_app, edited_cities


@pytest.mark.parametrize("key", city_keys())
def test_every_city_declares_each_kind_its_rules_name_with_a_purpose(key: str) -> None:
    city = load_city(key)
    vocabulary = city.config.vocabulary
    assert vocabulary.actions, f"{key} declares no action kinds"
    for spec in city.rules:
        for name, group in named_kinds(spec.kind, spec.activity, spec.params):
            declared = vocabulary.events if group == "event" else vocabulary.actions
            assert declared.get(name, "").strip(), f"{key}: {spec.id} names undeclared {group} {name}"


def test_a_rule_naming_an_undeclared_action_does_not_load(tmp_path: Path) -> None:
    cities = edited_cities(
        tmp_path, "bologna", "recycling_drop_off = 8\n", "recycling_drop_off = 8\nlitter_picking = 4\n"
    )
    with pytest.raises(RuleRejected) as err:
        city_app("bologna", tmp_path / "data", {"CIVFED_CITIES_DIR": str(cities)})
    assert err.value.rule_id == "eco-actions"
    assert "'litter_picking'" in err.value.problem and "vocabulary" in err.value.problem


def test_a_rule_naming_an_action_as_its_event_does_not_load(tmp_path: Path) -> None:
    # Bologna's civic-event rule is once per event: its activity must be a declared event kind.
    cities = edited_cities(tmp_path, "bologna", 'activity = "civic_event"', 'activity = "bus_ride"')
    with pytest.raises(RuleRejected) as err:
        city_app("bologna", tmp_path / "data", {"CIVFED_CITIES_DIR": str(cities)})
    assert err.value.rule_id == "civic-event" and "event kind 'bus_ride'" in err.value.problem


def test_a_declared_kind_that_is_a_proxy_does_not_load(tmp_path: Path) -> None:
    cities = edited_cities(
        tmp_path,
        "bologna",
        "[vocabulary.events]\n",
        '[vocabulary.events]\nfesta_di_partito = "A party festival"\n',
        file="city.toml",
    )
    with pytest.raises(ProtectedAttribute) as err:
        city_app("bologna", tmp_path / "data", {"CIVFED_CITIES_DIR": str(cities)})
    assert "festa_di_partito" in str(err.value)


def test_a_kind_without_a_purpose_does_not_load(tmp_path: Path) -> None:
    from services.settings.errors import ConfigError

    cities = edited_cities(
        tmp_path, "bologna", "[vocabulary.events]\n", '[vocabulary.events]\nfair = " "\n', file="city.toml"
    )
    with pytest.raises(ConfigError, match="vocabulary"):
        load_city("bologna", cities)


def test_check_config_names_the_rule_and_the_undeclared_kind(tmp_path: Path) -> None:
    from services.cli.check_config import check_rules

    cities = edited_cities(
        tmp_path, "bologna", "recycling_drop_off = 8\n", "recycling_drop_off = 8\nlitter_picking = 4\n"
    )
    problems = check_rules(load_city("bologna", cities))
    assert len(problems) == 1 and "'eco-actions'" in problems[0] and "'litter_picking'" in problems[0]
