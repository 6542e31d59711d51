"""Staff tools that touch one person's data, all through a node's public gRPC port with the
staff member's own access token, so the node's policy table, four-eyes checks and the
person's access log apply to them as to any other staff call:

  civfed history WALLET_ID --purpose WHY         a person's events (logged with the purpose)
  civfed access-log WALLET_ID --purpose WHY      a person's access log (auditors; logged too)
  civfed erase request WALLET_ID --legal-basis B --reference R
  civfed erase approve REQUEST_ID                by a second erasure officer
  civfed erase withdraw REQUEST_ID --reason WHY  by the officer who requested it

Where the node is: CIVFED_NODE_ADDRESS (host:port of its public port) and
CIVFED_NODE_CA_FILE (the CA its certificate chains to; unset: the system's roots). The
token: CIVFED_STAFF_ACCESS_TOKEN, or a file named by --token-file; never an argument, which
other users of the machine could see. There is no path here that reads the stores directly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import grpc

from civfed.v1 import rights_pb2, rights_pb2_grpc, wallet_pb2, wallet_pb2_grpc
from services.cli.lang import explicit_language
from services.grpc.auth import bearer
from services.settings.errors import ConfigError


def _uuid(command: str, what: str, value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        noun = "a wallet id" if what == "WALLET_ID" else "an erasure request id"
        print(f"civfed {command}: {what}: {value!r} is not {noun} (a UUID)", file=sys.stderr)
        return None


def _token(args: argparse.Namespace) -> str:
    if args.token_file:
        try:
            token = Path(args.token_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"--token-file: cannot read {args.token_file} ({exc.strerror})") from None
    else:
        token = os.environ.get("CIVFED_STAFF_ACCESS_TOKEN", "").strip()
    if not token:
        raise ConfigError("CIVFED_STAFF_ACCESS_TOKEN: a staff access token is needed (or --token-file)")
    return token


def _channel(args: argparse.Namespace) -> grpc.Channel:
    address = args.node or os.environ.get("CIVFED_NODE_ADDRESS", "")
    if not address:
        raise ConfigError("CIVFED_NODE_ADDRESS: the node's public address (host:port) is needed (or --node)")
    ca_file = args.ca_file or os.environ.get("CIVFED_NODE_CA_FILE", "")
    try:
        roots = Path(ca_file).read_bytes() if ca_file else None
    except OSError as exc:
        raise ConfigError(f"CIVFED_NODE_CA_FILE: cannot read {ca_file} ({exc.strerror})") from None
    options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
    return grpc.secure_channel(
        address, grpc.ssl_channel_credentials(root_certificates=roots), options=options
    )


def call_node(command: str, args: argparse.Namespace, run: Callable[[grpc.Channel, Any], Any]) -> int:
    """Run one call with the staff member's token; a refusal is printed with its status."""
    metadata = bearer(_token(args))
    channel = _channel(args)
    try:
        run(channel, metadata)
    except grpc.RpcError as exc:
        details = exc.details() or ""
        if command == "erase" and exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
            if details.endswith(" is erased"):
                # Approved before: the wallet is erased, which is what was asked.
                print(f"civfed erase: already erased, nothing to do ({details})", file=sys.stderr)
                return 0
            if "idempotency key was already used" in details:
                print(
                    "civfed erase: this request was already sent with other details; it stands as"
                    " first recorded (pass --idempotency-key to make a new one)",
                    file=sys.stderr,
                )
                return 1
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            print(
                f"civfed {command}: the node at {args.node or os.environ.get('CIVFED_NODE_ADDRESS', '')}"
                f" does not answer ({details}); check CIVFED_NODE_ADDRESS or --node",
                file=sys.stderr,
            )
            return 1
        print(f"civfed {command}: {exc.code().name}: {details}", file=sys.stderr)
        return 1
    finally:
        channel.close()
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    wallet = _uuid("history", "WALLET_ID", args.wallet_id)
    if wallet is None:
        return 2

    def run(channel: grpc.Channel, metadata: Any) -> None:
        # The person's events in the language asked for (--lang, CIVFED_LANG), else the city's.
        chosen = explicit_language(getattr(args, "lang", None)) or ""
        req = wallet_pb2.ListMyEventsRequest(wallet_id=str(wallet), purpose=args.purpose, language=chosen)
        events = wallet_pb2_grpc.WalletServiceStub(channel).ListMyEvents(req, metadata=metadata, timeout=30)
        for e in events.events:
            rule = f"{e.rule_id} v{e.rule_version}" if e.rule_id else "-"
            print(f"{e.timestamp}  {e.type:<22} {rule:<20} {e.explanation}")

    return call_node("history", args, run)


def cmd_access_log(args: argparse.Namespace) -> int:
    wallet = _uuid("access-log", "WALLET_ID", args.wallet_id)
    if wallet is None:
        return 2

    def run(channel: grpc.Channel, metadata: Any) -> None:
        req = rights_pb2.ListAccessLogRequest(wallet_id=str(wallet), purpose=args.purpose)
        log = rights_pb2_grpc.RightsServiceStub(channel).ListAccessLog(req, metadata=metadata, timeout=30)
        for e in log.entries:
            print(f"{e.at}  {e.subject} ({', '.join(e.roles)})  {e.action}  purpose: {e.purpose or '-'}")

    return call_node("access-log", args, run)


