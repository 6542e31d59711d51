"""`civfed demo --json` end to end: real SQLite stores, run twice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from projections.city_totals import city_totals
from projections.dashboard_view import federation_dashboard
from services.city import CityApplication
from services.config import load_city, load_settings
from services.stream_settings import load_stream_settings, read_model_store

ROOT = Path(__file__).resolve().parents[2]


def run_demo_json(data_dir: Path) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "demo",
            "--json",
            "--scale",
            "0.1",
            "--data-dir",
            str(data_dir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    found: dict[str, Any] = json.loads(out.stdout)
    return found


def run_demo(data_dir: Path) -> dict[str, dict[str, int]]:
    cities: dict[str, dict[str, int]] = run_demo_json(data_dir)["cities"]
    return cities


def federation_board(data_dir: Path) -> dict[str, Any]:
    """The federation dashboard's figures, from the read models the demo projected."""
    store = read_model_store(load_settings({"CIVFED_DATA_DIR": str(data_dir)}), load_stream_settings({}))
    try:
        with store.transaction() as tx:
            return federation_dashboard(tx)
    finally:
        store.close()


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo run twice on one data directory, with the federation board after each run."""
    data = tmp_path_factory.mktemp("demo")
    first = run_demo_json(data)
    board = federation_board(data)
    second = run_demo_json(data)
    return {"first": first, "second": second, "board": board, "board_again": federation_board(data)}


def test_demo_summarises_four_cities_and_is_idempotent(twice: dict[str, Any]) -> None:
    first = twice["first"]["cities"]
    assert set(first) == {"vienna", "rome", "sint_niklaas", "bologna"}
    for key, row in first.items():
        assert row["wallets"] > 0, key
        assert row["issued"] > 0, key
        # Burned: redeemed at partner cities' shops, owed in settlement.
        assert row["outstanding"] == row["issued"] - row["spent"] - row["burned"] - row["lapsed"], key
    redeemed_abroad = {
        home: sum(s["tokens"] for s in twice["first"]["federation"]["sales"] if s["home"] == home)
        for home in ("vienna", "rome")
    }
    assert {home: first[home]["burned"] for home in redeemed_abroad} == redeemed_abroad
    assert all(tokens > 0 for tokens in redeemed_abroad.values())
    assert first["vienna"]["quantity"] > 0
    assert first["rome"]["prizes_claimed"] > 0
    assert first["vienna"]["vouchers_redeemed"] > 0

    assert twice["second"]["cities"] == first


def test_demo_settles_redemptions_between_cities_on_its_own_stores(twice: dict[str, Any]) -> None:
    sales = twice["first"]["federation"]["sales"]
    pairs = {(s["home"], s["acceptor"]): s for s in sales}
    assert set(pairs) == {
        ("vienna", "sint_niklaas"),
        ("vienna", "rome"),
        ("rome", "sint_niklaas"),
        ("rome", "vienna"),
    }
    assert all(s["people"] >= 10 and s["tokens"] > 0 and s["credited"] > 0 for s in sales)
    nodes = {(p["city"], p["partner"]): p for p in twice["first"]["federation"]["positions"]}
    for (home, acceptor), sale in pairs.items():
        assert nodes[(home, acceptor)]["payable"] == sale["tokens"]
        assert nodes[(acceptor, home)]["receivable"] == sale["tokens"]
    # Sint-Niklaas only accepts: its net is what its shops were credited.
    assert nodes[("sint_niklaas", "vienna")]["net"] == pairs[("vienna", "sint_niklaas")]["credited"]
    assert nodes[("vienna", "rome")]["net"] == (
        pairs[("rome", "vienna")]["credited"] - pairs[("vienna", "rome")]["tokens"]
    )

    # The redemptions are in the demo's data set: projected, and shown, not suppressed.
    board = twice["board"]
    assert {(c["from"], c["to"]): (c["value"], c["people"]) for c in board["settlement"]} == {
        pair: (sale["tokens"], sale["people"]) for pair, sale in pairs.items()
    }
    assert {(c["from"], c["to"]): (c["value"], c["people"]) for c in board["redemptions"]} == {
        pair: (sale["people"], sale["people"]) for pair, sale in pairs.items()
    }
    # The read model's net positions agree with what the city nodes report.
    nets = {
        (city, partner): cell["value"]
        for city, partners in board["net_positions"].items()
        for partner, cell in partners.items()
    }
    assert nets == {pair: p["net"] for pair, p in nodes.items()}
    assert all(
        cell["people"] >= 10 for partners in board["net_positions"].values() for cell in partners.values()
    )

    # Run again: every call replays its receipt; no figure moves, nothing is refused.
    assert twice["second"]["federation"] == twice["first"]["federation"]
    assert twice["board_again"] == board


def test_vienna_tokens_equal_floor_of_co2_per_wallet(tmp_path: Path) -> None:
    reported = run_demo(tmp_path)["vienna"]
    settings = load_settings({"CIVFED_DATA_DIR": str(tmp_path)})
    app = CityApplication(load_city("vienna"), settings.eventsourcing_env("vienna"))
    totals = city_totals(app, "vienna")
    app.close()
    expected = sum(grams // 20_000 for grams in totals.per_wallet_quantity.values())
    assert reported["issued"] == expected == totals.issued
    assert reported["quantity"] == sum(totals.per_wallet_quantity.values())
