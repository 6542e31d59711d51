"""The JSON API and pages of the dashboard service, over real HTTP."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

import pytest

CENT = Decimal("0.01")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:  # the first chart starts the engine
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def get_json(url: str) -> Any:
    status, body = get(url)
    assert status == 200, body
    return json.loads(body)


def figures(doc: Any) -> list[dict[str, Any]]:
    """Every figure in an API document: a dict with a value or a suppression."""
    if isinstance(doc, dict):
        if "suppressed" in doc or "value" in doc:
            return [doc]
        return [f for v in doc.values() for f in figures(v)]
    if isinstance(doc, list):
        return [f for v in doc for f in figures(v)]
    return []


def assert_protected(doc: Any) -> None:
    """Each figure says how it was protected; suppressed ones say nothing else; no head counts."""
    found = figures(doc)
    assert found
    for c in found:
        assert "people" not in c
        if c.get("suppressed"):
            assert set(c) == {"suppressed", "reason"}  # neither value nor head count leaks
        elif c["protection"]["method"] == "laplace":
            assert c["protection"]["k"] >= 10 and c["protection"]["epsilon"] > 0
            assert c["protection"]["period"].startswith("closed ")
        else:
            assert c["protection"]["method"] in {
                "sum of published cells",
                "ratio of published sums",
                "derived from published cells",
                "no one took part",
            }, c


def test_api_lists_cities_and_serves_protected_figures_of_closed_days(dashboard_url: str) -> None:
    assert get_json(f"{dashboard_url}/api/cities")["cities"] == [
        "bologna",
        "rome",
        "sint_niklaas",
        "vienna",
        "zwolle",
    ]
    vienna = get_json(f"{dashboard_url}/api/city/vienna")
    assert len(vienna["days"]) == 28  # the demo's four weeks, dated on its own clock, all closed now
    assert vienna["protection"]["epsilon_per_day"] == 2.0 and vienna["protection"]["k"] == 10
    assert vienna["protection"]["epsilon_per_week"] == vienna["protection"]["epsilon_per_month"] == 2.0
    # A trip's distance, and the CO2 it saved, is per-person detail: it stays in the city's store.
    assert not vienna["cells"].get("co2_g") and "co2_g" not in vienna["daily"]
    shown = [c for day in vienna["cells"]["issued_by_rule"].values() for c in day.values() if "value" in c]
    assert shown and all(c["protection"]["sensitivity"] > 0 for c in shown)
    # The season's shape: each day's issued figure is the sum of its published rule cells.
    for d, c in vienna["daily"]["issued"].items():
        cells = [x["value"] for x in vienna["cells"]["issued_by_rule"][d].values() if "value" in x]
        assert c.get("value", 0) == sum(cells), d
    assert_protected(vienna)
    federation = get_json(f"{dashboard_url}/api/federation")
    assert set(federation["protection"]) == {"bologna", "rome", "sint_niklaas", "vienna", "zwolle"}
    assert_protected(federation)


def test_a_reading_draws_nothing_new(dashboard_url: str) -> None:
    """Read twice: the same figures, since each closed cell was drawn once and kept."""
    first = get_json(f"{dashboard_url}/api/city/rome")
    assert get_json(f"{dashboard_url}/api/city/rome") == first
    assert get_json(f"{dashboard_url}/api/federation") == get_json(f"{dashboard_url}/api/federation")


def test_workflow_city_shows_its_equilibrium_and_treasury_as_aggregates(dashboard_url: str) -> None:
    zwolle = get_json(f"{dashboard_url}/api/city/zwolle")
    report = zwolle["equilibrium"]
    assert [m["month"] for m in report["months"]] == ["2026-05", "2026-06", "2026-07"]
    for m in report["months"]:
        for name in ("minted", "spent", "tax", "supply"):
            c = m[name]
            assert set(c) <= {"value", "suppressed", "reason", "empty", "protection"}, (m["month"], name, c)
    assert_protected(report)
    if "value" in report["issuance_per_year"]:
        assert report["steady_state_supply"]["value"] == report["issuance_per_year"]["value"] * 2555 // 730
    assert report["treasury_received"]["protection"] == {
        "method": "sum of published cells",
        "cells": report["treasury_received"]["protection"]["cells"],
    }
    # No per-person hours anywhere: only the rule's total, drawn from at least k people.
    assert list(zwolle["issued_by_rule"]) == ["approved-hours"]
    assert "minutes" not in json.dumps(zwolle)
    assert "co2" not in json.dumps(zwolle["equilibrium"])


def test_federation_api_serves_redemptions_between_cities_per_closed_week(dashboard_url: str) -> None:
    federation = get_json(f"{dashboard_url}/api/federation")
    pairs = {("vienna", "sint_niklaas"), ("vienna", "rome"), ("rome", "sint_niklaas"), ("rome", "vienna")}
    # The demo's nodes redeem in the season's last week, with ten or more people per pair.
    cells = {(c["from"], c["to"]): c for c in federation["settlement"]}
    assert set(cells) == pairs
    weekly = {(c["from"], c["to"], c["week"]): c for c in federation["settlement_by_week"]}
    assert {(f, t) for f, t, _ in weekly} == pairs and {w for _, _, w in weekly} == {"2026-05-25"}
    for (home, acceptor, _), c in weekly.items():
        assert (
            c["protection"]["method"] == "laplace" and c["protection"]["period"] == "closed week 2026-05-25"
        )
        assert cells[(home, acceptor)]["value"] == c["value"]
    # Exact settlement is not published (partner nodes read it): each net position is computed
    # from the published figures, both legs shown, in the city's own currency.
    assert "redemptions" not in federation
    rates = {("vienna", "rome"): (1, 2), ("rome", "vienna"): (2, 1)}  # acceptor, home -> rate
    rates |= {("sint_niklaas", "vienna"): (50, 1), ("sint_niklaas", "rome"): (25, 1)}
    nets = {(n["city"], n["partner"]): n for n in federation["net_positions"]}
    assert len(nets) == 6
    for (city, partner), n in nets.items():
        assert n["currency"] == federation["currencies"][city]["name"]
        credited, paid = n["credited_for_partner_tokens"], n["own_tokens_redeemed_at_partner"]
        assert n["net"]["value"] == credited["value"] - paid["value"]
        assert paid["value"] == (cells[(city, partner)]["value"] if (city, partner) in cells else 0)
        if (partner, city) in cells:
            numerator, denominator = rates[(city, partner)]
            assert credited["value"] == cells[(partner, city)]["value"] * numerator // denominator
            assert credited["protection"] == {"method": "derived from published cells"}
    assert_protected(federation["net_positions"])


@pytest.mark.parametrize("path", ["/", "/city/rome", "/city/vienna?lang=en"])
def test_pages_load_nothing_from_other_hosts(dashboard_url: str, path: str) -> None:
    """Charts are drawn on the server as inline SVG: no script, and no address but the
    SVG namespaces'."""
    status, page = get(dashboard_url + path)
    assert status == 200
    assert "<svg" in page and "<script" not in page
    assert "http://" not in re.sub(r'xmlns(:xlink)?="http://www.w3.org/[^"]*"', "", page)
    assert "https://" not in page
    assert get(f"{dashboard_url}/static/charts.js")[0] == 404


