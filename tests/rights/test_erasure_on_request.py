"""Erasure only on the person's request or the published retention policy: a holder erases
their own wallet with their credential; staff erase only as an `erasure_officer`, on a
recorded legal basis, with a second officer's approval (four eyes by authenticated subject).
Both paths are recorded. Through gRPC against real in-process nodes."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import grpc
import pytest

from civfed.v1 import rights_pb2, rights_pb2_grpc, wallet_pb2
from services.access_log import access_log
from services.city import CityApplication
from services.cli import main
from services.demo.local_federation import LocalFederation
from services.event_log import event_type, read_events
from services.grpc.auth import bearer
from services.history import history
from services.privacy.sealing import REDACTED
from tests.e2e.flows import attest, open_wallet

TRIP = {"mode": "bike", "distance_m": "400000", "date": "2026-05-03"}  # 4 tokens
BASIS = "art17_1b_consent_withdrawn"


def rights(fed: LocalFederation) -> Any:
    return rights_pb2_grpc.RightsServiceStub(fed.stubs("vienna").channel)


def app(fed: LocalFederation) -> CityApplication:
    return fed.running["vienna"].node.app


def person(fed: LocalFederation, tag: str, distance_m: int = 400_000) -> tuple[str, Any]:
    v = fed.stubs("vienna")
    opened = open_wallet(v, f"{tag}:open")
    trip = {**TRIP, "distance_m": str(distance_m)}
    attest(v, f"{tag}-commute-7741", opened.wallet_id, "trip", trip)
    return opened.wallet_id, bearer(opened.holder_token)


def code_of(call: Any, request: Any, metadata: Any) -> grpc.StatusCode:
    try:
        call(request, metadata=metadata, timeout=5)
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return grpc.StatusCode.OK


def request_erasure(fed: LocalFederation, key: str, wallet: str, officer: Any) -> Any:
    req = rights_pb2.RequestErasureRequest(
        idempotency_key=key, wallet_id=wallet, legal_basis=BASIS, reference="DSR-2026-0142"
    )
    return rights(fed).RequestErasure(req, metadata=officer, timeout=5)


def approve(request_id: str, key: str) -> rights_pb2.ApproveErasureRequest:
    return rights_pb2.ApproveErasureRequest(idempotency_key=key, request_id=request_id)


def recorded(fed: LocalFederation, aggregate_id: str) -> list[str]:
    return [event_type(e) for e in app(fed).events.get(UUID(aggregate_id))]


def erased(fed: LocalFederation, wallet: str) -> bool:
    a = app(fed)
    assert a.keys is not None
    return a.wallet(UUID(wallet)).erased and a.keys.key_for(UUID(wallet), create=False) is None


def test_a_holder_erases_their_own_wallet_with_their_credential(fed: LocalFederation) -> None:
    v = fed.stubs("vienna")
    wallet, holder = person(fed, "self1")
    _, other_holder = person(fed, "self1-other")
    req = rights_pb2.EraseMyWalletRequest(idempotency_key="self1:erase", wallet_id=wallet)
    # Nobody else: not another holder, not staff with every role, not an anonymous caller.
    assert code_of(rights(fed).EraseMyWallet, req, other_holder) == grpc.StatusCode.PERMISSION_DENIED
    assert code_of(rights(fed).EraseMyWallet, req, v.staff) == grpc.StatusCode.PERMISSION_DENIED
    assert code_of(rights(fed).EraseMyWallet, req, ()) == grpc.StatusCode.UNAUTHENTICATED
    assert not erased(fed, wallet)

    done = rights(fed).EraseMyWallet(req, metadata=holder, timeout=5)
    assert (done.status, done.requested_by, done.approved_by, done.legal_basis) == (
        "erased",
        f"holder:{wallet}",
        f"holder:{wallet}",
        "holder_request",
    )
    assert erased(fed, wallet)
    a = app(fed)
    assert a.wallet(UUID(wallet)).balance == 0  # forfeited, as erasure always was
    # Recorded: the request with who and on which basis, and the wallet's erasure.
    assert recorded(fed, done.request_id) == ["ErasureRequest.Requested", "ErasureRequest.Approved"]
    assert "Wallet.Erased" in recorded(fed, wallet)
    # A retry answers the same; the person's trips read as erased.
    assert rights(fed).EraseMyWallet(req, metadata=holder, timeout=5).request_id == done.request_id
    credits = [e for e in history(a, UUID(wallet)) if e.type == "Wallet.Credited"]
    assert credits and {e.explanation for e in credits} == {REDACTED}


def test_one_erasure_officer_cannot_erase_without_a_second_officers_approval(fed: LocalFederation) -> None:
    wallet, _ = person(fed, "four1")
    anna = fed.staff("officer-anna", "erasure_officer")
    # The same person under another display name is still the same subject.
    anna_again = bearer(fed.idp.token("officer-anna", ["erasure_officer"], name="A. Officer (deputy)"))
    ben = fed.staff("officer-ben", "erasure_officer")
    recorder = fed.staff("desk-1", "recorder")

    # A request needs the role and a published legal basis.
    bad = rights_pb2.RequestErasureRequest(
        idempotency_key="four1:bad", wallet_id=wallet, legal_basis="because", reference="DSR-1"
    )
    assert code_of(rights(fed).RequestErasure, bad, anna) == grpc.StatusCode.INVALID_ARGUMENT
    good = rights_pb2.RequestErasureRequest(
        idempotency_key="four1:req", wallet_id=wallet, legal_basis=BASIS, reference="DSR-1"
    )
    assert code_of(rights(fed).RequestErasure, good, recorder) == grpc.StatusCode.PERMISSION_DENIED

    asked = request_erasure(fed, "four1:request", wallet, anna)
    assert (asked.status, asked.requested_by, asked.legal_basis) == ("requested", "staff:officer-anna", BASIS)
    assert not erased(fed, wallet)  # a request erases nothing

    for who, key in ((anna, "four1:self"), (anna_again, "four1:self-again")):
        with pytest.raises(grpc.RpcError) as err:
            rights(fed).ApproveErasure(approve(asked.request_id, key), metadata=who, timeout=5)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "second erasure officer" in (err.value.details() or "")
    # Not a recorder either, however many people there are.
    approval = approve(asked.request_id, "four1:desk")
    assert code_of(rights(fed).ApproveErasure, approval, recorder) == grpc.StatusCode.PERMISSION_DENIED
    assert not erased(fed, wallet)

    done = rights(fed).ApproveErasure(approve(asked.request_id, "four1:ben"), metadata=ben, timeout=5)
    assert (done.status, done.requested_by, done.approved_by) == (
        "erased",
        "staff:officer-anna",
        "staff:officer-ben",
    )
    assert erased(fed, wallet)
    # Recorded: the request (basis and reference stay readable) and both officers' steps in
    # the person's access log.
    assert recorded(fed, asked.request_id) == ["ErasureRequest.Requested", "ErasureRequest.Approved"]
    steps = [(e.subject, list(e.roles), e.action) for e in access_log(app(fed), UUID(wallet))]
    rid = asked.request_id
    assert steps[-2:] == [
        ("staff:officer-anna", ["erasure_officer"], f"requested erasure {rid} ({BASIS}, DSR-2026-0142)"),
        ("staff:officer-ben", ["erasure_officer"], f"approved erasure {rid}; wallet erased"),
    ]
    # Approved once: a second approval by a third officer is refused.
    third = fed.staff("officer-cem", "erasure_officer")
    again = approve(asked.request_id, "four1:cem")
    assert code_of(rights(fed).ApproveErasure, again, third) == grpc.StatusCode.FAILED_PRECONDITION
    # Nor can a new request be opened for the erased wallet: there is nothing left to erase.
    with pytest.raises(grpc.RpcError) as err:
        request_erasure(fed, "four1:again", wallet, third)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already erased" in (err.value.details() or "")
    assert recorded(fed, asked.request_id) == ["ErasureRequest.Requested", "ErasureRequest.Approved"]


def test_the_requester_may_withdraw_and_a_withdrawn_request_erases_nothing(fed: LocalFederation) -> None:
    wallet, holder = person(fed, "wd1")
    anna = fed.staff("officer-anna", "erasure_officer")
    ben = fed.staff("officer-ben", "erasure_officer")
    asked = request_erasure(fed, "wd1:request", wallet, anna)

    def withdraw(key: str) -> rights_pb2.WithdrawErasureRequest:
        return rights_pb2.WithdrawErasureRequest(
            idempotency_key=key, request_id=asked.request_id, reason="filed for the wrong person"
        )

    # Only the requester withdraws.
    assert (
        code_of(rights(fed).WithdrawErasure, withdraw("wd1:ben"), ben) == grpc.StatusCode.FAILED_PRECONDITION
    )
    done = rights(fed).WithdrawErasure(withdraw("wd1:anna"), metadata=anna, timeout=5)
    assert (done.status, done.withdrawn_by) == ("withdrawn", "staff:officer-anna")
    # Withdrawn: no approval carries it out.
    assert code_of(rights(fed).ApproveErasure, approve(asked.request_id, "wd1:approve"), ben) == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    assert not erased(fed, wallet)
    assert recorded(fed, asked.request_id) == ["ErasureRequest.Requested", "ErasureRequest.Withdrawn"]
    # The holder sees both steps in their access log and still uses their wallet.
    entries = (
        rights(fed)
        .ListMyAccessLog(rights_pb2.ListMyAccessLogRequest(wallet_id=wallet), metadata=holder, timeout=5)
        .entries
    )
    assert [e.action for e in entries][-2:] == [
        f"requested erasure {asked.request_id} ({BASIS}, DSR-2026-0142)",
        f"withdrew erasure request {asked.request_id}",
    ]
    v = fed.stubs("vienna")
    balance = v.wallet.GetBalance(wallet_pb2.GetBalanceRequest(wallet_id=wallet), metadata=holder, timeout=5)
    assert balance.balance.units == 4


def test_no_single_staff_token_erases_a_wallet_even_with_every_role(fed: LocalFederation) -> None:
    """The default staff member of the test federation holds every role: still one subject."""
    v = fed.stubs("vienna")
    wallet, _ = person(fed, "solo1")
    asked = request_erasure(fed, "solo1:request", wallet, v.staff)
    approval = approve(asked.request_id, "solo1:approve")
    assert code_of(rights(fed).ApproveErasure, approval, v.staff) == grpc.StatusCode.FAILED_PRECONDITION
    # Nor by erasing as a holder: a staff token is not the holder's credential.
    own = rights_pb2.EraseMyWalletRequest(idempotency_key="solo1:own", wallet_id=wallet)
    assert code_of(rights(fed).EraseMyWallet, own, v.staff) == grpc.StatusCode.PERMISSION_DENIED
    assert not erased(fed, wallet)


def cli_env(fed: LocalFederation, monkeypatch: pytest.MonkeyPatch, token: str) -> list[str]:
    """The staff tool's settings for Vienna's public port; returns the TLS name option."""
    monkeypatch.setenv("CIVFED_NODE_ADDRESS", f"127.0.0.1:{fed.running['vienna'].public_port}")
    monkeypatch.setenv("CIVFED_NODE_CA_FILE", str(fed.ca.ca_file))
    monkeypatch.setenv("CIVFED_STAFF_ACCESS_TOKEN", token)
    return ["--server-name", "vienna"]


def test_civfed_erase_goes_through_the_node_as_two_officers_and_shreds_one_person_only(
    fed: LocalFederation, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Distances no one else in this module travelled: the explanations are this person's.
    anna, anna_holder = person(fed, "cli-anna", 412_345)
    bert, bert_holder = person(fed, "cli-bert", 423_456)

    def secrets(wallet: str, holder: Any) -> list[str]:
        events = fed.stubs("vienna").wallet.ListMyEvents(
            # In English: the text the events store (sealed), not a rendering of it.
            wallet_pb2.ListMyEventsRequest(wallet_id=wallet, language="en"),
            metadata=holder,
            timeout=5,
        )
        credited = [e.explanation for e in events.events if e.type == "Wallet.Credited"]
        return [f"{'cli-anna' if wallet == anna else 'cli-bert'}-commute-7741", *credited]

    anna_secrets, bert_secrets = secrets(anna, anna_holder), secrets(bert, bert_holder)
    # The old direct path (one operator erasing from the data directory) is gone.
    assert main(["erase", "--city", "vienna", anna]) == 2  # a usage error
    capsys.readouterr()

    tls = cli_env(fed, monkeypatch, fed.idp.token("officer-dora", ["erasure_officer"]))
    args = ["erase", "request", anna, "--legal-basis", BASIS, "--reference", "DSR-77", *tls]
    assert main(args) == 0
    asked = json.loads(capsys.readouterr().out)
    assert (asked["status"], asked["requested_by"]) == ("requested", "staff:officer-dora")
    # The requester's own approval is refused by the node, and nothing is erased.
    assert main(["erase", "approve", asked["request_id"], *tls]) == 1
    assert "FAILED_PRECONDITION" in capsys.readouterr().err
    assert not erased(fed, anna)

    tls = cli_env(fed, monkeypatch, fed.idp.token("officer-emil", ["erasure_officer"]))
    assert main(["erase", "approve", asked["request_id"], *tls]) == 0
    done = json.loads(capsys.readouterr().out)
    assert (done["status"], done["approved_by"]) == ("erased", "staff:officer-emil")
    every_event = " ".join(str(vars(e)) for _, e in read_events(app(fed)))
    assert [s for s in anna_secrets if s in every_event] == []
    assert [s for s in bert_secrets if s in every_event] == bert_secrets
    assert erased(fed, anna) and not erased(fed, bert)


def test_civfed_erase_withdraw_and_bad_ids(
    fed: LocalFederation, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wallet, _ = person(fed, "cli-wd")
    tls = cli_env(fed, monkeypatch, fed.idp.token("officer-fay", ["erasure_officer"]))
    assert main(["erase", "request", wallet, "--legal-basis", BASIS, "--reference", "DSR-78", *tls]) == 0
    asked = json.loads(capsys.readouterr().out)
    assert main(["erase", "withdraw", asked["request_id"], "--reason", "duplicate case", *tls]) == 0
    assert json.loads(capsys.readouterr().out)["withdrawn_by"] == "staff:officer-fay"
    assert main(["erase", "request", "not-a-uuid", "--legal-basis", BASIS, "--reference", "x", *tls]) == 2
    assert "WALLET_ID: 'not-a-uuid' is not a wallet id (a UUID)" in capsys.readouterr().err
    # Without a token, nothing is sent.
    monkeypatch.delenv("CIVFED_STAFF_ACCESS_TOKEN")
    assert main(["erase", "approve", asked["request_id"], *tls]) == 2
    assert "CIVFED_STAFF_ACCESS_TOKEN" in capsys.readouterr().err
    assert not erased(fed, wallet)
