"""`civfed desk`: the desk's recovery and till calls from the command line, over gRPC to a
real node's public port, with each staff member's own access token."""

from __future__ import annotations

import json
import uuid
from typing import Any

import grpc
import pytest

from civfed.v1 import merchant_pb2, wallet_pb2
from services.cli.desk import TOKEN
from services.cli.main import main
from services.demo.local_federation import LocalFederation
from services.grpc.auth import bearer
from tests.e2e.flows import open_wallet


def desk(
    fed: LocalFederation, monkeypatch: pytest.MonkeyPatch, capsys: Any, token: str, *argv: str
) -> tuple[int, Any]:
    monkeypatch.setenv(TOKEN, token)
    port = fed.running["vienna"].public_port
    where = ["--address", f"127.0.0.1:{port}", "--ca", str(fed.ca.ca_file), "--server-name", "vienna"]
    code = main(["desk", argv[0], *where, *argv[1:]])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if code == 0 else out.err)


def test_the_desk_recovers_a_wallet_with_two_people_from_the_command_line(
    fed: LocalFederation, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    v = fed.stubs("vienna")
    opened = open_wallet(v, f"desk:{uuid.uuid4()}")
    eva, jan = fed.idp.token("eva", ["recorder"]), fed.idp.token("jan", ["recorder"])
    code, asked = desk(
        fed,
        monkeypatch,
        capsys,
        eva,
        "recovery-request",
        "--key",
        "k1",
        "--wallet",
        opened.wallet_id,
        "--reason",
        "lost phone",
    )
    assert code == 0
    approve = [
        "recovery-approve",
        "--key",
        "k2",
        "--wallet",
        opened.wallet_id,
        "--recovery",
        asked["recovery_id"],
    ]
    code, err = desk(fed, monkeypatch, capsys, eva, *approve)
    assert code == 1 and "FAILED_PRECONDITION" in err
    code, recovered = desk(fed, monkeypatch, capsys, jan, *approve)
    assert code == 0 and recovered["credential"]
    balance = wallet_pb2.GetBalanceRequest(wallet_id=opened.wallet_id)
    v.wallet.GetBalance(balance, metadata=bearer(recovered["credential"]), timeout=5)
    with pytest.raises(grpc.RpcError) as refused:
        v.wallet.GetBalance(balance, metadata=bearer(opened.holder_token), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # The retry prints no credential.
    code, again = desk(fed, monkeypatch, capsys, jan, *approve)
    assert code == 0 and "credential" not in again and again["credential_id"] == recovered["credential_id"]


def test_the_desk_issues_and_revokes_a_till_credential(
    fed: LocalFederation, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    v = fed.stubs("vienna")
    admin = fed.idp.token("mia", ["merchant_admin"])
    shop = v.merchant.RegisterMerchant(
        merchant_pb2.RegisterMerchantRequest(
            idempotency_key=f"desk:{uuid.uuid4()}", name="Bakery", category="food", local=True
        ),
        metadata=bearer(admin),
        timeout=5,
    )
    code, till = desk(
        fed,
        monkeypatch,
        capsys,
        admin,
        "till-issue",
        "--key",
        "t1",
        "--merchant",
        shop.merchant_id,
        "--label",
        "till 2",
    )
    assert code == 0 and till["credential"]
    code, listed = desk(fed, monkeypatch, capsys, admin, "till-list", "--merchant", shop.merchant_id)
    assert code == 0 and {c["label"] for c in listed["credentials"]} == {"first till", "till 2"}
    code, _ = desk(
        fed,
        monkeypatch,
        capsys,
        admin,
        "till-revoke",
        "--key",
        "t2",
        "--merchant",
        shop.merchant_id,
        "--credential",
        till["credential_id"],
    )
    assert code == 0
    with pytest.raises(grpc.RpcError) as refused:
        v.merchant.GetStatement(
            merchant_pb2.GetStatementRequest(), metadata=bearer(till["credential"]), timeout=5
        )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # A recorder is not a merchant administrator.
    code, err = desk(
        fed,
        monkeypatch,
        capsys,
        fed.idp.token("eva", ["recorder"]),
        "till-list",
        "--merchant",
        shop.merchant_id,
    )
    assert code == 1 and "PERMISSION_DENIED" in err


def test_the_desk_needs_an_access_token(
    fed: LocalFederation, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    code, err = desk(fed, monkeypatch, capsys, "", "till-list", "--merchant", str(uuid.uuid4()))
    assert code == 2 and TOKEN in err
