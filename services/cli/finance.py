"""`civfed finance report`: the finance department's report of a city, read through the node
over gRPC with the staff member's own access token (services/cli/staff.py), so only a
finance officer, an auditor or a council approver gets it:

  civfed finance report --city sint-niklaas [--period 2026-05] [--csv FILE | --json]

Per fund: issued, redeemed, lapsed, depreciated and outstanding (to date, as `civfed funds
report`), and per fund and month the same figures booked in the month (outstanding at its
end); per month: the totals of the shop payouts and of the clearings with partner cities;
per partner: what was cleared and what is open now. Aggregates only: no wallet's and no
single shop's figure.

Amounts are in units of the city's currency (with its decimals), and in euros at the
city's published rate where it publishes one (the payouts in the euros actually paid). A
partner's side of a clearing is in the partner's own smallest unit (`..._partner_units`),
in euros at the partner's published rate, or, where the partner's currency has no euro
value, with a row saying so instead (`partner_has_no_euro_value`, or `partner_rate_unknown`
where this node knows no rate for the partner) and no euro figure for its side.
The CSV has one row per figure: section, period, subject, figure, amount, eur.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc

from civfed.v1 import funds_pb2, funds_pb2_grpc
from services.cli.staff import call_node, connection_arguments
from services.finance import NO_EURO_VALUE
from services.settings.errors import ConfigError

HEADER = ("section", "period", "subject", "figure", "amount", "eur")
FUND_MONTH = ("issued", "redeemed", "lapsed", "depreciated", "outstanding")
TOTALS = ("issued", "redeemed", "outstanding", "paid_out", "cleared_owed_by_us", "open_owed_by_us")


class Money:
    """The report's amounts in currency units, and in euros at the published rate."""

    def __init__(self, decimals: int, euro_per_token: str) -> None:
        self.decimals = decimals
        self.rate = Decimal(euro_per_token) if euro_per_token else None

    def units(self, amount: int) -> str:
        return str(
            (Decimal(amount) / Decimal(10) ** self.decimals).quantize(Decimal(1).scaleb(-self.decimals))
        )

    def eur(self, amount: int) -> str:
        if self.rate is None:
            return ""
        value = Decimal(amount) * self.rate / Decimal(10) ** self.decimals
        return str(value.quantize(Decimal("0.01")))


def rows(r: Any) -> list[tuple[str, str, str, str, str, str]]:
    """The report as (section, period, subject, figure, amount, eur) rows, totals last."""
    m = Money(r.decimals, r.euro_per_token)
    out: list[tuple[str, str, str, str, str, str]] = []
    totals = dict.fromkeys(TOTALS, 0)
    paid_cents = 0

    def money(section: str, subject: str, figure: str, amount: int) -> None:
        out.append((section, r.period, subject, figure, m.units(amount), m.eur(amount)))

    def count(section: str, subject: str, figure: str, n: int) -> None:
        out.append((section, r.period, subject, figure, str(n), ""))

    for f in r.funds:
        for figure in ("issued", "redeemed", "lapsed", "depreciated", "outstanding"):
            money("fund", f.fund_id, figure, getattr(f, figure))
            if figure in totals:
                totals[figure] += getattr(f, figure)
    for fp in r.fund_periods:
        for figure in FUND_MONTH:
            amount = getattr(fp, figure)
            out.append(("fund_period", fp.period, fp.fund_id, figure, m.units(amount), m.eur(amount)))
    for p in r.periods:
        out.append(("period", p.period, "", "paid_out", m.units(p.paid_out), cents(p.paid_out_euro_cents)))
        out.append(("period", p.period, "", "payout_runs", str(p.payout_runs), ""))
        out.append(
            (
                "period",
                p.period,
                "",
                "cleared_owed_by_us",
                m.units(p.cleared_owed_by_us),
                m.eur(p.cleared_owed_by_us),
            )
        )
        out.append(("period", p.period, "", "clearings", str(p.clearings), ""))
        totals["paid_out"] += p.paid_out
        totals["cleared_owed_by_us"] += p.cleared_owed_by_us
        paid_cents += p.paid_out_euro_cents
    for p in r.partners:
        for figure in ("cleared_owed_by_us", "open_owed_by_us"):
            money("partner", p.partner_city, figure, getattr(p, figure))
        partner = p.partner_city
        out.append(
            (
                "partner",
                r.period,
                partner,
                "cleared_owed_by_partner_partner_units",
                str(p.cleared_owed_by_partner),
                p.cleared_owed_by_partner_eur,
            )
        )
        count("partner", partner, "cleared_redemptions", p.cleared_redemptions)
        out.append(
            (
                "partner",
                r.period,
                partner,
                "open_owed_by_partner_partner_units",
                str(p.open_owed_by_partner),
                p.open_owed_by_partner_eur,
            )
        )
        count("partner", partner, "open_redemptions", p.open_redemptions)
        # The partner's euro value of a token, or, where there is none, a row saying so
        # (its figure names why; no amount is made up for it).
        if p.partner_euro_per_token:
            out.append(("partner", r.period, partner, "partner_euro_per_token", p.partner_euro_per_token, ""))
        else:
            why = (
                "partner_has_no_euro_value"
                if p.partner_euro_note == NO_EURO_VALUE
                else "partner_rate_unknown"
            )
            out.append(("partner", r.period, partner, why, "", ""))
        totals["open_owed_by_us"] += p.open_owed_by_us
    for figure in TOTALS:
        eur = cents(paid_cents) if figure == "paid_out" else m.eur(totals[figure])
        out.append(("total", r.period, "", figure, m.units(totals[figure]), eur))
    return out