def _print_status(status: Any) -> None:
    fields = ("request_id", "wallet_id", "status", "legal_basis", "reference", "requested_by")
    out = {name: getattr(status, name) for name in fields}
    out.update({k: v for k in ("approved_by", "withdrawn_by") if (v := getattr(status, k))})
    print(json.dumps(out))


def cmd_erase_request(args: argparse.Namespace) -> int:
    wallet = _uuid("erase", "WALLET_ID", args.wallet_id)
    if wallet is None:
        return 2

    def run(channel: grpc.Channel, metadata: Any) -> None:
        req = rights_pb2.RequestErasureRequest(
            idempotency_key=args.idempotency_key or f"cli:erase:{wallet}:{args.legal_basis}:{args.reference}",
            wallet_id=str(wallet),
            legal_basis=args.legal_basis,
            reference=args.reference,
        )
        _print_status(
            rights_pb2_grpc.RightsServiceStub(channel).RequestErasure(req, metadata=metadata, timeout=30)
        )

    return call_node("erase", args, run)


def cmd_erase_approve(args: argparse.Namespace) -> int:
    request_id = _uuid("erase", "REQUEST_ID", args.request_id)
    if request_id is None:
        return 2

    def run(channel: grpc.Channel, metadata: Any) -> None:
        req = rights_pb2.ApproveErasureRequest(
            idempotency_key=args.idempotency_key or f"cli:approve:{request_id}", request_id=str(request_id)
        )
        _print_status(
            rights_pb2_grpc.RightsServiceStub(channel).ApproveErasure(req, metadata=metadata, timeout=30)
        )

    return call_node("erase", args, run)


def cmd_erase_withdraw(args: argparse.Namespace) -> int:
    request_id = _uuid("erase", "REQUEST_ID", args.request_id)
    if request_id is None:
        return 2

    def run(channel: grpc.Channel, metadata: Any) -> None:
        req = rights_pb2.WithdrawErasureRequest(
            idempotency_key=args.idempotency_key or f"cli:withdraw:{request_id}",
            request_id=str(request_id),
            reason=args.reason,
        )
        _print_status(
            rights_pb2_grpc.RightsServiceStub(channel).WithdrawErasure(req, metadata=metadata, timeout=30)
        )

    return call_node("erase", args, run)


def connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--node",
        "--address",
        dest="node",
        help="the node's public address, host:port (default: CIVFED_NODE_ADDRESS)",
    )
    parser.add_argument(
        "--ca-file",
        "--ca",
        dest="ca_file",
        help="CA of the node's certificate (default: CIVFED_NODE_CA_FILE)",
    )
    parser.add_argument("--server-name", help="the name to check on the node's certificate, if not the host")
    parser.add_argument("--token-file", help="a file holding your staff access token")


def register(sub: Any) -> None:
    history = sub.add_parser(
        "history", help="a person's events, read through the node and written to their access log"
    )
    history.add_argument("wallet_id", metavar="WALLET_ID", help="the person's wallet id (a UUID)")
    history.add_argument("--purpose", required=True, help="why you read it (the person sees it)")
    connection_arguments(history)
    history.set_defaults(func=cmd_history)

    log = sub.add_parser("access-log", help="a person's access log (auditors; the read is logged too)")
    log.add_argument("wallet_id", metavar="WALLET_ID", help="the person's wallet id (a UUID)")
    log.add_argument("--purpose", required=True, help="why you read it (the person sees it)")
    connection_arguments(log)
    log.set_defaults(func=cmd_access_log)

    erase = sub.add_parser(
        "erase", help="erasure on a legal basis: one erasure officer requests, a second approves"
    ).add_subparsers(dest="erase_command", required=True)
    request = erase.add_parser("request", help="request erasure of one person's wallet")
    request.add_argument("wallet_id", metavar="WALLET_ID", help="the wallet to erase (a UUID)")
    request.add_argument("--legal-basis", required=True, help="e.g. art17_1b_consent_withdrawn")
    request.add_argument("--reference", required=True, help="a case or file reference, no personal data")
    request.add_argument(
        "--idempotency-key",
        help="a retry with the same key returns the first answer (default: made from the arguments)",
    )
    connection_arguments(request)
    request.set_defaults(func=cmd_erase_request)
    approve = erase.add_parser("approve", help="approve another officer's request: the wallet is erased")
    approve.add_argument(
        "request_id", metavar="REQUEST_ID", help="the erasure request's id, as `erase request` printed it"
    )
    approve.add_argument(
        "--idempotency-key",
        help="a retry with the same key returns the first answer (default: made from the arguments)",
    )
    connection_arguments(approve)
    approve.set_defaults(func=cmd_erase_approve)
    withdraw = erase.add_parser("withdraw", help="withdraw your own pending request")
    withdraw.add_argument("request_id", metavar="REQUEST_ID", help="your pending erasure request's id")
    withdraw.add_argument("--reason", required=True, help="why it is withdrawn (recorded)")
    withdraw.add_argument(
        "--idempotency-key",
        help="a retry with the same key returns the first answer (default: made from the arguments)",
    )
    connection_arguments(withdraw)
    withdraw.set_defaults(func=cmd_erase_withdraw)
