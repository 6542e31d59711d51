"""Headless Chromium loads every dashboard page: each in its city's language, with its names and
currency, charts with axis ticks, no console error and no request to any host but the
dashboard's own. Each page's screenshot is written to build/screenshots/."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.dashboard.conftest import SCREENSHOTS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Nothing but the loopback address resolves: a page that asked for another host would
    # fail, and the request is still logged for the assertion below.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=10000",
    "--window-size=1000,3200",
]


@dataclass
class Load:
    dom: str
    console: list[str]  # what the page wrote to its console
    requests: list[str]  # every URL the page (not the browser itself) asked for


def load(url: str, tmp: Path, *extra: str) -> Load:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI; dev.py test installs it with apt-get")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    tmp.mkdir(parents=True, exist_ok=True)
    net = tmp / "net.json"
    flags = [*BROWSER_FLAGS, f"--user-data-dir={tmp / 'profile'}", f"--log-net-log={net}"]
    done = subprocess.run([CHROMIUM, *flags, *extra, url], capture_output=True, timeout=120, check=True)
    console = [line for line in done.stderr.decode(errors="replace").splitlines() if ":CONSOLE" in line]
    return Load(done.stdout.decode(), console, page_requests(net))


def page_requests(net_log: Path) -> list[str]:
    """URLs of the requests a page made, from Chromium's net log: the browser's own (update
    checks and the like) carry no initiating origin and are left out."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start
        and "url" in e.get("params", {})
        and e["params"].get("initiator") != "not an origin"
    ]


def foreign(requests: list[str]) -> list[str]:
    return [u for u in requests if urllib.parse.urlsplit(u).hostname not in ("127.0.0.1", "localhost")]


def charts(dom: str) -> dict[str, int]:
    """chart name -> number of published figures drawn (suppressed ones are not counted)."""
    return {name: int(n) for name, n in re.findall(r'data-chart="([^"]+)"[^>]*data-points="(\d+)"', dom)}


def ticks(dom: str) -> int:
    return dom.count("role-axis-tick")


