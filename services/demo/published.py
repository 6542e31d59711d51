"""What the demo's dashboards publish: each city's season as closed, protected figures.

The demo's ledger table is the operator's own check of its stores (conservation); this is
what anyone else sees of the same season, read through the same view as the dashboard and
its JSON API, so the three cannot disagree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from projections.dashboard_view import cities, city_dashboard, federation_dashboard
from services.settings.cities import Settings, load_city
from services.settings.disclosure import disclosure_policies
from services.settings.stream import load_stream_settings, read_model_store


def _season(days: dict[str, dict[str, Any]]) -> dict[str, Any]:
    shown = [c["value"] for c in days.values() if "value" in c]
    return {"days": len(days), "suppressed_days": len(days) - len(shown), "total": sum(shown)}


def published_figures(settings: Settings, now: dt.datetime | None = None) -> dict[str, Any]:
    """Per city: closed days, suppressed days and the season's published sums; per pair of
    cities: tokens redeemed at the partner's shops, as published (noised, closed weeks)."""
    store = read_model_store(settings, load_stream_settings({}))
    policies = disclosure_policies(settings.CIVFED_CITIES_DIR)
    at = now or dt.datetime.now(dt.UTC)
    try:
        with store.transaction() as tx:
            boards = {c: city_dashboard(tx, c, policies.get(c), at) for c in cities(tx)}
            settlement = federation_dashboard(tx, policies, at)["settlement"]
    finally:
        store.close()
    configs = {city: load_city(city, settings.CIVFED_CITIES_DIR).config for city in boards}
    seasons = {
        city: {
            **{metric: _season(board["daily"][metric]) for metric in ("issued", "spent")},
            "epsilon_per_day": board["protection"]["epsilon_per_day"],
            "k": board["k"],
            "decimals": configs[city].currency.decimals,
            "name": configs[city].name,
            "currency": configs[city].currency.name,
        }
        for city, board in boards.items()
    }
    return {"cities": seasons, "settlement": settlement}


def _amount(season: dict[str, Any], decimals: int) -> str:
    if not season["days"]:
        return "-"
    return f"{season['total'] / 10**decimals:,.{decimals}f}"


def render_published(published: dict[str, Any]) -> str:
    lines = [
        "Published figures (what the dashboards and their JSON API show): closed days only; a cell from",
        "fewer than k people suppressed, every other noised once (discrete Laplace, ε per day) and kept;",
        "each season total is the sum of the published days (suppr.: days withheld).",
        f"{'city':<14}{'ε/day':>6}{'days':>6}{'issued':>13}{'suppr.':>8}{'spent':>13}{'suppr.':>8}  currency",
    ]
    for c in published["cities"].values():
        lines.append(
            f"{c['name']:<14}{c['epsilon_per_day']:>6}{c['issued']['days']:>6}"
            f"{_amount(c['issued'], c['decimals']):>13}{c['issued']['suppressed_days']:>8}"
            f"{_amount(c['spent'], c['decimals']):>13}{c['spent']['suppressed_days']:>8}  {c['currency']}"
        )
    lines += [
        "",
        "Tokens redeemed at partner cities' shops, published per closed week (in the home city's currency,",
        "noised and floored at zero; one redeemer may move a week by up to the partner's cap, so small",
        "figures are mostly noise):",
    ]
    known = published["cities"]

    def redeemed(s: dict[str, Any]) -> str:
        home = known.get(s["from"], {"name": s["from"], "currency": "", "decimals": 0})
        to = known.get(s["to"], {"name": s["to"]})["name"]
        if "value" not in s:
            return f"  {home['name']} → {to}: suppressed"
        d = home["decimals"]
        return f"  {home['name']} → {to}: {s['value'] / 10**d:,.{d}f} {home['currency']}"

    lines += [redeemed(s) for s in published["settlement"]]
    return "\n".join(lines)
