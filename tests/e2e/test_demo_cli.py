"""`civfed demo --json` end to end: real SQLite stores, run twice."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from aggregates.depreciation import total_at
from projections.city_totals import city_totals
from projections.event_source import event_type, read_events
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
    cities: dict[str, dict[str, Any]] = json.loads(out.stdout)["cities"]
    return cities


def test_demo_summarises_five_cities_and_is_idempotent(tmp_path: Path) -> None:
    first = run_demo(tmp_path)
    assert set(first) == {"vienna", "rome", "sint_niklaas", "bologna", "zwolle"}
    for key, row in first.items():
        assert row["wallets"] > 0, key
        assert row["issued"] > 0, key
        if key != "zwolle":  # currencies without depreciation or tax
            assert row["depreciated"] == row["tax_paid"] == 0, key
            assert row["outstanding"] == row["issued"] - row["spent"], key
    zw = first["zwolle"]
    assert zw["depreciated"] > 0 and zw["tax_paid"] > 0
    assert zw["outstanding"] == zw["issued"] - zw["spent"] - zw["depreciated"] - zw["tax_paid"]
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


def test_demo_json_has_the_workflow_citys_equilibrium_figures(tmp_path: Path) -> None:
    zw = run_demo(tmp_path)["zwolle"]
    report = zw["equilibrium"]
    assert report["period_days"] == 2555 and report["k"] == 10
    months = report["months"]
    assert [m["month"] for m in months] == ["2026-05", "2026-06", "2026-07"]  # twelve weeks from 4 May
    minted = 0
    for m in months:
        assert m["minted"]["value"] > 0 and m["minted"]["people"] >= 10
        assert m["supply"]["value"] > 0 and m["supply"]["people"] >= 10
        minted += m["minted"]["value"]
    assert minted == zw["issued"]  # every minted token is in the report
    per_year = report["issuance_per_year"]["value"]
    assert per_year == minted * 12 // 3
    assert report["steady_state_supply"] == {"value": per_year * 2555 // 730}
    assert report["treasury_received"] == {
        "value": zw["tax_paid"],
        "people": report["treasury_received"]["people"],
    }
    assert report["treasury_received"]["people"] >= 10

    # `civfed workflow report` gives the same figures from the same store, as JSON and as a table.
    cli = [
        sys.executable,
        "-m",
        "services.cli",
        "workflow",
        "report",
        "--city",
        "zwolle",
        "--data-dir",
        str(tmp_path),
    ]
    as_json = subprocess.run(
        [*cli, "--json"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(as_json.stdout) == report
    table = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True, check=True, timeout=120).stdout
    assert "2026-07" in table
    assert f"{report['steady_state_supply']['value'] / 100:,.2f}" in table
    assert "projected steady-state supply (issuance/yr × period / 2)" in table

    # The report's closing supply is what the wallets are worth when July ends.
    settings = load_settings({"CIVFED_DATA_DIR": str(tmp_path)})
    app = CityApplication(load_city("zwolle"), settings.eventsourcing_env("zwolle"))
    try:
        wallets = {e.originator_id for _, e in read_events(app) if event_type(e) == "Wallet.Opened"}
        end = dt.date(2026, 8, 1)
        assert months[-1]["supply"]["value"] == sum(total_at(app.wallet(w).lots, end) for w in wallets)
        assert zw["outstanding"] == sum(app.wallet(w).balance for w in wallets)
    finally:
        app.close()
