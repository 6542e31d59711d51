"""No input yields UNKNOWN or INTERNAL: every method of every service, with odd requests and every role."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor

from civfed.v1 import (
    cashback_pb2,
    claims_pb2,
    clearing_pb2,
    credentials_pb2,
    federation_pb2,
    funds_pb2,
    merchant_pb2,
    payouts_pb2,
    prizes_pb2,
    rights_pb2,
    rulebook_pb2,
    sources_pb2,
    wallet_pb2,
    workflow_pb2,
)
from services.demo.local_federation import LocalFederation
from services.grpc.auth import bearer
from tests.e2e.flows import open_wallet
from tests.grpc.conftest import in_process_federation

FILES = {
    "civfed.v1.WalletService": wallet_pb2,
    "civfed.v1.MerchantService": merchant_pb2,
    "civfed.v1.RulebookService": rulebook_pb2,
    "civfed.v1.RightsService": rights_pb2,
    "civfed.v1.CredentialService": credentials_pb2,
    "civfed.v1.SourceService": sources_pb2,
    "civfed.v1.ClaimService": claims_pb2,
    "civfed.v1.PrizeService": prizes_pb2,
    "civfed.v1.PayoutService": payouts_pb2,
    "civfed.v1.FundService": funds_pb2,
    "civfed.v1.ClearingAdminService": clearing_pb2,
    "civfed.v1.CashbackService": cashback_pb2,
}
ODD_STRINGS = ["", " ", "not-a-uuid", "x" * 5000, "\u0000\u202e", "eyJ2IjoxfQ.AAAA", "-1", "1e309"]
ODD_INTS = [0, -1, 2**63 - 1, -(2**63)]
ODD_INT32S = [0, -1, 2**31 - 1, -(2**31)]


def odd_requests(message: Any) -> list[Any]:
    """An empty request, then every scalar field set to each odd value in turn (others left as a UUID)."""
    out = [message()]
    fields = [f for f in message.DESCRIPTOR.fields if not f.is_repeated]
    for n in range(len(ODD_STRINGS)):
        req = message()
        for f in fields:
            if f.type == FieldDescriptor.TYPE_STRING:
                setattr(req, f.name, ODD_STRINGS[n])
            elif f.type == FieldDescriptor.TYPE_INT64:
                setattr(req, f.name, ODD_INTS[n % len(ODD_INTS)])
            elif f.type == FieldDescriptor.TYPE_INT32:
                setattr(req, f.name, ODD_INT32S[n % len(ODD_INT32S)])
            elif f.type == FieldDescriptor.TYPE_BOOL:
                setattr(req, f.name, bool(n % 2))
        out.append(req)
    # Each field odd on its own, the others plausible, so checks past the first are reached.
    for f, value in itertools.product(fields, ODD_STRINGS[:4]):
        req = message()
        for g in fields:
            if g.type == FieldDescriptor.TYPE_STRING:
                setattr(req, g.name, value if g is f else str(uuid.uuid4()))
            elif g.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_INT32):
                setattr(req, g.name, 1)
        out.append(req)
    return out


def methods(module: Any, service: str) -> list[tuple[str, Any, Any]]:
    desc = module.DESCRIPTOR.services_by_name[service.split(".")[-1]]
    return [
        (f"/{service}/{m.name}", getattr(module, m.input_type.name), getattr(module, m.output_type.name))
        for m in desc.methods
    ]


@pytest.mark.timeout(600)
def test_odd_requests_from_every_role_never_yield_internal(fed: LocalFederation) -> None:
    v = fed.stubs("vienna")
    opened = open_wallet(v, "odd-w")
    shop = v.merchant.RegisterMerchant(
        merchant_pb2.RegisterMerchantRequest(
            idempotency_key="odd-m", name="Odd", category="food", local=True
        ),
        metadata=v.staff,
        timeout=5,
    )
    roles = [v.staff, bearer(opened.holder_token), bearer(shop.merchant_token), bearer("holder.x.y"), ()]
    sn = fed.files["sint_niklaas"]
    channels = {"citizen": v.channel, "partner": fed.channel("vienna", sn.cert, sn.key)}
    calls = [
        (channels["citizen"], path, req_type, roles)
        for service, module in FILES.items()
        for path, req_type, _ in methods(module, service)
    ] + [
        (channels["partner"], path, req_type, [()])
        for path, req_type, _ in methods(federation_pb2, "civfed.v1.FederationService")
    ]
    seen: dict[grpc.StatusCode, int] = {}
    for channel, path, req_type, metadatas in calls:
        rpc = channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString())
        for request, metadata in itertools.product(odd_requests(req_type), metadatas):
            try:
                rpc(request, metadata=metadata, timeout=10)
                code, details = grpc.StatusCode.OK, ""
            except grpc.RpcError as exc:
                code, details = exc.code(), exc.details() or ""
            assert code not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), (path, request, details)
            assert "Traceback" not in details and 'File "' not in details, (path, details)
            seen[code] = seen.get(code, 0) + 1
    # The odd inputs reached the checks: refusals of each kind, named fields among them.
    assert {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    } <= set(seen), seen


@pytest.mark.timeout(600)
def test_odd_workflow_requests_from_every_role_never_yield_internal(tmp_path: Path) -> None:
    """WorkflowService, on a city that has a workflow (Zwolle)."""
    with in_process_federation(tmp_path, ["zwolle"]) as fed:
        z = fed.stubs("zwolle")
        opened = open_wallet(z, "odd-w", "zwolle-werkt-2026-09")
        coordinator = fed.staff("coord", "work_coordinator", "council_approver", "auditor")
        roles = [z.staff, coordinator, bearer(opened.holder_token), bearer("holder.x.y"), ()]
        seen: dict[grpc.StatusCode, int] = {}
        for path, req_type, _ in methods(workflow_pb2, "civfed.v1.WorkflowService"):
            rpc = z.channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString())
            for request, metadata in itertools.product(odd_requests(req_type), roles):
                try:
                    rpc(request, metadata=metadata, timeout=10)
                    code, details = grpc.StatusCode.OK, ""
                except grpc.RpcError as exc:
                    code, details = exc.code(), exc.details() or ""
                assert code not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), (
                    path,
                    request,
                    details,
                )
                assert "Traceback" not in details and 'File "' not in details, (path, details)
                seen[code] = seen.get(code, 0) + 1
        z.close()
    assert sum(seen.values()) > 1000, seen  # every method, every odd request, every caller
    assert {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    } <= set(seen), seen
