"""Starlette app over the read-model store. Every figure is published by `projections.disclosure`:
closed periods only, k people per cell, Laplace noise drawn once and stored (the one write).

Routes: `/` (federation page), `/city/{city}` (city page), `/city/{city}/finance` (the
city's funds and what they paid for, projections/finance_view.py), `/api/cities`,
`/api/city/{city}`, `/api/city/{city}/finance`, `/api/federation`, `/static/...` (the style
sheet), and `/healthz` (the process answers) and `/readyz` (the read models exist and the
store answers) for liveness and readiness probes.

Pages are written on the server in the city's language (`?lang=en` for English) from the
`dashboard` gettext domain, with each city's name, currency name and decimals from its
city.toml. Charts are Vega-Lite specifications rendered to SVG in this process
(`services/dashboard/charts.py`), so a page loads nothing from anywhere else and needs no
script. Before the first projection every page and API answers 200 and says there is no data
yet, while `/readyz` answers 503.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from babel.numbers import format_decimal
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from projections.dashboard_view import cities, city_dashboard, federation_dashboard
from projections.disclosure import Policy
from projections.finance_view import finance_dashboard
from projections.projector import default_models
from projections.store import Store
from services.clock import Clock, utcnow
from services.dashboard import charts
from services.dashboard.charts import Point
from services.i18n import format_amount, format_number, language_of, parse_locale, translations
from services.settings.cities import PACKAGED_CITIES, CityConfig, RuleSpec, city_keys, load_city

STATIC = Path(__file__).resolve().parent / "static"
LANGUAGES = ("en", "de", "it", "nl")
LATER = (
    "The figures appear here once the events have been projected into the read models and a day has closed."
)
OWN_UNITS = "Each city publishes in its own currency: no two currencies share a scale."
# Where the federation page's figures are read in no city's language.
FEDERATION_LOCALE = "en"


@dataclass(frozen=True)
class CityInfo:
    """What a page needs of a city's config: its names, language and currency."""

    key: str
    name: str
    local_name: str
    locale: str
    currency: str
    decimals: int
    # partner city -> (numerator, denominator): partner's units in, this city's smallest units out
    accepts: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    categories: Mapping[str, str] = field(default_factory=dict)
    redeemable_at: tuple[str, ...] = ()
    # rule id -> grams of CO2 per smallest unit awarded, for each rule that rewards CO2 saved
    co2_rules: Mapping[str, int] = field(default_factory=dict)
    # The published euro value of a token (None: the currency has none), and fund id ->
    # (name, funder, period), from city.toml.
    euro_per_token: Decimal | None = None
    funds: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)

    @staticmethod
    def of(config: CityConfig, rules: list[RuleSpec] | None = None) -> CityInfo:
        return CityInfo(
            key=config.key,
            name=config.name,
            local_name=config.local_name or config.name,
            locale=config.locale,
            currency=config.currency.name,
            decimals=config.currency.decimals,
            accepts={
                home: (terms.rate_numerator, terms.rate_denominator)
                for home, terms in config.federation.accepts.items()
            },
            categories=dict(config.merchant_categories),
            redeemable_at=tuple(config.federation.redeemable_at),
            co2_rules={
                r.id: int(r.params["unit_grams"])
                for r in rules or []
                if r.kind == "measured_quantity" and "unit_grams" in r.params
            },
            euro_per_token=config.euro_per_token,
            funds={fund_id: (spec.name, spec.funder, spec.period) for fund_id, spec in config.funds.items()},
        )


def city_infos(cities_dir: Path = PACKAGED_CITIES) -> dict[str, CityInfo]:
    loaded = {key: load_city(key, cities_dir) for key in city_keys(cities_dir)}
    return {key: CityInfo.of(city.config, city.rules) for key, city in loaded.items()}


