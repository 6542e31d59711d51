"""`civfed clearing run --city X --partner Y --period YYYY-MM` and `civfed clearing list --city X`:
a city's staff clear a month with a partner city, and read the statements and open positions,
over gRPC to the city's node with their own access token (the policy table applies: a
`council_approver` runs the clearing, auditors read). Connection settings as for the other
staff tools (services/cli/staff.py)."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from typing import Any

import grpc

from civfed.v1 import clearing_pb2, clearing_pb2_grpc
from services.cli.staff import call_node, connection_arguments


def statement_json(s: Any) -> dict[str, Any]:
    f = s.figures
    return {
        "city_a": f.city_a,
        "city_b": f.city_b,
        "period": f.period,
        "owed_by_a": f.owed_by_a,
        "owed_by_b": f.owed_by_b,
        "redemptions": f.redemptions,
        "digest": f.digest,
        "signature_a": base64.b64encode(s.signature_a).decode(),
        "signature_b": base64.b64encode(s.signature_b).decode(),
    }


def cmd_clearing_run(args: argparse.Namespace) -> int:
    if not args.server_name:
        args.server_name = args.city

    found: list[Any] = []

    def run(channel: grpc.Channel, metadata: Any) -> None:
        stub = clearing_pb2_grpc.ClearingAdminServiceStub(channel)
        req = clearing_pb2.RunClearingRequest(partner_city=args.partner, period=args.period)
        found.append(stub.RunClearing(req, metadata=metadata, timeout=120).statement)

    code = call_node("clearing run", args, run)
    if code != 0:
        return code
    statement = found[0]
    if args.city not in (statement.figures.city_a, statement.figures.city_b):
        print(f"civfed clearing run: the node that answered is not {args.city}'s", file=sys.stderr)
        return 1
    print(json.dumps(statement_json(statement)))
    return 0


def cmd_clearing_list(args: argparse.Namespace) -> int:
    if not args.server_name:
        args.server_name = args.city
    found: list[Any] = []

    def run(channel: grpc.Channel, metadata: Any) -> None:
        stub = clearing_pb2_grpc.ClearingAdminServiceStub(channel)
        found.append(stub.ListClearings(clearing_pb2.ListClearingsRequest(), metadata=metadata, timeout=60))

    code = call_node("clearing list", args, run)
    if code != 0:
        return code
    listed = found[0]
    if listed.city != args.city:
        print(
            f"civfed clearing list: the node that answered is {listed.city}'s, not {args.city}'s",
            file=sys.stderr,
        )
        return 1
    out = {
        "city": listed.city,
        "statements": [statement_json(s) for s in listed.statements],
        "open": [
            {
                "partner_city": p.partner_city,
                "owed_by_us": p.owed_by_us,
                "owed_by_partner": p.owed_by_partner,
                "redemptions": p.redemptions,
            }
            for p in listed.open
        ],
    }
    print(json.dumps(out))
    return 0


def register(sub: Any) -> None:
    clearing = sub.add_parser(
        "clearing", help="clearing between cities: signed monthly statements, open positions"
    ).add_subparsers(dest="clearing_command", required=True)
    run = clearing.add_parser("run", help="clear one month with one partner city (both cities sign)")
    run.add_argument("--city", required=True, help="this city (the node's)")
    run.add_argument("--partner", required=True, help="the partner city")
    run.add_argument("--period", required=True, help="the month, YYYY-MM")
    connection_arguments(run)
    run.set_defaults(func=cmd_clearing_run)
    listed = clearing.add_parser("list", help="the city's clearing statements and open positions")
    listed.add_argument("--city", required=True, help="this city (the node's)")
    connection_arguments(listed)
    listed.set_defaults(func=cmd_clearing_list)