def test_unknown_city_is_404(dashboard_url: str) -> None:
    assert get(f"{dashboard_url}/api/city/atlantis")[0] == 404
    assert get(f"{dashboard_url}/city/atlantis")[0] == 404


def test_city_api_states_names_currency_units_and_the_accepting_side(dashboard_url: str) -> None:
    sint_niklaas = get_json(f"{dashboard_url}/api/city/sint_niklaas")
    assert sint_niklaas["local_name"] == "Sint-Niklaas" and sint_niklaas["locale"] == "nl-BE"
    assert sint_niklaas["currency"] == {"name": "Sengzen", "decimals": 2}
    units = sint_niklaas["units"]
    assert units["daily.issued"] == {"unit": "currency", "currency": "Sengzen", "smallest_unit_decimals": 2}
    assert units["daily.active"] == {"unit": "people"} and units["mean_hours_to_decision"] == {
        "unit": "hours"
    }
    # Every figure of the document has its unit stated.
    for name in ("issued_by_rule", "spent_by_category", "vouchers_redeemed", "prizes_redeemed", "appeals"):
        assert name in units, name
    for name in sint_niklaas["daily"]:
        assert f"daily.{name}" in units, name
    for name in sint_niklaas["weekly"]:
        assert f"weekly.{name}" in units, name
    # Partner redemptions taken by Sint-Niklaas's shops: the home figure and the Sengzen credited.
    accepted = sint_niklaas["accepted_from_partners"]
    assert set(accepted) == {"rome", "vienna"}
    assert accepted["vienna"]["home_currency"] == "Wienertoken" and accepted["vienna"]["rate"] == [50, 1]
    for a in accepted.values():
        numerator, denominator = a["rate"]
        assert a["credited"]["value"] == a["home_amount"]["value"] * numerator // denominator
    assert_protected(accepted)
    vienna = get_json(f"{dashboard_url}/api/city/vienna")
    assert vienna["units"]["daily.issued"]["currency"] == "Wienertoken" and vienna["local_name"] == "Wien"
    # CO2 saved, derived from the published tokens of Vienna's CO2 rule at its 20 kg per token.
    assert vienna["units"]["co2_saved_by_day"] == {"unit": "grams of CO2"}
    co2 = vienna["co2_saved_by_day"]
    assert set(co2) == {
        d for d, cells in vienna["cells"]["issued_by_rule"].items() if "mobility-co2" in cells
    }
    for day, figure in co2.items():
        cell = vienna["cells"]["issued_by_rule"][day]["mobility-co2"]
        assert figure.get("value") == (cell["value"] * 20_000 if "value" in cell else None), day
    assert_protected(co2)
    assert "co2_saved_by_day" not in sint_niklaas