def cents(n: int) -> str:
    return str((Decimal(n) / 100).quantize(Decimal("0.01")))


def as_json(r: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "city": r.city,
        "period": r.period or None,
        "currency": r.currency,
        "decimals": r.decimals,
        "euro_per_token": r.euro_per_token or None,
        "funds": {},
        "fund_periods": {},
        "periods": {},
        "partners": {},
        "totals": {},
    }
    for section, period, subject, figure, amount, eur in rows(r):
        value: dict[str, str] = {"amount": amount}
        if eur:
            value["eur"] = eur
        if section == "fund":
            out["funds"].setdefault(subject, {})[figure] = value
        elif section == "fund_period":
            out["fund_periods"].setdefault(subject, {}).setdefault(period, {})[figure] = value
        elif section == "period":
            out["periods"].setdefault(period, {})[figure] = value
        elif section == "partner":
            out["partners"].setdefault(subject, {})[figure] = value
        else:
            out["totals"][figure] = value
    return out


def render(r: Any) -> str:
    lines = [f"Finance report of {r.city}, {r.period or 'every period'} ({r.currency})"]
    for section, period, subject, figure, amount, eur in rows(r):
        where = " ".join(x for x in (section, period if section != "total" else "", subject) if x)
        lines.append(f"  {where:<36}{figure:<38}{amount:>16}" + (f"  EUR {eur}" if eur else ""))
    return "\n".join(lines)


def cmd_report(args: argparse.Namespace) -> int:
    def run(channel: grpc.Channel, metadata: Any) -> None:
        req = funds_pb2.GetFinanceReportRequest(period=args.period or "")
        r = funds_pb2_grpc.FundServiceStub(channel).GetFinanceReport(
            req, metadata=metadata, timeout=args.timeout
        )
        if r.city != args.city.replace("-", "_"):
            raise ConfigError(f"--city {args.city}: the node serves {r.city}")
        if args.csv:
            with Path(args.csv).open("w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(HEADER)
                writer.writerows(rows(r))
            print(f"finance report of {r.city} written to {args.csv}", file=sys.stderr)
        elif args.json:
            print(json.dumps(as_json(r), indent=2))
        else:
            print(render(r))

    return call_node("finance", args, run)


def register(sub: Any) -> None:
    group = sub.add_parser("finance", help="the finance department's reports of a city")
    fsub = group.add_subparsers(dest="finance_command", required=True)
    report = fsub.add_parser(
        "report", help="funds, shop payout and clearing totals, and partner positions (aggregates only)"
    )
    report.add_argument("--city", required=True, help="the city the node serves, e.g. sint-niklaas")
    report.add_argument("--period", help="a month, such as 2026-05 (default: every month)")
    out = report.add_mutually_exclusive_group()
    out.add_argument("--csv", metavar="FILE", help="write the report as CSV (one row per figure) to FILE")
    out.add_argument("--json", action="store_true", help="print the report as JSON")
    report.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the node (default: %(default)s)"
    )
    connection_arguments(report)
    report.set_defaults(func=cmd_report)