def screenshot(url: str, tmp: Path, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{name}.png"
    shot.unlink(missing_ok=True)
    load(url, tmp, f"--screenshot={shot}")
    assert shot.stat().st_size > 10_000, shot


def test_the_checks_see_console_errors_and_other_hosts(tmp_path: Path) -> None:
    """The two checks every page passes below do catch a page that breaks them."""
    bad = load(
        'data:text/html,<script>console.error("broken")</script><img src="http://example.com/x.png">',
        tmp_path,
        "--dump-dom",
    )
    assert any("broken" in line for line in bad.console), bad.console
    assert foreign(bad.requests) == ["http://example.com/x.png"], bad.requests


# city key -> (language tag, title, a heading, the currency as the page names it)
CITY_PAGES = {
    "vienna": (
        "de-AT",
        "Wien: Wienertoken",
        "Pro Tag ausgegebene und eingelöste Token, in Wienertoken",
        "Wienertoken",
    ),
    "rome": (
        "it-IT",
        "Roma: punti Smart Citizen Wallet",
        "Token emessi e spesi al giorno, in punti Smart Citizen Wallet",
        "punti Smart Citizen Wallet",
    ),
    "bologna": (
        "it-IT",
        "Bologna: punti Smart Citizen",
        "Token emessi per regola, in punti Smart Citizen",
        "punti Smart Citizen",
    ),
    "sint_niklaas": ("nl-BE", "Sint-Niklaas: Sengzen", "Uitgegeven tokens per regel, in Sengzen", "Sengzen"),
    "zwolle": ("nl-NL", "Zwolle: Zwolse uren", "Evenwicht per maand, in Zwolse uren", "Zwolse uren"),
}


@pytest.mark.parametrize("city", sorted(CITY_PAGES))
def test_city_page_in_its_language_with_charts_and_nothing_from_elsewhere(
    dashboard_url: str, tmp_path: Path, city: str
) -> None:
    tag, title, heading, currency = CITY_PAGES[city]
    page = load(f"{dashboard_url}/city/{city}", tmp_path / "dom", "--dump-dom")
    assert 'data-ready="yes"' in page.dom
    assert f'<html lang="{tag}">' in page.dom
    assert f"<title>{title} · civfed</title>" in page.dom and f"<h1>{title}</h1>" in page.dom
    assert heading in page.dom and currency in page.dom
    assert "sint_niklaas" not in re.sub(r'(href|data-[a-z]+)="[^"]*"', "", page.dom)  # names, not keys
    assert page.console == [], page.console
    assert page.requests and foreign(page.requests) == [], page.requests
    drawn = charts(page.dom)
    for name in ("issued-spent", "active", "top-rules"):
        assert drawn.get(name, 0) > 0, (name, drawn)
    assert ticks(page.dom) >= 10 and "role-axis-grid" in page.dom and "role-legend" in page.dom
    assert page.dom.count("<title>") > 10  # every drawn figure has its tooltip
    # A CO2 chart only where a rule rewards CO2 saved (Vienna's), in kilograms or tonnes.
    if city == "vienna":
        assert "co2-saved" in drawn and "Eingespartes CO2 pro Tag, in kg CO2" in page.dom
    else:
        assert not any("co2" in name for name in drawn) and "CO2" not in page.dom
    screenshot(f"{dashboard_url}/city/{city}", tmp_path / "shot", f"city-{city}")


def test_sint_niklaas_shows_the_partner_redemptions_its_shops_accepted(
    dashboard_url: str, tmp_path: Path
) -> None:
    page = load(f"{dashboard_url}/city/sint_niklaas", tmp_path, "--dump-dom")
    assert "Tokens van partnersteden aanvaard door winkels hier, in Sengzen" in page.dom
    table = re.search(r'<table class="matrix" data-table="accepted">.*?</table>', page.dom, re.S)
    assert table, "no table of accepted redemptions"
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", table.group(0))
    assert {r[0] for r in rows} == {"Roma", "Wien"}
    for home, redeemed, rate, credited in rows:
        assert redeemed.endswith(("Wienertoken", "Smart Citizen Wallet-punten")) and credited.endswith(
            "Sengzen"
        )
        numerator, denominator = (int(x) for x in rate.split("/"))
        home_units = int(re.sub(r"\D", "", redeemed))
        cents = int(re.sub(r"\D", "", credited))  # two decimals: hundredths of a Sengzen
        assert cents == home_units * numerator // denominator, (home, redeemed, rate, credited)
    assert charts(page.dom).get("accepted-from-partners") == len(rows)


def test_a_city_page_in_english_on_request(dashboard_url: str, tmp_path: Path) -> None:
    page = load(f"{dashboard_url}/city/vienna?lang=en", tmp_path / "dom", "--dump-dom")
    assert '<html lang="en">' in page.dom and "<h1>Wien: Wienertoken</h1>" in page.dom
    assert "Tokens issued and spent per day, in Wienertoken" in page.dom
    assert "Pro Tag" not in page.dom
    assert page.console == [] and foreign(page.requests) == []
    screenshot(f"{dashboard_url}/city/vienna?lang=en", tmp_path / "shot", "city-vienna-en")


def table_rows(dom: str, chart: str) -> list[list[str]]:
    table = re.search(rf'<table class="matrix" data-chart="{chart}".*?</table>', dom, re.S)
    assert table, f"no {chart} table"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(0), re.S)
    return [
        [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, re.S)] for r in rows
    ]


def amount(text: str) -> int:
    """A figure as written on the English page (1,036.44 Sengzen) in the smallest unit."""
    number = re.match(r"(-?[\d,]+(?:\.\d+)?)", text)
    assert number, text
    return int(number.group(1).replace(",", "").replace(".", ""))


