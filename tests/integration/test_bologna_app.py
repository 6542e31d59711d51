"""Bologna, and any new city, built from configuration alone."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest
from citykit import Cities, log_count, log_types, open_wallet, wallet_state

from aggregates.errors import AlreadyAwarded, NegativeAward, ParticipantNotAllowed, ProtectedAttribute
from services.rule_changes import FILE_PROPOSER
from services.settings.cities import PACKAGED_CITIES, load_city

ROOT = Path(__file__).resolve().parents[2]
# Files that only *use* Bologna as a name: the demo's story of simulated residents (which
# actions they take on which day) and a benchmark that picks it as its sample city. Bologna
# runs without either, as every other test here shows.
USES_ONLY = {Path("services/demo/scenario.py"), Path("benchmarks/projections.py")}
NOT_SOURCE = {".venv", ".git", "tests", "civfed", "cities", "build"}


def test_bologna_has_no_code_of_its_own() -> None:
    # The city is its two files; the kustomize component beside them only packages those
    # two files for Kubernetes (deploy/k8s) and holds no logic.
    files = sorted(p.name for p in (PACKAGED_CITIES / "bologna").iterdir())
    assert files == ["city.toml", "kustomization.yaml", "rulebook.toml"]
    component = (PACKAGED_CITIES / "bologna" / "kustomization.yaml").read_text()
    assert "kind: Component" in component and "bologna" not in component.lower()
    sources = [
        path.relative_to(ROOT)
        for pattern in ("*.py", "*.proto", "*.js", "*.toml")
        for path in ROOT.rglob(pattern)
        if path.relative_to(ROOT).parts[0] not in NOT_SOURCE
    ]
    assert Path("services/city.py") in sources and Path("aggregates/rules.py") in sources
    mentions = sorted(
        str(path)
        for path in sources
        if path not in USES_ONLY and re.search("bologna", (ROOT / path).read_text(), re.IGNORECASE)
    )
    assert mentions == []


def test_bologna_earns_by_its_rulebook(cities: Cities) -> None:
    app = cities.open("bologna")
    assert app.city.config.name == "Bologna"
    ann, bob = open_wallet(app, "w1"), open_wallet(app, "w2", "business")
    date = "2026-05-10"
    amounts = [
        app.execute(app.record_activity(f"a{i}", ann, "eco_action", {"action": a, "date": date}))["amount"]
        for i, a in enumerate(["bike_to_work", "bus_ride", "recycling_drop_off"])
    ]
    assert amounts == [6, 3, 8]
    clean = {"subject": "pulizia-1", "date": date}
    assert app.execute(app.record_activity("c1", ann, "civic_event", clean))["amount"] == 25
    assert app.execute(app.record_activity("c2", bob, "civic_event", clean))["amount"] == 25
    with pytest.raises(AlreadyAwarded):
        app.execute(app.record_activity("c3", ann, "civic_event", clean))
    assert [wallet_state(app, w)["balance"] for w in (ann, bob)] == [42, 25]
    with pytest.raises(ParticipantNotAllowed):
        open_wallet(app, "tourist", "tourist")


NEW_CITY = """
key = "graz"
name = "Graz"
participant_kinds = ["resident", "tourist"]
consent_versions = ["graz-2026-09"]
voucher_ttl_hours = 1

[currency]
name = "Grazer Punkte"

[vocabulary.actions]
trip = "A trip on foot instead of by car"
green_action = "Something green done for the city, from the points table"
tree_planted = "Planting a tree in a public space"
"""

NEW_RULEBOOK = """
[[rules]]
id = "walk-co2"
kind = "measured_quantity"
activity = "trip"
published_by = "Stadt Graz"
reason = "One point per 5 kg of CO2 saved"

[rules.params]
unit_grams = 5000
baseline_mode = "car"

[rules.params.factors_g_per_km]
car = 180
walk = 0

[[rules]]
id = "tree-planting"
kind = "fixed_per_action"
activity = "green_action"
published_by = "Stadt Graz"
reason = "Residents plant trees"

[rules.params.points]
tree_planted = 40

