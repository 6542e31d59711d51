"""Funds and budgets on the command line:

civfed funds report --city X [--data-dir D] [--json]
    each fund's budget, issued, redeemed, lapsed, depreciated, outstanding, awarded and
    remaining, in tokens and in euros at the city's published rate (the operator's own
    read of the city's store; figures of whole funds, never of a person)
civfed funds top-up propose --fund F --amount N --reason WHY
civfed funds top-up approve --fund F PROPOSAL_ID --decision-ref REF
    a top-up, through the node's public gRPC port with the staff member's own token
    (services/cli/staff.py), so the policy table and the four-eyes check apply
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import grpc

from civfed.v1 import funds_pb2, funds_pb2_grpc
from services.cli.staff import call_node, connection_arguments
from services.funds import FIGURES, FundReport


def render(reports: list[FundReport], city: str, currency: str) -> str:
    lines = [f"Funds of {city} ({currency}; amounts in the smallest unit)"]
    for r in reports:
        lines.append("")
        lines.append(f"{r.fund_id}: {r.name}, funded by {r.funder}, period {r.period}")
        lines.append(f"  rules: {', '.join(r.rules) or '(none)'}; declared budget {r.declared}")
        for figure in FIGURES:
            euros = r.euros(getattr(r, figure))
            money = f"  EUR {euros}" if euros is not None else ""
            lines.append(f"  {figure:<12}{getattr(r, figure):>16}{money}")
        if r.euro_per_token is None:
            lines.append("  (this currency has no euro value: no euro figures)")
    return "\n".join(lines)


def cmd_report(args: argparse.Namespace) -> int:
    from services.city import CityApplication
    from services.settings.cities import cli_environment, load_city, load_settings

    settings = load_settings(cli_environment(args.data_dir))
    city = load_city(args.city, settings.CIVFED_CITIES_DIR)
    app = CityApplication(city, settings.eventsourcing_env(args.city))
    try:
        reports = app.fund_reports()
    finally:
        app.close()
    if args.json:
        rate = city.config.euro_per_token
        out = {
            "city": args.city,
            "euro_per_token": str(rate) if rate is not None else None,
            "funds": [r.as_dict() for r in reports],
        }
        print(json.dumps(out, indent=2))
    elif not reports:
        print(f"{city.config.name} declares no funds")
    else:
        print(render(reports, city.config.name, city.config.currency.name))
    return 0


def _print_top_up(t: Any) -> None:
    print(
        f"top-up {t.proposal_id} of fund {t.fund_id}: {t.amount} ({t.status});"
        f" proposed by {t.proposed_by}"
        + (f", approved by {t.approved_by} ({t.decision_ref})" if t.approved_by else "")
        + f"; budget {t.budget}, remaining {t.remaining}"
    )


def cmd_propose(args: argparse.Namespace) -> int:
    def run(channel: grpc.Channel, metadata: Any) -> None:
        req = funds_pb2.ProposeFundTopUpRequest(
            idempotency_key=args.idempotency_key or f"cli:top-up:{args.fund}:{args.amount}:{args.reason}",
            fund_id=args.fund,
            amount=args.amount,
            reason=args.reason,
        )
        _print_top_up(
            funds_pb2_grpc.FundServiceStub(channel).ProposeFundTopUp(req, metadata=metadata, timeout=30)
        )

    return call_node("funds", args, run)


def cmd_approve(args: argparse.Namespace) -> int:
    def run(channel: grpc.Channel, metadata: Any) -> None:
        req = funds_pb2.ApproveFundTopUpRequest(
            idempotency_key=args.idempotency_key or f"cli:approve-top-up:{args.proposal_id}",
            fund_id=args.fund,
            proposal_id=args.proposal_id,
            decision_ref=args.decision_ref,
        )
        _print_top_up(
            funds_pb2_grpc.FundServiceStub(channel).ApproveFundTopUp(req, metadata=metadata, timeout=30)
        )

    return call_node("funds", args, run)


KEY_HELP = "retry a call with the same key (default: made from the arguments)"


def register(sub: Any) -> None:
    group = sub.add_parser("funds", help="the funds behind a city's awards, and their top-ups")
    fsub = group.add_subparsers(dest="funds_command", required=True)
    report = fsub.add_parser("report", help="each fund's figures, in tokens and in euros")
    report.add_argument("--city", required=True, help="the city key, e.g. sint_niklaas")
    report.add_argument("--data-dir", help="where the SQLite stores live")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.set_defaults(func=cmd_report)
    top_up = fsub.add_parser("top-up", help="top a fund up: one person proposes, another approves")
    tsub = top_up.add_subparsers(dest="top_up_command", required=True)
    propose = tsub.add_parser("propose", help="propose a top-up of a fund, with its reason")
    propose.add_argument("--fund", required=True, help="the fund's id in city.toml")
    propose.add_argument("--amount", required=True, type=int, help="in the currency's smallest unit")
    propose.add_argument("--reason", required=True, help="why the fund needs more (recorded with the top-up)")
    propose.add_argument(
        "--idempotency-key", help="retry a call with the same key (default: made from the arguments)"
    )
    connection_arguments(propose)
    propose.set_defaults(func=cmd_propose)
    approve = tsub.add_parser("approve", help="approve another person's proposed top-up")
    approve.add_argument(
        "proposal_id", metavar="PROPOSAL_ID", help="the proposal's id, as proposing printed it"
    )
    approve.add_argument("--fund", required=True, help="the fund's id in city.toml")
    approve.add_argument("--decision-ref", required=True, help="the decision that grants it")
    approve.add_argument(
        "--idempotency-key", help="retry a call with the same key (default: made from the arguments)"
    )
    connection_arguments(approve)
    approve.set_defaults(func=cmd_approve)