def test_federation_page_each_city_in_its_currency_with_both_legs_of_every_net(
    dashboard_url: str, tmp_path: Path
) -> None:
    page = load(f"{dashboard_url}/", tmp_path / "dom", "--dump-dom")
    assert 'data-ready="yes"' in page.dom and "<title>Federation dashboard · civfed</title>" in page.dom
    assert page.console == [] and page.requests and foreign(page.requests) == [], page.requests
    drawn = charts(page.dom)
    assert drawn.get("issued-per-city") == 5
    # Small multiples: one chart per city, each on its own currency's axis.
    for city, currency in (
        ("vienna", "Wienertoken"),
        ("rome", "Smart Citizen Wallet points"),
        ("sint_niklaas", "Sengzen"),
        ("zwolle", "Zwolse uren"),
        ("bologna", "Smart Citizen points"),
    ):
        assert drawn.get(f"issued-{city}", 0) > 0, (city, drawn)
        assert currency in page.dom
    assert ticks(page.dom) >= 10

    # Four city pairs redeem across cities: each row names both currencies.
    head, *rows = table_rows(page.dom, "redemptions-between-cities")
    assert head[0] == "home city" and len(rows) == 4
    pairs = {(r[0], r[1]): r for r in rows}
    assert set(pairs) == {
        ("Roma", "Wien"),
        ("Roma", "Sint-Niklaas"),
        ("Wien", "Sint-Niklaas"),
        ("Wien", "Roma"),
    }
    assert pairs[("Wien", "Sint-Niklaas")][2].endswith("Wienertoken")
    assert pairs[("Wien", "Sint-Niklaas")][4].endswith("Sengzen")

    # Each net is its two legs' difference, both printed, in the city's own currency.
    head, *nets = table_rows(page.dom, "net-positions")
    assert len(head) == 5 and len(nets) == 6
    for city, partner, credited, paid, net in nets:
        assert amount(net) == amount(credited) - amount(paid), (city, partner, credited, paid, net)
        unit = credited.split(" ", 1)[1]
        assert paid.endswith(unit) and net.endswith(unit)
    screenshot(f"{dashboard_url}/", tmp_path / "shot", "federation")


def test_federation_page_in_german_on_request(dashboard_url: str, tmp_path: Path) -> None:
    page = load(f"{dashboard_url}/?lang=de", tmp_path, "--dump-dom")
    assert "<h1>Dashboard der Föderation</h1>" in page.dom and "Einlösungen zwischen Städten" in page.dom
    assert "Smart-Citizen-Wallet-Punkte" in page.dom


def test_an_empty_store_says_no_data_yet(empty_url: str, tmp_path: Path) -> None:
    for path, name, words in (
        ("/", "federation-empty", "No data yet."),
        ("/city/vienna", "city-vienna-empty", "Noch keine Daten."),
        ("/city/zwolle", "city-zwolle-empty", "Nog geen gegevens."),
    ):
        page = load(empty_url + path, tmp_path / name, "--dump-dom")
        assert 'data-ready="no-data"' in page.dom and words in page.dom, path
        assert page.console == [] and foreign(page.requests) == []
        screenshot(empty_url + path, tmp_path / f"{name}-shot", name)


def test_the_finance_page_in_the_citys_language_with_its_chart_and_nothing_from_elsewhere(
    dashboard_url: str, tmp_path: Path
) -> None:
    page = load(f"{dashboard_url}/city/sint_niklaas/finance", tmp_path / "dom", "--dump-dom")
    assert 'data-ready="yes"' in page.dom and '<html lang="nl-BE">' in page.dom
    assert "<h1>Sint-Niklaas: fondsen en waarvoor ze betaalden</h1>" in page.dom
    assert "Fondsen en budgetten" in page.dom and "Sengzen" in page.dom
    assert page.console == [], page.console
    assert page.requests and foreign(page.requests) == [], page.requests
    assert charts(page.dom).get("awarded-by-fund", 0) > 0, charts(page.dom)
    screenshot(f"{dashboard_url}/city/sint_niklaas/finance", tmp_path / "shot", "finance-sint_niklaas")
