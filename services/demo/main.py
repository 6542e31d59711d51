"""`civfed demo`: the embedded federation on SQLite, start to summary."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, cast

from civfed.v1 import workflow_pb2
from projections.disclosure import Period
from services.city import CityApplication
from services.city_totals import city_totals
from services.demo.city_node import NodeScenario, demo_node
from services.demo.clock import ScenarioClock, scenario_time
from services.demo.progress import Phases
from services.demo.scenario import OVER_GRPC, SCENARIOS, InProcess, estimate
from services.event_log import event_type, read_events
from services.grpc.workflow_service import report_dict
from services.settings.cities import Settings, load_city
from services.settings.disclosure import disclosure_policies
from services.settings.stream import load_stream_settings, read_model_store
from services.workflow_report import equilibrium_report, render_equilibrium


def run_demo(settings: Settings, scale: float = 1.0, phases: Phases | None = None) -> dict[str, Any]:
    """Play every city's season; `phases` shows each city's progress on stderr."""
    report: dict[str, Any] = {}
    phases = phases or Phases()
    for key, (scenario, people) in SCENARIOS.items():
        city = load_city(key, settings.CIVFED_CITIES_DIR)
        clock = ScenarioClock()
        people = max(20, int(people * scale))
        label = city.config.local_name or city.config.name
        with phases.phase(label, estimate(key, people), "commands") as step, scenario_time(clock):
            if key in OVER_GRPC:  # played against the city's node, through its contracts
                with demo_node(settings, key, clock) as node:
                    cast(NodeScenario, scenario)(node, clock, step, people)
                    totals = figures(node.app, key)
                    if node.app.workflow is not None:
                        # The season is over: its report covers every month of it, each closed.
                        clock.now = month_after(clock.now) + dt.timedelta(days=1)
                        totals["equilibrium"] = report_dict(
                            node.stubs.workflow.GetEquilibriumReport(
                                workflow_pb2.GetEquilibriumReportRequest(), timeout=60
                            )
                        )
            else:
                app = CityApplication(city, settings.eventsourcing_env(key), clock=clock)
                cast(InProcess, scenario)(app, clock, step, people)
                totals = figures(app, key)
                if app.workflow is not None:  # a workflow city: its equilibrium figures, as published
                    clock.now = month_after(clock.now) + dt.timedelta(days=1)
                    published = read_model_store(settings, load_stream_settings({}))
                    policy = disclosure_policies(settings.CIVFED_CITIES_DIR)[key]
                    try:
                        totals["equilibrium"] = equilibrium_report(app, key, published, policy, clock())
                    finally:
                        published.close()
                app.close()
        report[key] = totals
    return report


def month_after(now: dt.datetime) -> dt.datetime:
    """The start of the month after `now`'s: when `now`'s month is closed."""
    return Period("month", now.date().replace(day=1)).end()


def figures(app: CityApplication, key: str) -> dict[str, Any]:
    totals = city_totals(app, key).summary()
    config = app.city.config
    totals.update(name=config.name, currency=config.currency.name, decimals=config.currency.decimals)
    totals["funds"] = fund_figures(app)
    return totals


def fund_figures(app: CityApplication) -> list[dict[str, Any]]:
    """Each fund's figures, with the awards it refused and the top-ups it was given."""
    refused: dict[str, int] = {}
    for _, e in read_events(app):
        limit = str(getattr(e, "limit", ""))
        if event_type(e) == "Wallet.AwardRefused" and limit.startswith("fund:"):
            refused[limit[5:]] = refused.get(limit[5:], 0) + 1
    return [
        {**r.as_dict(), "refused": refused.get(r.fund_id, 0), "topped_up": r.budget - r.declared}
        for r in app.fund_reports()
    ]


def fmt_amount(value: int, decimals: int) -> str:
    return f"{value / 10**decimals:,.{decimals}f}"


def render_table(report: dict[str, Any], _: Callable[[str], str] = str) -> str:
    """The ledger totals, in each currency's units; `_` translates the headings."""
    columns = [
        (_("city"), 14, "<"),
        (_("currency"), 30, "<"),
        (_("wallets"), 9, ">"),
        (_("issued"), 12, ">"),
        (_("spent"), 12, ">"),
        (_("other out"), 12, ">"),
        (_("outstanding"), 13, ">"),
        (_("CO2 saved"), 13, ">"),
    ]
    head = "".join(f"{title:{align}{width}}" for title, width, align in columns)
    lines = [head, "-" * len(head)]
    for row in report.values():
        d = row["decimals"]
        co2 = f"{row['quantity'] / 1_000_000:,.1f} t" if row["quantity"] else "-"
        other = row["burned"] + row["lapsed"] + row["depreciated"] + row["tax_paid"]
        lines.append(
            f"{row['name']:<14}{row['currency']:<30}{row['wallets']:>9,}{fmt_amount(row['issued'], d):>12}"
            f"{fmt_amount(row['spent'], d):>12}{fmt_amount(other, d):>12}"
            f"{fmt_amount(row['outstanding'], d):>13}{co2:>13}"
        )
    lines += [
        _("Amounts in each city's own currency (the currency column), in whole units, not smallest units."),
        _(
            "other out: redeemed at partner cities' shops, depreciated as published, paid as municipal tax,"
            " or lapsed after leaving"
        ),
    ]
    if any(row.get("equilibrium") for row in report.values()):
        lines.append(
            _(
                "outstanding: the wallets' balances as last booked, depreciation recorded up to each"
                " wallet's last transaction. The equilibrium report's supply below differs by"
                " definition: every wallet valued at the month's end, depreciated to that day, then"
                " noised for publication."
            )
        )
    lines += ["", "Funds: budget = awarded + remaining (awarded: issued less lapsed and depreciated)"]
    for row in report.values():
        d = row["decimals"]
        for f in row.get("funds", []):
            line = (
                f"{row['name']:<14}{f['name'][:38]:<40}budget {fmt_amount(f['budget'], d):>14}"
                f"  awarded {fmt_amount(f['awarded'], d):>12}  remaining {fmt_amount(f['remaining'], d):>14}"
            )
            if f["refused"] or f["topped_up"]:
                line += f"  ({f['refused']} awards refused; topped up by {fmt_amount(f['topped_up'], d)})"
            lines.append(line)
    for row in report.values():
        if row.get("equilibrium"):
            lines += [
                "",
                render_equilibrium(row["equilibrium"], row["name"], row["currency"], row["decimals"]),
            ]
    return "\n".join(lines)
