"""`civfed desk ...`: the service desk's calls, made over gRPC like any staff tool, so they pass
the same access policy, four-eyes checks and records as an app would.

The staff member's access token comes from `CIVFED_STAFF_ACCESS_TOKEN` (never an argument:
arguments show in process lists). A credential a call issues is printed once, to hand over.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from civfed.v1 import credentials_pb2 as pb
from civfed.v1 import credentials_pb2_grpc
from services.cli.staff import call_node, connection_arguments

TOKEN = "CIVFED_STAFF_ACCESS_TOKEN"


def _request(args: argparse.Namespace) -> tuple[str, Any]:
    if args.desk == "recovery-request":
        return "RequestRecovery", pb.RequestRecoveryRequest(
            idempotency_key=args.key, wallet_id=args.wallet, reason=args.reason
        )
    if args.desk == "recovery-approve":
        return "ApproveRecovery", pb.ApproveRecoveryRequest(
            idempotency_key=args.key, wallet_id=args.wallet, recovery_id=args.recovery
        )
    if args.desk == "till-issue":
        return "IssueTillCredential", pb.IssueTillCredentialRequest(
            idempotency_key=args.key, merchant_id=args.merchant, label=args.label
        )
    if args.desk == "till-list":
        return "ListTillCredentials", pb.ListTillCredentialsRequest(merchant_id=args.merchant)
    return "RevokeTillCredential", pb.RevokeTillCredentialRequest(
        idempotency_key=args.key, merchant_id=args.merchant, credential_id=args.credential
    )


def cmd_desk(args: argparse.Namespace) -> int:
    method, request = _request(args)

    def run(channel: grpc.Channel, metadata: Any) -> None:
        stub: Any = credentials_pb2_grpc.CredentialServiceStub(channel)
        response = getattr(stub, method)(request, metadata=metadata, timeout=args.timeout)
        print(json.dumps(MessageToDict(response, preserving_proto_field_name=True), indent=2))

    return call_node("desk", args, run)


def register(sub: Any) -> None:
    desk = sub.add_parser(
        "desk", help="the service desk's credential calls, over gRPC with your access token"
    )
    calls = desk.add_subparsers(dest="desk", required=True)

    def call(name: str, help_: str, key: bool = True) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = calls.add_parser(name, help=help_)
        connection_arguments(p)
        p.add_argument(
            "--timeout", type=float, default=10.0, help="seconds to wait for the node (default 10)"
        )
        if key:
            p.add_argument(
                "--key", required=True, help="idempotency key: a retry with it returns the first answer"
            )
        p.set_defaults(func=cmd_desk)
        return p

    p = call("recovery-request", "ask for a lost wallet's recovery (recorder)")
    p.add_argument("--wallet", required=True, help="the wallet id (a UUID)")
    p.add_argument("--reason", required=True, help="why, in words the holder will read")
    p = call(
        "recovery-approve", "approve another recorder's recovery request; prints the new credential once"
    )
    p.add_argument("--wallet", required=True, help="the wallet id (a UUID)")
    p.add_argument("--recovery", required=True, help="the recovery request's id, as the request printed it")
    p = call("till-issue", "a new till credential (merchant_admin); printed once")
    p.add_argument("--merchant", required=True, help="the merchant id (a UUID)")
    p.add_argument("--label", default="till", help="a name for the till, e.g. checkout 2 (default: till)")
    p = call("till-list", "a merchant's till credentials (merchant_admin)", key=False)
    p.add_argument("--merchant", required=True, help="the merchant id (a UUID)")
    p = call("till-revoke", "revoke one till credential (merchant_admin)")
    p.add_argument("--merchant", required=True, help="the merchant id (a UUID)")
    p.add_argument("--credential", required=True, help="the till credential's id, as till-list shows it")