def co2_by_day(info: CityInfo, issued_by_rule: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per closed day, the grams of CO2 saved that earned tokens: the published token figures of
    the city's CO2 rules times the rule's grams per token (post-processing: no further budget).
    Savings still carried in wallets below a token are not in it."""
    out: dict[str, dict[str, Any]] = {}
    for day, cells in issued_by_rule.items():
        mine = [(cells[r], grams) for r, grams in info.co2_rules.items() if r in cells]
        if not mine:
            continue
        shown = [int(c["value"]) * grams for c, grams in mine if "value" in c]
        out[day] = (
            {"value": sum(shown), "protection": {"method": "derived from published cells"}}
            if shown
            else {"suppressed": True, "reason": "derived from a suppressed figure"}
        )
    return out


def required_tables() -> list[str]:
    """The read models' tables the pages read, and the projector's positions: until they
    all exist, no projection has run and the dashboard is not ready."""
    return sorted({t for m in default_models() for t in m.tables} | {"rm_positions"})


def missing_tables(store: Store) -> list[str]:
    with store.transaction() as tx:
        if store.postgres:
            rows = tx.all(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            )
        else:
            rows = tx.all("SELECT name FROM sqlite_master WHERE type = 'table'")
    present = {str(r[0]) for r in rows}
    return [t for t in required_tables() if t not in present]


def units(info: CityInfo) -> dict[str, dict[str, Any]]:
    """The unit of each figure of a city's API document."""
    money = {"unit": "currency", "currency": info.currency, "smallest_unit_decimals": info.decimals}
    return {
        "daily.issued": money,
        "daily.spent": money,
        "daily.active": {"unit": "people"},
        "issued_by_rule": money,
        "spent_by_category": money,
        "vouchers_redeemed": {"unit": "redemptions"},
        "prizes_redeemed": {"unit": "redemptions"},
        "redemptions_by_partner": money,
        "accepted_from_partners": money,
        "weekly.redemptions_by_partner": money,
        "weekly.appeals": {"unit": "appeals"},
        "weekly.appeals_decided": {"unit": "appeals"},
        "weekly.appeal_wait_hours": {"unit": "hours"},
        "appeals": {"unit": "appeals"},
        "appeals_decided": {"unit": "appeals"},
        "appeal_wait_hours": {"unit": "hours"},
        "mean_hours_to_decision": {"unit": "hours"},
        "co2_saved_by_day": {"unit": "grams of CO2"},
        "equilibrium": money,
        "note": {
            "unit": "Amounts of currency are in the currency's smallest unit: divide by 10 ** "
            "smallest_unit_decimals for currency units."
        },
    }


def _derive(figure: Mapping[str, Any], rate: tuple[int, int]) -> dict[str, Any]:
    """A published figure converted at an exact published rate (rounded down): post-processing,
    so it costs no privacy and says it was derived."""
    if "value" not in figure:
        return {"suppressed": True, "reason": "derived from a suppressed figure"}
    numerator, denominator = rate
    return {
        "value": int(figure["value"]) * numerator // denominator,
        "protection": {"method": "derived from published cells"},
    }


def accepted_from_partners(
    info: CityInfo, settlement: list[dict[str, Any]], infos: Mapping[str, CityInfo]
) -> dict[str, dict[str, Any]]:
    """Per home city, the tokens its people redeemed at this city's shops (published, home
    units) and what this city's shops were credited for them (this city's units, at the
    published rate)."""
    out: dict[str, dict[str, Any]] = {}
    for c in settlement:
        if c["to"] != info.key:
            continue
        home = {k: v for k, v in c.items() if k not in ("from", "to")}
        rate = info.accepts.get(c["from"])
        out[c["from"]] = {
            "home_amount": home,
            "home_currency": infos[c["from"]].currency if c["from"] in infos else "",
            "rate": list(rate) if rate else None,
            "credited": _derive(home, rate) if rate else {"suppressed": True, "reason": "no published rate"},
        }
    return out


def net_positions(settlement: list[dict[str, Any]], infos: Mapping[str, CityInfo]) -> list[dict[str, Any]]:
    """Per city and partner, both legs in the city's own units and their difference: credited
    to the city's shops for the partner's tokens, minus the city's tokens redeemed at the
    partner's shops. Every leg is a published figure or one converted at the published rate."""
    legs = {(c["from"], c["to"]): c for c in settlement}
    pairs = sorted({(a, b) for a, b in legs} | {(b, a) for a, b in legs})
    out = []
    for city, partner in pairs:
        info = infos.get(city)
        if info is None:
            continue
        theirs = legs.get((partner, city))
        rate = info.accepts.get(partner)
        credited: dict[str, Any] = (
            _derive(theirs, rate)
            if theirs is not None and rate
            else {"value": 0, "protection": {"method": "no one took part"}}
        )
        mine = legs.get((city, partner))
        paid: dict[str, Any] = (
            {k: v for k, v in mine.items() if k not in ("from", "to")}
            if mine is not None
            else {"value": 0, "protection": {"method": "no one took part"}}
        )
        net = (
            {
                "value": int(credited["value"]) - int(paid["value"]),
                "protection": {"method": "derived from published cells"},
            }
            if "value" in credited and "value" in paid
            else {"suppressed": True, "reason": "derived from a suppressed figure"}
        )
        out.append(
            {
                "city": city,
                "partner": partner,
                "currency": info.currency,
                "credited_for_partner_tokens": credited,
                "own_tokens_redeemed_at_partner": paid,
                "net": net,
            }
        )
    return out


class Page:
    """One page's language and formats."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.language = language_of(tag)
        self._ = translations(tag, "dashboard").gettext

    def t(self, msgid: str, **params: Any) -> str:
        text = self._(msgid)
        return text.format(**params) if params else text

    def amount(self, value: int, info: CityInfo) -> str:
        return f"{format_amount(value, info.decimals, self.tag)} {self.t(info.currency)}"

    def number(self, value: int | float) -> str:
        return format_number(value, self.tag)

    def epsilon(self, value: float) -> str:
        return format_decimal(value, format="0.0##", locale=parse_locale(self.tag))

    def euros(self, text: str | None) -> str:
        """Decimal text of euros, as the page's language writes them; "–" for none."""
        if text is None:
            return "–"
        return "€ " + format_decimal(Decimal(text), format="#,##0.00", locale=parse_locale(self.tag))

    def figure(self, f: Mapping[str, Any], show: Callable[[int], str]) -> str:
        if "value" in f:
            return show(int(f["value"]))
        if f.get("empty"):
            return "–"
        return self.t("suppressed")


def _rate(rate: Any) -> str:
    return f"{rate[0]}/{rate[1]}" if rate else "–"


def _chosen_language(request: Request, default: str) -> str:
    """The city's own locale unless `?lang=` asks for another of the page languages."""
    asked = request.query_params.get("lang", "")
    if asked in LANGUAGES and asked != language_of(default):
        return asked
    return default


def create_app(
    store: Store,
    policies: dict[str, Policy] | None = None,
    clock: Clock = utcnow,
    cities_dir: Path | None = None,
) -> Starlette:
    """`policies`: each city's disclosure terms (services.settings.disclosure); `clock`: what
    decides which periods are closed; `cities_dir`: where each city's name, language and
    currency are read."""
    terms = policies or {}
    charts.warm_up()
    # The same cities folder as the settings read (CIVFED_CITIES_DIR), unless given.
    infos = city_infos(cities_dir or Path(os.environ.get("CIVFED_CITIES_DIR") or PACKAGED_CITIES))

    def ready() -> bool:
        return not missing_tables(store)

    def known() -> list[str]:
        listed = set(infos)
        if ready():
            with store.transaction() as tx:
                listed |= set(cities(tx))
        return sorted(listed)

    def info_of(city: str) -> CityInfo:
        return infos.get(city) or CityInfo(city, city, city, "en", "tokens", 0)

    def shell(page: Page, title: str, body: str, state: str, lang_links: str) -> HTMLResponse:
        names = known()
        links = [f'<a href="/?lang={page.language}">{html.escape(page.t("Federation"))}</a>'] + [
            f'<a href="/city/{html.escape(c)}">{html.escape(info_of(c).local_name)}</a>' for c in names
        ]
        doc = f"""<!doctype html>
<html lang="{html.escape(page.tag)}"><head><meta charset="utf-8"><title>{html.escape(title)} · civfed</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/dashboard.css"></head>
<body data-ready="{state}">
<header><h1>{html.escape(title)}</h1><nav>{" · ".join(links)}</nav>
<p class="languages">{lang_links}</p></header>
<main id="charts">{body}</main></body></html>
"""
        return HTMLResponse(doc)

    def language_links(path: str, own: str) -> str:
        choices = [(language_of(own), own)] if language_of(own) != "en" else []
        choices.append(("en", "en"))
        return " · ".join(
            f'<a href="{path}?lang={lang}" hreflang="{lang}">{html.escape(Page(tag).t(label))}</a>'
            for lang, tag, label in (
                (lang, tag, "In English" if lang == "en" else "In the city's language")
                for lang, tag in choices
            )
        )

    def no_data(page: Page) -> str:
        return (
            f'<p class="empty" data-empty="yes">{html.escape(page.t("No data yet."))} '
            f"{html.escape(page.t(LATER))}</p>"
        )

    async def federation_page(request: Request) -> Response:
        asked = request.query_params.get("lang", "")
        page = Page(asked if asked in LANGUAGES else FEDERATION_LOCALE)
        links = " · ".join(
            f'<a href="/?lang={lang}" hreflang="{lang}">{lang.upper()}</a>' for lang in LANGUAGES
        )
        title = page.t("Federation dashboard")
        if not ready():
            return shell(page, title, no_data(page), "no-data", links)
        with store.transaction() as tx:
            data = federation_dashboard(tx, terms, clock())
        return shell(page, title, federation_body(page, data), "yes", links)

    async def city_page(request: Request) -> Response:
        city = request.path_params["city"]
        if city not in known():
            return HTMLResponse("unknown city", status_code=404)
        info = info_of(city)
        tag = _chosen_language(request, info.locale)
        page = Page(tag)
        title = page.t("{city}: {currency}", city=info.local_name, currency=page.t(info.currency))
        links = language_links(f"/city/{html.escape(city)}", info.locale)
        if not ready():
            return shell(page, title, no_data(page), "no-data", links)
        with store.transaction() as tx:
            data = city_dashboard(tx, city, terms.get(city), clock())
            settlement = federation_dashboard(tx, terms, clock())["settlement"]
        data["accepted_from_partners"] = accepted_from_partners(info, settlement, infos)
        return shell(page, title, city_body(page, info, data, terms.get(city) or Policy()), "yes", links)

    def city_body(page: Page, info: CityInfo, d: dict[str, Any], policy: Policy) -> str:
        finance_link = (
            f'<p class="finance-link"><a href="/city/{html.escape(info.key)}/finance?lang={page.language}">'
            f"{html.escape(page.t('Funds: where the tokens come from'))}</a></p>"
        )
        parts = [finance_link, protection_note(page, policy)]
        if not d["days"] and not d.get("equilibrium"):
            return "".join(parts) + no_data(page)
        money_title = page.t(info.currency)
        fmt = charts.d3_format(info.decimals)
        suppressed = page.t("suppressed: fewer than {k} people", k=policy.k)
        noised = page.t("published with noise")
        scale = 10**info.decimals

        def money(value: int) -> str:
            return page.amount(value, info)

        def series(
            cells: Mapping[str, Mapping[str, Any]], label: str, show: Callable[[int], str], div: int
        ) -> list[Point]:
            return [
                Point(day, label, c["value"] / div if "value" in c else None, page.figure(c, show))
                for day, c in cells.items()
            ]

        issued_spent = series(d["daily"]["issued"], page.t("issued"), money, scale) + series(
            d["daily"]["spent"], page.t("spent"), money, scale
        )
        parts.append(
            section(
                page.t("Tokens issued and spent per day, in {currency}", currency=money_title),
                page.t(
                    "A day with no bar had no published figure; "
                    "each bar is the sum of that day's published cells."
                ),
                chart_or_empty(
                    page,
                    charts.daily(
                        issued_spent,
                        x_title=page.t("day (UTC)"),
                        y_title=money_title,
                        y_format=fmt,
                        series_title=page.t("figure"),
                        suppressed_label=suppressed,
                        bars=True,
                    ),
                    "issued-spent",
                    issued_spent,
                ),
            )
        )
        if info.co2_rules:
            parts.append(co2_section(page, info, d, suppressed))
        active = series(d["daily"]["active"], page.t("active people"), page.number, 1)
        parts.append(
            section(
                page.t("Active people per day"),
                "",
                chart_or_empty(
                    page,
                    charts.daily(
                        active,
                        x_title=page.t("day (UTC)"),
                        y_title=page.t("people"),
                        y_format=charts.d3_format(0),
                        series_title=page.t("figure"),
                        suppressed_label=suppressed,
                    ),
                    "active",
                    active,
                ),
            )
        )

        def breakdown(figures: Mapping[str, Mapping[str, Any]], label: Callable[[str], str]) -> list[Point]:
            return [
                Point(label(k), "", f["value"] / scale if "value" in f else None, page.figure(f, money))
                for k, f in figures.items()
            ]

        bar_kw = {"x_format": fmt, "noised_label": noised, "suppressed_label": suppressed}
        rules = breakdown(dict(list(d["issued_by_rule"].items())[:10]), lambda k: k)
        parts.append(
            section(
                page.t("Tokens issued per rule, in {currency}", currency=money_title),
                "",
                chart_or_empty(
                    page,
                    charts.bars(rules, x_title=money_title, label_title=page.t("rule"), **bar_kw),
                    "top-rules",
                    rules,
                ),
            )
        )
        categories = breakdown(d["spent_by_category"], lambda k: page.t(info.categories.get(k, k)))
        parts.append(
            section(
                page.t("Tokens spent per merchant category, in {currency}", currency=money_title),
                "",
                chart_or_empty(
                    page,
                    charts.bars(categories, x_title=money_title, label_title=page.t("category"), **bar_kw),
                    "spent-by-category",
                    categories,
                ),
            )
        )
        redeemed = [
            Point(
                page.t("vouchers"),
                "",
                d["vouchers_redeemed"].get("value"),
                page.figure(d["vouchers_redeemed"], page.number),
            ),
            Point(
                page.t("prizes"),
                "",
                d["prizes_redeemed"].get("value"),
                page.figure(d["prizes_redeemed"], page.number),
            ),
        ]
        parts.append(
            section(
                page.t("Vouchers and prizes redeemed"),
                "",
                chart_or_empty(
                    page,
                    charts.bars(
                        redeemed,
                        x_title=page.t("redemptions"),
                        label_title="",
                        x_format=charts.d3_format(0),
                        noised_label=noised,
                        suppressed_label=suppressed,
                    ),
                    "redeemed",
                    redeemed,
                ),
            )
        )
        # Only the charts the city's terms make meaningful: a city whose tokens no partner takes,
        # or whose shops take no partner's tokens, has no chart of it.
        if info.redeemable_at or d["redemptions_by_partner"]:
            partners = breakdown(d["redemptions_by_partner"], lambda k: info_of(k).local_name)
            parts.append(
                section(
                    page.t("{currency} redeemed at partner cities' shops", currency=money_title),
                    page.t("Per closed week, summed; in {currency}.", currency=money_title),
                    chart_or_empty(
                        page,
                        charts.bars(
                            partners, x_title=money_title, label_title=page.t("partner city"), **bar_kw
                        ),
                        "redemptions-by-partner",
                        partners,
                    ),
                )
            )
        if info.accepts or d["accepted_from_partners"]:
            parts.append(accepted_section(page, info, d["accepted_from_partners"], bar_kw))
        parts.append(appeals_section(page, d, suppressed, noised))
        if d.get("equilibrium"):
            parts.append(equilibrium_section(page, info, d["equilibrium"], bar_kw))
        return "".join(parts)

    def co2_section(page: Page, info: CityInfo, d: Mapping[str, Any], suppressed: str) -> str:
        grams = co2_by_day(info, d["cells"]["issued_by_rule"])
        largest = max([int(f.get("value", 0)) for f in grams.values()] + [0])
        tonnes = largest >= 10_000_000  # above 10 t a day, in tonnes; else in kilograms
        unit, per = (page.t("tonnes of CO2"), 1_000_000) if tonnes else (page.t("kg of CO2"), 1000)

        def shown(value: int) -> str:
            return f"{format_number(value / per, page.tag, 1)} {unit}"

        points = [
            Point(day, page.t("CO2 saved"), f["value"] / per if "value" in f else None, page.figure(f, shown))
            for day, f in grams.items()
        ]
        per_token = ", ".join(
            format_number(g / 1000, page.tag, 1) for g in sorted(set(info.co2_rules.values()))
        )
        return section(
            page.t("CO2 saved per day, in {unit}", unit=unit),
            page.t(
                "The published tokens of the CO2 rule times the rule's {kg} kg of CO2 per token; "
                "savings still carried in wallets below a token are not counted.",
                kg=per_token,
            ),
            chart_or_empty(
                page,
                charts.daily(
                    points,
                    x_title=page.t("day (UTC)"),
                    y_title=unit,
                    y_format=charts.d3_format(1 if tonnes else 0),
                    series_title=page.t("figure"),
                    suppressed_label=suppressed,
                    bars=True,
                ),
                "co2-saved",
                points,
            ),
        )

    def accepted_section(
        page: Page, info: CityInfo, accepted: Mapping[str, Mapping[str, Any]], bar_kw: dict[str, Any]
    ) -> str:
        money_title = page.t(info.currency)
        scale = 10**info.decimals
        points = [
            Point(
                info_of(home).local_name,
                "",
                a["credited"]["value"] / scale if "value" in a["credited"] else None,
                page.figure(a["credited"], lambda v: page.amount(v, info)),
            )
            for home, a in accepted.items()
        ]
        rows = "".join(
            f"<tr><td>{html.escape(info_of(home).local_name)}</td>"
            f"<td>{html.escape(page.figure(a['home_amount'], partial(page.amount, info=info_of(home))))}</td>"
            f"<td>{html.escape(_rate(a['rate']))}</td>"
            f"<td>{html.escape(page.figure(a['credited'], lambda v: page.amount(v, info)))}</td></tr>"
            for home, a in accepted.items()
        )
        table = (
            f'<table class="matrix" data-table="accepted"><tr><th>{html.escape(page.t("home city"))}</th>'
            f"<th>{html.escape(page.t('redeemed, in the home currency'))}</th>"
            f"<th>{html.escape(page.t('rate'))}</th>"
            f"<th>{html.escape(page.t('credited, in {currency}', currency=money_title))}</th></tr>"
            f"{rows}</table>"
            if accepted
            else ""
        )
        return section(
            page.t("Partner cities' tokens accepted by shops here, in {currency}", currency=money_title),
            page.t(
                "The home cities' published figures, converted at this city's published rate "
                "(rounded down): what this city's shops were credited."
            ),
            chart_or_empty(
                page,
                charts.bars(points, x_title=money_title, label_title=page.t("home city"), **bar_kw),
                "accepted-from-partners",
                points,
            )
            + table,
        )

    def appeals_section(page: Page, d: Mapping[str, Any], suppressed: str, noised: str) -> str:
        counts = [
            Point(
                page.t("appeals filed"), "", d["appeals"].get("value"), page.figure(d["appeals"], page.number)
            ),
            Point(
                page.t("appeals decided"),
                "",
                d["appeals_decided"].get("value"),
                page.figure(d["appeals_decided"], page.number),
            ),
        ]
        mean = d["mean_hours_to_decision"]
        hours = (
            page.t("Mean time to a decision: {hours} hours.", hours=page.number(int(mean["value"])))
            if "value" in mean
            else page.t("Mean time to a decision: not published (no published decisions).")
        )
        return section(
            page.t("Appeals"),
            page.t("Appeals filed and decided in closed weeks.") + " " + hours,
            chart_or_empty(
                page,
                charts.bars(
                    counts,
                    x_title=page.t("appeals"),
                    label_title="",
                    x_format=charts.d3_format(0),
                    noised_label=noised,
                    suppressed_label=suppressed,
                ),
                "appeals",
                counts,
            ),
        )

    def equilibrium_section(page: Page, info: CityInfo, e: Mapping[str, Any], bar_kw: dict[str, Any]) -> str:
        cols = ("minted", "depreciated", "spent", "tax", "lapsed", "supply")
        money_title = page.t(info.currency)

        def money(value: int) -> str:
            return format_amount(value, info.decimals, page.tag)

        head = "".join(f"<th>{html.escape(page.t(c))}</th>" for c in ("month", *cols))
        rows = "".join(
            "<tr><td>"
            + html.escape(m["month"])
            + "</td>"
            + "".join(
                f'<td class="{"suppressed" if "value" not in m[c] and not m[c].get("empty") else ""}">'
                f"{html.escape(page.figure(m[c], money))}</td>"
                for c in cols
            )
            + "</tr>"
            for m in e["months"]
        )
        shown = sum(1 for m in e["months"] for c in cols if "value" in m[c])
        table = (
            f'<table class="matrix" data-chart="equilibrium" data-points="{shown}">'
            f"<tr>{head}</tr>{rows}</table>"
        )
        scale = 10**info.decimals
        now = e["months"][-1]["supply"] if e["months"] else {"suppressed": True}
        steady = [
            Point(
                page.t("supply now"),
                "",
                now["value"] / scale if "value" in now else None,
                page.figure(now, lambda v: page.amount(v, info)),
            ),
            Point(
                page.t("steady state"),
                "",
                e["steady_state_supply"]["value"] / scale if "value" in e["steady_state_supply"] else None,
                page.figure(e["steady_state_supply"], lambda v: page.amount(v, info)),
            ),
        ]
        treasury = [
            Point(
                page.t("treasury"),
                "",
                e["treasury_received"]["value"] / scale if "value" in e["treasury_received"] else None,
                page.figure(e["treasury_received"], lambda v: page.amount(v, info)),
            )
        ]
        note = page.t(
            "Linear depreciation over {years} years ({days} days), "
            "published in advance and the same for everyone.",
            years=e["period_years"],
            days=e["period_days"],
        )
        return (
            section(
                page.t("Equilibrium per month, in {currency}", currency=money_title),
                note,
                table,
            )
            + section(
                page.t("Money supply now and at the steady state, in {currency}", currency=money_title),
                page.t("Steady state = issuance per year at the current rate × period / 2."),
                chart_or_empty(
                    page,
                    charts.bars(steady, x_title=money_title, label_title="", **bar_kw),
                    "steady-state",
                    steady,
                ),
            )
            + section(
                page.t("Municipal tax received in {currency}", currency=money_title),
                "",
                chart_or_empty(
                    page,
                    charts.bars(treasury, x_title=money_title, label_title="", **bar_kw),
                    "treasury",
                    treasury,
                ),
            )
        )

    def federation_body(page: Page, d: Mapping[str, Any]) -> str:
        if not d["cities"]:
            return no_data(page)
        parts = [f'<p class="note">{html.escape(page.t(OWN_UNITS))}</p>']
        # Tokens issued: one small chart per city, each in its own currency.
        multiples = []
        for c in d["cities"]:
            info = info_of(c)
            scale = 10**info.decimals
            points = [
                Point(
                    rule,
                    "",
                    f["value"] / scale if "value" in f else None,
                    page.figure(f, partial(page.amount, info=info)),
                )
                for rule, f in list(d["issued_by_rule"][c].items())[:5]
            ]
            total = page.figure(d["issued"][c], partial(page.amount, info=info))
            multiples.append(
                f'<div class="multiple"><h3>{html.escape(info.local_name)}: {html.escape(total)}</h3>'
                + chart_or_empty(
                    page,
                    charts.bars(
                        points,
                        x_title=page.t(info.currency),
                        label_title=page.t("rule"),
                        x_format=charts.d3_format(info.decimals),
                        noised_label=page.t("published with noise"),
                        suppressed_label=page.t("suppressed: fewer than {k} people", k=d["k"]),
                    ),
                    f"issued-{c}",
                    points,
                )
                + "</div>"
            )
        shown = sum(1 for c in d["cities"] if "value" in d["issued"][c])
        parts.append(
            section(
                page.t("Tokens issued per city, each in its own currency"),
                page.t("The sum of each city's published daily figures per rule."),
                f'<div class="multiples" data-chart="issued-per-city" data-points="{shown}">'
                f"{''.join(multiples)}</div>",
            )
        )
        parts.append(redemptions_section(page, d))
        parts.append(nets_section(page, d))
        return "".join(parts)

    def redemptions_section(page: Page, d: Mapping[str, Any]) -> str:
        rows = []
        for c in d["settlement"]:
            home, acceptor = info_of(c["from"]), info_of(c["to"])
            rate = acceptor.accepts.get(c["from"])
            credited = _derive(c, rate) if rate else {"suppressed": True}
            rows.append(
                f'<tr data-from="{html.escape(c["from"])}" data-to="{html.escape(c["to"])}">'
                f"<td>{html.escape(home.local_name)}</td><td>{html.escape(acceptor.local_name)}</td>"
                f"<td>{html.escape(page.figure(c, partial(page.amount, info=home)))}</td>"
                f"<td>{html.escape(_rate(rate))}</td>"
                f"<td>{html.escape(page.figure(credited, partial(page.amount, info=acceptor)))}</td></tr>"
            )
        shown = sum(1 for c in d["settlement"] if "value" in c)
        head = "".join(
            f"<th>{html.escape(page.t(h))}</th>"
            for h in (
                "home city",
                "accepting city",
                "redeemed, in the home currency",
                "rate",
                "credited, in the accepting currency",
            )
        )
        table = (
            f'<table class="matrix" data-chart="redemptions-between-cities" data-points="{shown}">'
            f"<tr>{head}</tr>{''.join(rows)}</table>"
            if rows
            else no_data(page)
        )
        return section(
            page.t("Redemptions between cities"),
            page.t(
                "Tokens redeemed at partner shops in closed weeks, in the home city's currency "
                "(noised, summed "
                "over the weeks), and what the accepting city's shops were credited at its published rate."
            ),
            table,
        )

    def nets_section(page: Page, d: Mapping[str, Any]) -> str:
        nets = net_positions(d["settlement"], infos)
        rows = []
        for n in nets:
            info = info_of(n["city"])

            def money(v: int, i: CityInfo = info) -> str:
                return page.amount(v, i)

            rows.append(
                f'<tr data-city="{html.escape(n["city"])}" data-partner="{html.escape(n["partner"])}">'
                f"<td>{html.escape(info.local_name)}</td><td>{html.escape(info_of(n['partner']).local_name)}</td>"
                f"<td>{html.escape(page.figure(n['credited_for_partner_tokens'], money))}</td>"
                f"<td>{html.escape(page.figure(n['own_tokens_redeemed_at_partner'], money))}</td>"
                f"<td>{html.escape(page.figure(n['net'], money))}</td></tr>"
            )
        head = "".join(
            f"<th>{html.escape(page.t(h))}</th>"
            for h in (
                "city",
                "partner",
                "credited to its shops for the partner's tokens",
                "its tokens redeemed at the partner's shops",
                "net (first minus second)",
            )
        )
        shown = sum(1 for n in nets if "value" in n["net"])
        table = (
            f'<table class="matrix" data-chart="net-positions" data-points="{shown}">'
            f"<tr>{head}</tr>{''.join(rows)}</table>"
            if rows
            else no_data(page)
        )
        return section(
            page.t("Net positions from the published figures, each city in its own currency"),
            page.t(
                "Both legs are shown, so each net can be checked. "
                "These are computed from the noised published "
                "figures; exact settlement is for the partner cities' finance staff, from their nodes."
            ),
            table,
        )

    def protection_note(page: Page, p: Policy) -> str:
        return section(
            page.t("How these figures are protected"),
            page.t(
                "Aggregates only, for closed days and weeks: any figure drawn from fewer than {k} people is "
                "suppressed; every other carries discrete Laplace noise, drawn once and kept (differential "
                "privacy, ε = {day} per day, {week} per week, {month} per month); every total is the sum of "
                "the published figures.",
                k=p.k,
                day=page.epsilon(p.epsilon_per_day),
                week=page.epsilon(p.epsilon_per_week),
                month=page.epsilon(p.epsilon_per_month),
            ),
            "",
        )

    def chart_or_empty(page: Page, spec: dict[str, Any], name: str, points: list[Point]) -> str:
        if not points:
            empty = html.escape(page.t("No data yet."))
            return f'<p class="empty" data-chart-empty="{html.escape(name)}">{empty}</p>'
        return charts.render(spec, page.tag, name, sum(1 for p in points if p.value is not None))

    def section(title: str, note: str, body: str) -> str:
        note_html = f'<p class="note">{html.escape(note)}</p>' if note else ""
        return f"<section><h2>{html.escape(title)}</h2>{note_html}{body}</section>"

    def not_ready_json(page: Page) -> JSONResponse:
        return JSONResponse(
            {
                "ready": False,
                "status": "no data yet",
                "message": page.t("No data yet.") + " " + page.t(LATER),
            }
        )

    async def api_cities(request: Request) -> Response:
        return JSONResponse(
            {
                "cities": known(),
                "ready": ready(),
                "names": {
                    c: {
                        "name": info_of(c).name,
                        "local_name": info_of(c).local_name,
                        "locale": info_of(c).locale,
                    }
                    for c in known()
                },
            }
        )

    async def api_city(request: Request) -> Response:
        city = request.path_params["city"]
        if city not in known():
            return JSONResponse({"error": f"unknown city {city!r}"}, status_code=404)
        info = info_of(city)
        if not ready():
            return not_ready_json(Page(_chosen_language(request, info.locale)))
        with store.transaction() as tx:
            data = city_dashboard(tx, city, terms.get(city), clock())
            settlement = federation_dashboard(tx, terms, clock())["settlement"]
        data["accepted_from_partners"] = accepted_from_partners(info, settlement, infos)
        data["name"], data["local_name"], data["locale"] = info.name, info.local_name, info.locale
        data["currency"] = {"name": info.currency, "decimals": info.decimals}
        data["units"] = units(info)
        if info.co2_rules:
            data["co2_saved_by_day"] = co2_by_day(info, data["cells"]["issued_by_rule"])
        return JSONResponse(data)

    async def api_federation(request: Request) -> Response:
        if not ready():
            return not_ready_json(Page(_chosen_language(request, FEDERATION_LOCALE)))
        with store.transaction() as tx:
            data = federation_dashboard(tx, terms, clock())
        data["net_positions"] = net_positions(data["settlement"], infos)
        data["currencies"] = {
            c: {"name": info_of(c).currency, "decimals": info_of(c).decimals} for c in data["cities"]
        }
        data["units"] = {
            "issued": "each city's currency, in its smallest unit (see currencies)",
            "issued_by_rule": "each city's currency, in its smallest unit",
            "settlement": "the home city's (from) currency, in its smallest unit",
            "settlement_by_week": "the home city's (from) currency, in its smallest unit",
            "net_positions": "the city's own currency (city), in its smallest unit",
        }
        return JSONResponse(data)

    def finance_data(tx: Any, info: CityInfo) -> dict[str, Any]:
        data = finance_dashboard(
            tx,
            info.key,
            terms.get(info.key),
            clock(),
            euro_per_token=info.euro_per_token,
            decimals=info.decimals,
        )
        for f in data["funds"]:
            f["name"], f["funder"], f["period"] = info.funds.get(f["fund_id"], (f["fund_id"], "", ""))
        data["currency"] = {"name": info.currency, "decimals": info.decimals}
        data["units"] = {
            "budget, declared, top_ups, awarded_by_month, redeemed_by_month": (
                f"{info.currency}, in its smallest unit (10^{info.decimals} to one)"
            ),
            "eur, budget_eur": "euros, at the city's published euro value of a token"
            if info.euro_per_token is not None
            else "none: the city's currency has no euro value",
        }
        return data

    async def api_finance(request: Request) -> Response:
        city = request.path_params["city"]
        if city not in known():
            return JSONResponse({"error": f"unknown city {city!r}"}, status_code=404)
        info = info_of(city)
        if not ready():
            return not_ready_json(Page(_chosen_language(request, info.locale)))
        with store.transaction() as tx:
            data = finance_data(tx, info)
        return JSONResponse(data)

    async def finance_page(request: Request) -> Response:
        city = request.path_params["city"]
        if city not in known():
            return HTMLResponse("unknown city", status_code=404)
        info = info_of(city)
        page = Page(_chosen_language(request, info.locale))
        title = page.t("{city}: funds and what they paid for", city=info.local_name)
        links = language_links(f"/city/{html.escape(city)}/finance", info.locale)
        if not ready():
            return shell(page, title, no_data(page), "no-data", links)
        with store.transaction() as tx:
            data = finance_data(tx, info)
        return shell(page, title, finance_body(page, info, data, terms.get(city) or Policy()), "yes", links)

    def finance_body(page: Page, info: CityInfo, d: Mapping[str, Any], policy: Policy) -> str:
        back = (
            f'<p><a href="/city/{html.escape(info.key)}?lang={page.language}">'
            f"{html.escape(page.t('Back to the city dashboard'))}</a></p>"
        )
        parts = [back, protection_note(page, policy)]
        if info.euro_per_token is None:
            parts.append(
                section(
                    page.t("Euros"), page.t("This city's currency has no euro value: no euro figures."), ""
                )
            )
        else:
            parts.append(
                section(
                    page.t("Euros"),
                    page.t(
                        "One {currency} is worth {rate} euros (published by the city).",
                        currency=page.t(info.currency),
                        rate=format_decimal(info.euro_per_token, locale=parse_locale(page.tag)),
                    ),
                    "",
                )
            )
        parts.append(budgets_section(page, info, d))
        if not d["months"]:
            return "".join(parts) + no_data(page)
        suppressed = page.t("suppressed: fewer than {k} people", k=policy.k)
        scale = 10**info.decimals

        def money(value: int) -> str:
            return page.amount(value, info)

        points: list[Point] = []
        for f in d["funds"]:
            label = f["name"]
            for month, c in f["awarded_by_month"].items():
                value = c["value"] / scale if "value" in c else None
                points.append(Point(f"{month} · {label}", "", value, page.figure(c, money)))
        money_title = page.t(info.currency)
        parts.append(
            section(
                page.t("Tokens awarded per fund per closed month, in {currency}", currency=money_title),
                page.t("Each figure is the sum of that month's published daily figures of the fund's rules."),
                chart_or_empty(
                    page,
                    charts.bars(
                        points,
                        x_title=money_title,
                        label_title=page.t("fund"),
                        x_format=charts.d3_format(info.decimals),
                        noised_label=page.t("published with noise"),
                        suppressed_label=suppressed,
                    ),
                    "awarded-by-fund",
                    points,
                ),
            )
        )
        parts.append(redeemed_section(page, info, d, policy))
        return "".join(parts)

    def budgets_section(page: Page, info: CityInfo, d: Mapping[str, Any]) -> str:
        rows = []
        for f in d["funds"]:
            if "budget" not in f:
                continue
            eur = page.euros(f["budget_eur"])
            rows.append(
                "<tr>"
                f"<td>{html.escape(f['name'])}</td>"
                f"<td>{html.escape(f['funder'])}</td><td>{html.escape(f['period'])}</td>"
                f'<td class="num">{html.escape(page.amount(f["declared"], info))}</td>'
                f'<td class="num">{html.escape(page.number(len(f["top_ups"])))}</td>'
                f'<td class="num">{html.escape(page.amount(f["budget"], info))}</td>'
                f'<td class="num">{html.escape(eur)}</td>'
                "</tr>"
            )
        head = "".join(
            f"<th>{html.escape(page.t(h))}</th>"
            for h in ("fund", "funder", "period", "declared budget", "top-ups", "budget now", "euros")
        )
        table = f'<table class="funds"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        return section(
            page.t("Funds and budgets"),
            page.t("Budgets and top-ups are public decisions of the council, shown exactly."),
            table if rows else f'<p class="empty">{html.escape(page.t("No data yet."))}</p>',
        )

    def redeemed_section(page: Page, info: CityInfo, d: Mapping[str, Any], policy: Policy) -> str:
        rows = []
        for month, f in d["redeemed_by_month"].items():
            if "value" in f:
                shown = page.amount(int(f["value"]), info)
            elif "shops" in f.get("reason", ""):
                shown = page.t("suppressed: fewer than {k} shops", k=policy.k)
            else:
                shown = page.t("suppressed")
            euro = page.euros((f.get("eur") or {}).get("value"))
            rows.append(
                f'<tr><td>{html.escape(month)}</td><td class="num">{html.escape(shown)}</td>'
                f'<td class="num">{html.escape(euro)}</td></tr>'
            )
        head = "".join(
            f"<th>{html.escape(page.t(h))}</th>" for h in ("month (UTC)", "redeemed at shops", "euros")
        )
        return section(
            page.t("Tokens redeemed at the city's shops per closed month"),
            page.t(
                "Shown only for a month in which at least {k} shops were paid; "
                "a shop reads its own payments on its statement.",
                k=policy.k,
            ),
            f'<table class="redeemed"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>',
        )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            missing = missing_tables(store)
        except Exception as exc:  # any store failure means: do not route traffic here
            store.close()  # the next probe reconnects
            return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
        if missing:
            return JSONResponse(
                {"status": "not ready", "reason": "no projection has run yet", "missing": missing},
                status_code=503,
            )
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/", federation_page),
            Route("/city/{city}", city_page),
            Route("/city/{city}/finance", finance_page),
            Route("/api/cities", api_cities),
            Route("/api/city/{city}", api_city),
            Route("/api/city/{city}/finance", api_finance),
            Route("/api/federation", api_federation),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
    )
