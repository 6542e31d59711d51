"""The JSON API and pages of the dashboard service, over real HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def get_json(url: str) -> Any:
    status, body = get(url)
    assert status == 200, body
    return json.loads(body)


def test_api_lists_cities_and_serves_k_anonymous_figures(dashboard_url: str) -> None:
    assert get_json(f"{dashboard_url}/api/cities")["cities"] == [
        "bologna",
        "rome",
        "sint_niklaas",
        "vienna",
        "zwolle",
    ]
    vienna = get_json(f"{dashboard_url}/api/city/vienna")
    assert len(vienna["days"]) == 28  # the demo's four weeks, dated on its own clock
    issued = [c for c in vienna["daily"]["issued"].values() if not c.get("suppressed")]
    assert issued and all(c["value"] > 0 and c["people"] >= 10 for c in issued)
    # A trip's distance, and the CO2 it saved, is per-person detail: it stays in the city's store.
    assert not vienna["daily"].get("co2_g")
    for cells in (vienna["daily"]["issued"], vienna["issued_by_rule"], vienna["spent_by_category"]):
        for c in cells.values():
            assert c.get("suppressed") or c["people"] >= 10
            if c.get("suppressed"):
                assert set(c) == {"suppressed", "reason"}  # neither value nor head count leaks
    federation = get_json(f"{dashboard_url}/api/federation")
    assert set(federation["net_positions"]) == {"bologna", "rome", "sint_niklaas", "vienna", "zwolle"}


def test_workflow_city_shows_its_equilibrium_and_treasury_as_aggregates(dashboard_url: str) -> None:
    zwolle = get_json(f"{dashboard_url}/api/city/zwolle")
    report = zwolle["equilibrium"]
    assert [m["month"] for m in report["months"]] == ["2026-05", "2026-06", "2026-07"]
    for m in report["months"]:
        for name in ("minted", "spent", "tax", "supply"):
            c = m[name]
            assert c.get("suppressed") or c["people"] >= 10, (m["month"], name, c)
            assert set(c) <= {"value", "people", "suppressed", "reason", "empty"}
    assert report["steady_state_supply"]["value"] == report["issuance_per_year"]["value"] * 2555 // 730
    assert report["treasury_received"]["value"] > 0 and report["treasury_received"]["people"] >= 10
    # No per-person hours anywhere: only the rule's total, drawn from at least k people.
    assert list(zwolle["issued_by_rule"]) == ["approved-hours"]
    assert "minutes" not in json.dumps(zwolle)
    assert "co2" not in json.dumps(zwolle["equilibrium"])


def test_federation_api_serves_redemptions_between_cities_and_settlement(dashboard_url: str) -> None:
    federation = get_json(f"{dashboard_url}/api/federation")
    pairs = {("vienna", "sint_niklaas"), ("vienna", "rome"), ("rome", "sint_niklaas"), ("rome", "vienna")}
    # The demo's nodes redeem with enough people per pair that every figure is shown.
    for name in ("settlement", "redemptions"):
        cells = {(c["from"], c["to"]): c for c in federation[name]}
        assert set(cells) == pairs, name
        assert all(c["value"] > 0 and c["people"] >= 10 for c in cells.values()), cells
    counts = {(c["from"], c["to"]): c for c in federation["redemptions"]}
    # One voucher per person: as many redemptions as people.
    assert all(c["value"] == c["people"] for c in counts.values())
    nets = federation["net_positions"]
    shown = [cell for partners in nets.values() for cell in partners.values()]
    assert len(shown) == 6 and all(not c.get("suppressed") and c["people"] >= 10 for c in shown)
    # Sint-Niklaas only accepts: the partners owe it; both pay out there.
    assert nets["sint_niklaas"]["vienna"]["value"] > 0 > nets["vienna"]["sint_niklaas"]["value"]


@pytest.mark.parametrize("path", ["/", "/city/rome"])
def test_pages_load_nothing_from_other_hosts(dashboard_url: str, path: str) -> None:
    status, page = get(dashboard_url + path)
    assert status == 200
    assert '<script src="/static/charts.js">' in page
    assert "http://" not in page and "https://" not in page
    status, script = get(f"{dashboard_url}/static/charts.js")
    assert status == 200 and "https://" not in script.replace("http://www.w3.org/2000/svg", "")


def test_unknown_city_is_404(dashboard_url: str) -> None:
    assert get(f"{dashboard_url}/api/city/atlantis")[0] == 404
    assert get(f"{dashboard_url}/city/atlantis")[0] == 404


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
