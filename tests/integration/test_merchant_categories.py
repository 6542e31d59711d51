"""A merchant's category is a code from the city's closed list, never free text."""

from __future__ import annotations

import shutil
from pathlib import Path
from uuid import UUID

import pytest
from citykit import Cities, log_count, log_types

from aggregates.errors import InvalidInput
from services.settings.cities import PACKAGED_CITIES, city_keys

FREE_TEXT = "BBNAME Dr Maria Muster psychotherapy"


@pytest.mark.parametrize("category", [FREE_TEXT, "psychotherapy", "Food", "food ", ""])
def test_a_category_outside_the_citys_list_is_refused_and_nothing_is_stored(
    cities: Cities, category: str
) -> None:
    app = cities.open("vienna")
    before = log_count(app)
    singly = app.register_merchant("m1", "Praxis", category, True)
    with pytest.raises(InvalidInput) as err:
        app.execute(singly)
    assert err.value.field == "category"
    # It lists what is allowed, and does not repeat what was given.
    allowed = ", ".join(sorted(app.city.config.merchant_categories))
    assert str(err.value) == f"category: not one of this city's categories; allowed: {allowed}"
    assert FREE_TEXT not in str(err.value)
    assert log_count(app) == before  # no merchant, and no receipt: the key stays free
    # Grouped, as the node's writer runs commands: the same refusal, beside a valid registration.
    grouped = app.execute_group([app.register_merchant("m2", "Praxis", category, True), singly])
    assert [type(r) for r in grouped] == [InvalidInput, InvalidInput]
    assert log_count(app) == before
    fixed = app.execute_group(
        [
            app.register_merchant("m1", "Praxis", "culture", True),
            app.register_merchant("m3", "X", category, True),
        ]
    )
    assert isinstance(fixed[0], dict) and isinstance(fixed[1], InvalidInput)
    assert log_types(app).count("Merchant.Registered") == 1
    assert app.repository.get(UUID(fixed[0]["merchant_id"])).category == "culture"


def test_every_packaged_city_accepts_its_declared_categories_only(cities: Cities) -> None:
    for key in city_keys():
        app = cities.open(key)
        declared = app.city.config.merchant_categories
        assert {"food", "retail"} <= set(declared)
        for code in declared:
            app.execute(app.register_merchant(f"m-{code}", "Shop", code, True))
        with pytest.raises(InvalidInput, match=r"^category: "):
            app.execute(app.register_merchant("m-other", "Shop", "psychotherapy", True))
        assert log_types(app).count("Merchant.Registered") == len(declared)


def test_a_city_without_the_table_registers_no_merchant(cities: Cities, tmp_path: Path) -> None:
    folder = tmp_path / "cities"
    shutil.copytree(PACKAGED_CITIES / "bologna", folder / "bologna")
    toml = folder / "bologna" / "city.toml"
    text = toml.read_text()
    toml.write_text(text[: text.index("\n# Merchant categories")] + "\n")
    app = cities.open("bologna", cities_dir=folder)
    assert app.city.config.merchant_categories == {}
    with pytest.raises(InvalidInput) as err:
        app.execute(app.register_merchant("m", "Coop", "food", True))
    assert str(err.value) == "category: this city declares no merchant categories"
    assert "Merchant.Registered" not in log_types(app)