[rules.conditions]
participant_kinds = ["resident"]
"""


def write_city(folder: Path, city: str = NEW_CITY, rulebook: str = NEW_RULEBOOK) -> Path:
    (folder / "graz").mkdir(parents=True, exist_ok=True)
    (folder / "graz" / "city.toml").write_text(city)
    (folder / "graz" / "rulebook.toml").write_text(rulebook)
    return folder


def test_a_brand_new_city_works_from_two_files(cities: Cities, tmp_path: Path) -> None:
    folder = write_city(tmp_path / "cities")
    assert load_city("graz", folder).config.currency.name == "Grazer Punkte"
    # CIVFED_CITIES_DIR is how a deployment points civfed at its cities.
    app = cities.open("graz", cities_dir=folder)
    assert app.name == "civfed_graz"
    res = open_wallet(app, "w1")
    trip = {"mode": "walk", "distance_m": 30_000, "date": "2026-09-01"}  # 5.4 kg
    assert app.execute(app.record_activity("t1", res, "trip", trip))["amount"] == 1
    assert wallet_state(app, res)["carried"] == {"walk-co2": 400}
    tree = {"action": "tree_planted", "date": "2026-09-01"}
    assert app.execute(app.record_activity("g1", res, "green_action", tree))["amount"] == 40
    tourist = open_wallet(app, "w2", "tourist", valid_until=cities.clock() + dt.timedelta(days=6))
    with pytest.raises(ParticipantNotAllowed, match="tree-planting"):
        app.execute(app.record_activity("g2", tourist, "green_action", tree))
    assert wallet_state(app, res)["balance"] == 41


def test_a_new_city_with_a_forbidden_rule_does_not_start(cities: Cities, tmp_path: Path) -> None:
    protected = NEW_RULEBOOK.replace('participant_kinds = ["resident"]', 'nationality = ["AT"]')
    with pytest.raises(ProtectedAttribute, match="tree-planting"):
        cities.open("graz", cities_dir=write_city(tmp_path / "a", rulebook=protected))
    negative = NEW_RULEBOOK.replace("tree_planted = 40", "tree_planted = 40\nlittering = -10")
    with pytest.raises(NegativeAward, match="tree-planting"):
        cities.open("graz", cities_dir=write_city(tmp_path / "b", rulebook=negative))


def test_a_changed_rulebook_file_only_proposes_until_a_second_person_approves(
    cities: Cities, tmp_path: Path
) -> None:
    folder = tmp_path / "cities"
    shutil.copytree(PACKAGED_CITIES / "bologna", folder / "bologna")
    app = cities.open("bologna", cities_dir=folder)
    w = open_wallet(app, "w1")
    first = app.execute(
        app.record_activity("a1", w, "eco_action", {"action": "bus_ride", "date": "2026-05-10"})
    )
    assert (first["amount"], first["rule_version"]) == (3, 1)
    # The first rulebook is the founding version.
    assert app.rulebook.founded_at is not None

    # Reopening on an unchanged file writes nothing.
    before = log_count(app)
    app.close()
    app = cities.open("bologna", cities_dir=folder)
    assert log_count(app) == before
    app.close()

    path = folder / "bologna" / "rulebook.toml"
    text = path.read_text().replace("bus_ride = 3", "bus_ride = 4")
    # Drop the civic-event rule from the file: its retirement is proposed, not made.
    path.write_text(text[: text.index('[[rules]]\nid = "civic-event"')])
    app = cities.open("bologna", cities_dir=folder)
    # Starting on the edited file records two proposals by the file, and no new version.
    assert log_types(app)[before:] == ["Rulebook.ChangeProposed", "Rulebook.ChangeProposed"]
    proposals = app.rule_proposals("proposed")
    assert {(p["rule_id"], p["action"], p["proposed_by"]) for p in proposals} == {
        ("eco-actions", "change", FILE_PROPOSER),
        ("civic-event", "retire", FILE_PROPOSER),
    }
    still = app.execute(
        app.record_activity("a2", w, "eco_action", {"action": "bus_ride", "date": "2026-05-11"})
    )
    assert (still["amount"], still["rule_version"]) == (3, 1)
    # Starting again on the same file proposes nothing more.
    proposed = log_count(app)
    app.close()
    app = cities.open("bologna", cities_dir=folder)
    assert log_count(app) == proposed

    for i, p in enumerate(proposals):
        app.execute(
            app.approve_rule_change(f"ok{i}", p["proposal_id"], "Delibera di Giunta 2026/88", "staff:giunta")
        )
    app.refresh_rulebook()
    today = cities.clock().date()
    second = app.execute(
        app.record_activity("a3", w, "eco_action", {"action": "bus_ride", "date": today.isoformat()})
    )
    assert (second["amount"], second["rule_version"]) == (4, 2)
    assert app.rulebook.get("civic-event").active is False
    history = [type(e).__name__ for e in app.events.get(app.rulebook.id)]
    assert history == [
        "Created",
        "RulePublished",
        "RulePublished",
        "ChangeProposed",
        "ChangeProposed",
        "ChangeApproved",
        "ChangeApproved",
    ]