def test_probes_report_live_and_ready(dashboard_url: str) -> None:
    assert get_json(f"{dashboard_url}/healthz") == {"status": "ok"}
    assert get_json(f"{dashboard_url}/readyz") == {"status": "ok"}


def test_readiness_fails_while_the_read_model_store_is_unreachable() -> None:
    from projections.store import Store
    from tests.dashboard.conftest import serving

    # Nothing listens on port 1: the store cannot connect.
    with serving(Store("postgresql://civfed@127.0.0.1:1/civfed")) as url:
        status, body = get(f"{url}/readyz")
        assert status == 503 and json.loads(body)["status"] == "unavailable", body
        assert get_json(f"{url}/healthz") == {"status": "ok"}  # alive: no restart loop over a database


def test_before_any_projection_every_page_says_no_data_yet_and_is_not_ready(empty_url: str) -> None:
    status, body = get(f"{empty_url}/readyz")
    assert status == 503 and json.loads(body)["status"] == "not ready", body
    assert "rm_cells" in json.loads(body)["missing"]
    assert get_json(f"{empty_url}/healthz") == {"status": "ok"}
    for path, words in (
        ("/", "No data yet."),
        ("/?lang=it", "Ancora nessun dato."),
        ("/city/vienna", "Noch keine Daten."),
        ("/city/rome", "Ancora nessun dato."),
        ("/city/sint_niklaas", "Nog geen gegevens."),
        ("/city/sint_niklaas?lang=en", "No data yet."),
    ):
        status, page = get(empty_url + path)
        assert status == 200 and words in page, (path, status, page[:300])
    assert get(f"{empty_url}/city/atlantis")[0] == 404
    cities = get_json(f"{empty_url}/api/cities")
    assert cities["ready"] is False and "vienna" in cities["cities"]
    assert cities["names"]["vienna"]["local_name"] == "Wien"
    for path in ("/api/federation", "/api/city/vienna", "/api/city/zwolle"):
        doc = get_json(empty_url + path)
        assert doc["ready"] is False and doc["status"] == "no data yet", (path, doc)
    assert get_json(f"{empty_url}/api/city/vienna")["message"].startswith("Noch keine Daten.")


def test_ready_once_the_projector_has_made_the_read_models(tmp_path: Any) -> None:
    """The projector makes the read models before its first event; from then on the store
    answers for them, though there is nothing in them yet."""
    from projections.projector import Projector
    from projections.store import Store
    from tests.dashboard.conftest import serving

    store = Store(f"sqlite:///{tmp_path / 'read_models.sqlite'}")
    with serving(store) as url:
        assert get(f"{url}/readyz")[0] == 503
        Projector(Store(store.url))
        assert get_json(f"{url}/readyz") == {"status": "ok"}
        status, page = get(f"{url}/city/vienna")
        assert status == 200 and "Noch keine Daten." in page
        doc = get_json(f"{url}/api/city/vienna")
        assert doc["days"] == [] and doc["units"]["daily.issued"]["currency"] == "Wienertoken"
        assert get_json(f"{url}/api/federation")["cities"] == []


