"""`civfed demo --json` end to end: real SQLite stores, run twice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from projections.city_totals import city_totals
from services.city import CityApplication
from services.config import load_city, load_settings

ROOT = Path(__file__).resolve().parents[2]


def run_demo(data_dir: Path) -> dict[str, dict[str, int]]:
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
    cities: dict[str, dict[str, int]] = json.loads(out.stdout)["cities"]
    return cities


def test_demo_summarises_four_cities_and_is_idempotent(tmp_path: Path) -> None:
    first = run_demo(tmp_path)
    assert set(first) == {"vienna", "rome", "sint_niklaas", "bologna"}
    for key, row in first.items():
        assert row["wallets"] > 0, key
        assert row["issued"] > 0, key
        assert row["outstanding"] == row["issued"] - row["spent"], key
    assert first["vienna"]["quantity"] > 0
    assert first["rome"]["prizes_claimed"] > 0
    assert first["vienna"]["vouchers_redeemed"] > 0

    second = run_demo(tmp_path)
    assert second == first


def test_vienna_tokens_equal_floor_of_co2_per_wallet(tmp_path: Path) -> None:
    reported = run_demo(tmp_path)["vienna"]
    settings = load_settings({"CIVFED_DATA_DIR": str(tmp_path)})
    app = CityApplication(load_city("vienna"), settings.eventsourcing_env("vienna"))
    totals = city_totals(app, "vienna")
    app.close()
    expected = sum(grams // 20_000 for grams in totals.per_wallet_quantity.values())
    assert reported["issued"] == expected == totals.issued
    assert reported["quantity"] == sum(totals.per_wallet_quantity.values())
