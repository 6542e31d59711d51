"""Headless Chromium loads the dashboard pages and finds the charts drawn with data."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.dashboard.conftest import ARTIFACTS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(url: str, profile: Path, *extra: str) -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI; dev.py test installs it with apt-get")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        "--window-size=900,2600",
    ]
    done = subprocess.run([CHROMIUM, *flags, *extra, url], capture_output=True, timeout=120, check=True)
    return done.stdout.decode()


def charts(dom: str) -> dict[str, int]:
    """chart name -> number of figures drawn (suppressed cells are not counted)."""
    found = re.findall(r'data-chart="([^"]+)"[^>]*data-points="(\d+)"', dom)
    found += [(n, p) for p, n in re.findall(r'data-points="(\d+)"[^>]*data-chart="([^"]+)"', dom)]
    return {name: int(points) for name, points in found}


def test_city_page_draws_every_chart_with_data(dashboard_url: str, tmp_path: Path) -> None:
    dom = chromium(f"{dashboard_url}/city/vienna", tmp_path / "profile", "--dump-dom")
    assert 'data-ready="yes"' in dom
    drawn = charts(dom)
    for name in (
        "issued-spent",
        "active",
        "top-rules",
        "spent-by-category",
        "redeemed",
        "redemptions-by-partner",
    ):
        assert drawn.get(name, 0) > 0, (name, drawn)
    # CO2 is computed from trip distances, which stay in the city's store: no chart of it.
    assert "co2" not in drawn
    assert dom.count("<path") >= 3 and dom.count('class="bar"') >= 2

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard-vienna.png"
    shot.unlink(missing_ok=True)
    chromium(f"{dashboard_url}/city/vienna", tmp_path / "profile2", f"--screenshot={shot}")
    assert shot.stat().st_size > 10_000


def test_workflow_city_page_draws_its_equilibrium_and_treasury(dashboard_url: str, tmp_path: Path) -> None:
    dom = chromium(f"{dashboard_url}/city/zwolle", tmp_path / "profile", "--dump-dom")
    assert 'data-ready="yes"' in dom
    drawn = charts(dom)
    assert drawn.get("equilibrium", 0) >= 3 * 4  # three months, at least four figures each
    assert drawn.get("steady-state", 0) == 2
    assert drawn.get("treasury", 0) == 1
    assert "How these figures are protected" in dom and "ε = 2 per day" in dom
    assert "Equilibrium: minted, depreciated, spent and money supply per month" in dom


def matrix_cells(dom: str) -> list[list[str]]:
    """The settlement matrix as drawn: rows of cell texts, the header row first."""
    table = re.search(r'<table class="matrix".*?</table>', dom, re.S)
    assert table, "no settlement matrix"
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(0), re.S)
    return [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows]


def test_federation_page_draws_the_settlement_matrix(dashboard_url: str, tmp_path: Path) -> None:
    dom = chromium(f"{dashboard_url}/", tmp_path / "profile", "--dump-dom")
    assert 'data-ready="yes"' in dom
    drawn = charts(dom)
    assert drawn.get("issued-per-city", 0) == 5
    # Four city pairs redeem across cities, each with enough people in its week to be shown.
    assert drawn.get("settlement") == 4 and 'class="matrix"' in dom
    assert drawn.get("redemptions-between-cities") == 4
    assert "net-positions" not in drawn  # exact nets are for partner nodes, not the public page
    assert "no data yet" not in dom and "suppressed (" not in dom

    head, *rows = matrix_cells(dom)
    assert head == ["owes ↓ / to →", "bologna", "rome", "sint_niklaas", "vienna", "zwolle"]
    drawn_matrix = {row[0]: dict(zip(head[1:], row[1:], strict=True)) for row in rows}
    for home, acceptor in (
        ("vienna", "sint_niklaas"),
        ("vienna", "rome"),
        ("rome", "sint_niklaas"),
        ("rome", "vienna"),
    ):
        # Noised, and floored at zero: one redeemer may move a pair's week by far more than
        # the demo's few tokens, so the figure shown may well be 0 (docs/RIGHTS.md section 8).
        assert int(drawn_matrix[home][acceptor].replace(",", "")) >= 0, (home, acceptor, drawn_matrix)
    assert drawn_matrix["bologna"]["vienna"] == "–"  # no redemptions: no claim

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard-federation.png"
    shot.unlink(missing_ok=True)
    chromium(f"{dashboard_url}/", tmp_path / "profile2", f"--screenshot={shot}")
    assert shot.stat().st_size > 10_000