@pytest.mark.postgres
def test_on_postgresql_not_ready_until_the_projector_made_the_read_models(pg_schemas: list[str]) -> None:
    from projections.projector import Projector
    from projections.store import Store
    from tests.conftest import PG_URL, new_schema
    from tests.dashboard.conftest import serving

    schema = new_schema(pg_schemas)
    with serving(Store(PG_URL, schema)) as url:
        status, body = get(f"{url}/readyz")
        assert status == 503 and json.loads(body)["status"] == "not ready", body
        status, page = get(f"{url}/city/rome")
        assert status == 200 and "Ancora nessun dato." in page
        assert get_json(f"{url}/api/federation")["status"] == "no data yet"
        projector_store = Store(PG_URL, schema)
        Projector(projector_store)
        projector_store.close()
        assert get_json(f"{url}/readyz") == {"status": "ok"}
        assert get(f"{url}/city/rome")[0] == 200


def test_the_finance_page_shows_budgets_exactly_and_monthly_figures_protected(dashboard_url: str) -> None:
    city = get_json(f"{dashboard_url}/api/city/sint_niklaas")
    d = get_json(f"{dashboard_url}/api/city/sint_niklaas/finance")
    assert d["city"] == "sint_niklaas" and d["euro_per_token"] == "0.50" and d["k"] >= 10
    # Budgets: the council's decisions, exact, with the euros at the published rate.
    funds = {f["fund_id"]: f for f in d["funds"]}
    assert {"flemish_grant", "city"} <= set(funds)
    for f in funds.values():
        if "budget" in f:
            assert f["protection"] == {"method": "public council decision, exact"}
            assert f["budget"] == f["declared"] + sum(t["amount"] for t in f["top_ups"])
            assert Decimal(f["budget_eur"]) == (Decimal(f["budget"]) / 200).quantize(CENT)
    # Each closed month's award per fund is the sum of the city page's published daily cells of
    # the fund's rules: nothing is measured anew.
    assert d["months"]
    cells = city["cells"]["issued_by_rule"]
    rules = {"flemish_grant": {"event-attendance", "local-cashback"}, "city": {"bike-engraving"}}
    for fund_id, fund_rules in rules.items():
        for month, figure in funds[fund_id]["awarded_by_month"].items():
            shown = [
                c["value"]
                for day, by_rule in cells.items()
                if day[:7] == month
                for rule, c in by_rule.items()
                if rule in fund_rules and "value" in c
            ]
            if shown:
                assert figure["value"] == sum(shown)
                assert figure["protection"]["method"] == "sum of published cells"
                assert Decimal(figure["eur"]["value"]) == (Decimal(figure["value"]) / 200).quantize(CENT)
            else:
                assert figure["suppressed"] is True
    for month, figure in d["redeemed_by_month"].items():
        assert month in d["months"]
        if "value" not in figure:
            assert set(figure) - {"eur"} == {"suppressed", "reason"}
    monthly = [
        {k: v for k, v in f.items() if k != "eur"}
        for fund in d["funds"]
        for f in fund["awarded_by_month"].values()
    ] + [{k: v for k, v in f.items() if k != "eur"} for f in d["redeemed_by_month"].values()]
    assert_protected(monthly)
    # The page: linked from the city page, in the city's language and in English.
    status, page = get(f"{dashboard_url}/city/sint_niklaas")
    assert status == 200 and 'href="/city/sint_niklaas/finance' in page
    status, page = get(f"{dashboard_url}/city/sint_niklaas/finance")
    assert status == 200 and 'data-ready="yes"' in page and "Fondsen en budgetten" in page
    assert "<h1>Sint-Niklaas: fondsen en waarvoor ze betaalden</h1>" in page
    assert re.search(r'data-chart="awarded-by-fund"[^>]*data-points="[1-9]', page), "no awards drawn"
    status, english = get(f"{dashboard_url}/city/sint_niklaas/finance?lang=en")
    assert status == 200 and "Funds and budgets" in english and "<svg" in english
    # No shop appears: no merchant id or shop name, only month totals.
    assert "merchant" not in json.dumps(d)
    status, _ = get(f"{dashboard_url}/city/atlantis/finance")
    assert status == 404


def test_a_city_without_a_euro_value_says_so_on_its_finance_page(dashboard_url: str) -> None:
    d = get_json(f"{dashboard_url}/api/city/zwolle/finance")
    assert d["euro_per_token"] is None
    assert all(f.get("budget_eur") is None for f in d["funds"])
    status, english = get(f"{dashboard_url}/city/zwolle/finance?lang=en")
    assert status == 200 and "has no euro value" in english
