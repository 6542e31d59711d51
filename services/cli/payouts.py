"""`civfed payouts ...`: a city's shop payouts, run and listed over gRPC with a finance
officer's own access token, like every staff tool (services/cli/staff.py):

  civfed payouts propose --city sint-niklaas --period 2026-W22 [--json]
  civfed payouts run --city sint-niklaas --period 2026-W22 --out payouts.xml [--json]
  civfed payouts list [--json]

Four eyes: one finance officer proposes a period's run, another runs it; only the run pays.

A run pays each shop the euro value of the tokens it collected since its last payout, at
the city's published rate, rounded down to the cent; the fraction of a cent left is carried
to the shop's next payout. The SEPA credit transfer file (pain.001) is written to --out. A
period is paid out once: running it again records nothing, writes no file and says so.
"""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from civfed.v1 import payouts_pb2, payouts_pb2_grpc
from services.cli.staff import call_node, connection_arguments


def _euros(cents: int) -> str:
    return f"EUR {cents // 100}.{cents % 100:02d}"


def cmd_propose(args: argparse.Namespace) -> int:
    def run(channel: grpc.Channel, metadata: Any) -> None:
        key = args.idempotency_key or f"cli:payouts-propose:{args.city}:{args.period}:{uuid.uuid4()}"
        req = payouts_pb2.ProposePayoutRunRequest(idempotency_key=key, period=args.period, city=args.city)
        stub: Any = payouts_pb2_grpc.PayoutServiceStub(channel)
        response = stub.ProposePayoutRun(req, metadata=metadata, timeout=args.timeout)
        r = response.run
        if args.json:
            shown = MessageToDict(r, preserving_proto_field_name=True)
            shown["already_proposed"] = response.already_proposed
            print(json.dumps(shown, indent=2))
        elif response.already_proposed:
            print(f"{r.period} has a run already ({r.state}, proposed by {r.proposed_by}): nothing new.")
        else:
            print(
                f"Payout run {r.period} proposed by {r.proposed_by}: {len(r.lines)} shops, {r.tokens} units, "
                f"{_euros(r.euro_cents)} at today's rate; another finance officer runs it, paying no more."
            )

    return call_node("payouts", args, run)


def cmd_run(args: argparse.Namespace) -> int:
    out = Path(args.out)

    def run(channel: grpc.Channel, metadata: Any) -> None:
        # A fresh key per invocation: running the command again asks the node again, and the
        # node answers that the period was paid out already (--idempotency-key to retry one).
        key = args.idempotency_key or f"cli:payouts:{args.city}:{args.period}:{uuid.uuid4()}"
        req = payouts_pb2.RunPayoutsRequest(idempotency_key=key, period=args.period, city=args.city)
        stub: Any = payouts_pb2_grpc.PayoutServiceStub(channel)
        response = stub.RunPayouts(req, metadata=metadata, timeout=args.timeout)
        written = False
        if not response.already_run and response.sepa_file:
            out.write_bytes(response.sepa_file)
            written = True
        if args.json:
            shown = MessageToDict(response.run, preserving_proto_field_name=True)
            shown.update(
                already_run=response.already_run,
                file=str(out) if written else None,
                skipped_merchant_ids=list(response.skipped_merchant_ids),
            )
            print(json.dumps(shown, indent=2))
            return
        r = response.run
        if response.already_run:
            print(
                f"{r.period} was paid out already (run {r.run_id}, by {r.recorded_by}): "
                "nothing new was paid and no file was written."
            )
            return
        print(
            f"Payout run {r.period}: {len(r.lines)} shops, {r.tokens} token units, "
            f"{_euros(r.euro_cents)} at {r.rate} euro cents per unit."
        )
        print(
            f"SEPA credit transfer file written to {out}."
            if written
            else "No transfer of a whole cent: no file was written."
        )
        print(
            "Amounts are rounded down to the cent; each fraction left is carried to the shop's next payout."
        )
        for skipped in response.skipped_merchant_ids:
            print(f"Not paid (no valid bank account): shop {skipped}; its tokens wait for a later run.")

    return call_node("payouts", args, run)


def cmd_list(args: argparse.Namespace) -> int:
    def run(channel: grpc.Channel, metadata: Any) -> None:
        stub: Any = payouts_pb2_grpc.PayoutServiceStub(channel)
        runs = stub.ListPayoutRuns(
            payouts_pb2.ListPayoutRunsRequest(), metadata=metadata, timeout=args.timeout
        )
        if args.json:
            print(json.dumps(MessageToDict(runs, preserving_proto_field_name=True).get("runs", []), indent=2))
            return
        for r in runs.runs:
            print(
                f"{r.period}  {r.state:<8}  {len(r.lines):>3} shops  {r.tokens:>10} units  "
                f"{_euros(r.euro_cents):>14}  {r.execution_date or '-'}  "
                f"proposed by {r.proposed_by}, run by {r.recorded_by or '-'}"
            )

    return call_node("payouts", args, run)


def register(sub: Any) -> None:
    payouts = sub.add_parser(
        "payouts", help="shop payouts in euros: run a period (finance_officer) or list the runs"
    ).add_subparsers(dest="payouts_command", required=True)
    propose = payouts.add_parser("propose", help="propose a period's run, for another officer to run")
    propose.add_argument("--city", required=True, help="the city the node serves (sint-niklaas)")
    propose.add_argument("--period", required=True, help="an ISO week (2026-W22) or a month (2026-06)")
    propose.add_argument("--json", action="store_true", help="print the result as JSON")
    propose.add_argument("--idempotency-key", help="to retry a proposal whose answer was lost")
    propose.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for the node (default: %(default)s)"
    )
    connection_arguments(propose)
    propose.set_defaults(func=cmd_propose)
    run = payouts.add_parser("run", help="run (approve) a proposed period: pay shops, write the SEPA file")
    run.add_argument("--city", required=True, help="the city the node serves (sint-niklaas)")
    run.add_argument("--period", required=True, help="an ISO week (2026-W22) or a month (2026-06)")
    run.add_argument("--out", required=True, help="where to write the pain.001 file")
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    run.add_argument("--idempotency-key", help="to retry a run whose answer was lost")
    run.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the node (default: %(default)s)"
    )
    connection_arguments(run)
    run.set_defaults(func=cmd_run)
    listed = payouts.add_parser("list", help="the city's payout runs")
    listed.add_argument("--json", action="store_true", help="print the result as JSON")
    listed.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for the node (default: %(default)s)"
    )
    connection_arguments(listed)
    listed.set_defaults(func=cmd_list)
