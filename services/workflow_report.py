"""The equilibrium report from a city's own notification log, and its text form.

The report runs the same read model and view as the dashboard in a private in-memory
store, and publishes its figures into `published`, the read-model store the dashboard
uses: a closed month's figures are drawn once there, so the CLI, the node, the demo and
the dashboard show the same noised figures, and asking again draws nothing new.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from projections.disclosure import Noise, Policy, opendp_noise
from projections.integration import CityLog
from projections.log_source import catch_up_log
from projections.projector import Projector
from projections.store import Store
from projections.workflow import WorkflowMoney
from projections.workflow_view import equilibrium


def equilibrium_report(
    app: CityLog,
    city: str,
    published: Store,
    policy: Policy,
    now: dt.datetime,
    noise: Noise = opendp_noise,
) -> dict[str, Any] | None:
    store = Store("sqlite:///:memory:")
    try:
        catch_up_log(Projector(store, [WorkflowMoney()]), app, city)
        with store.transaction() as tx, published.transaction() as out:
            return equilibrium(tx, city, policy, now, noise, published_tx=out)
    finally:
        store.close()


def _fmt(c: dict[str, Any], decimals: int) -> str:
    if c.get("empty"):
        return "-"  # nobody took part in this flow
    if "value" not in c:
        return "suppressed"
    return f"{c['value'] / 10**decimals:,.{decimals}f}"


def render_equilibrium(report: dict[str, Any], name: str, currency: str, decimals: int) -> str:
    cols = ("minted", "depreciated", "spent", "tax", "lapsed", "supply")
    head = f"{'month':<10}" + "".join(f"{c:>14}" for c in cols)
    lines = [
        f"Equilibrium report, {name} ({currency}; closed months; k = {report['k']}, "
        f"ε = {report['epsilon_per_month']} per month)",
        head,
        "-" * len(head),
    ]
    for row in report["months"]:
        lines.append(f"{row['month']:<10}" + "".join(f"{_fmt(row[c], decimals):>14}" for c in cols))
    lines += [
        f"depreciation period: {report['period_days']:,} days ({report['period_years']} years), linear",
        f"issuance per year at the current rate: {_fmt(report['issuance_per_year'], decimals)}",
        f"projected steady-state supply (issuance/yr × period / 2): "
        f"{_fmt(report['steady_state_supply'], decimals)}",
        f"treasury received in tax: {_fmt(report['treasury_received'], decimals)}",
        f"method: {report['method']}",
    ]
    return "\n".join(lines)


def cmd_report(args: argparse.Namespace) -> int:
    from services.city import CityApplication
    from services.settings.cities import cli_environment, load_city, load_settings
    from services.settings.disclosure import disclosure_policies
    from services.settings.stream import load_stream_settings, read_model_store

    env = cli_environment(args.data_dir)
    settings = load_settings(env)
    city = load_city(args.city, settings.CIVFED_CITIES_DIR)
    policy = disclosure_policies(settings.CIVFED_CITIES_DIR)[args.city]
    app = CityApplication(city, settings.eventsourcing_env(args.city))
    published = read_model_store(settings, load_stream_settings(env))
    try:
        report = equilibrium_report(app, args.city, published, policy, dt.datetime.now(dt.UTC))
    finally:
        app.close()
        published.close()
    if report is None:
        print(f"civfed: {city.config.name} has no depreciating lots to report on")
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        cur = city.config.currency
        print(render_equilibrium(report, city.config.name, cur.name, cur.decimals))
    return 0


def register(sub: Any) -> None:
    group = sub.add_parser("workflow", help="social-workflow cities")
    wsub = group.add_subparsers(dest="workflow_command", required=True)
    report = wsub.add_parser("report", help="the monthly equilibrium report of a city")
    report.add_argument("--city", required=True, help="the city key, e.g. zwolle")
    report.add_argument("--data-dir", help="where the SQLite stores live")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.set_defaults(func=cmd_report)
