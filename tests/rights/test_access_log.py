"""The access log: every staff read of a person's data and every staff action on their
wallet is recorded with who (subject and role), what, when and why, and the person reads
it over gRPC next to their events. Through gRPC against real in-process nodes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from uuid import UUID

import grpc
import pytest

from civfed.v1 import rights_pb2, rights_pb2_grpc, wallet_pb2
from services.access_log import access_log
from services.cli import main
from services.demo.local_federation import LocalFederation
from services.grpc.auth import bearer
from services.privacy.sealing import REDACTED
from tests.e2e.flows import CONSENT, attest, open_wallet

TRIP = {"mode": "bike", "distance_m": "100000", "date": "2026-05-03"}


def rights(fed: LocalFederation) -> Any:
    return rights_pb2_grpc.RightsServiceStub(fed.stubs("vienna").channel)


def person(fed: LocalFederation, tag: str) -> tuple[str, Any]:
    v = fed.stubs("vienna")
    opened = open_wallet(v, f"{tag}:open")
    # The trip comes as a source's signed claim: not a staff action, so not in the log.
    attest(v, f"{tag}:trip", opened.wallet_id, "trip", TRIP)
    return opened.wallet_id, bearer(opened.holder_token)


def my_log(fed: LocalFederation, wallet: str, holder: Any) -> list[Any]:
    req = rights_pb2.ListMyAccessLogRequest(wallet_id=wallet)
    return list(rights(fed).ListMyAccessLog(req, metadata=holder, timeout=5).entries)


def refused(call: Any, request: Any, metadata: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as err:
        call(request, metadata=metadata, timeout=5)
    code: grpc.StatusCode = err.value.code()
    return code


def test_a_staff_read_of_history_shows_who_when_and_why_in_the_persons_access_log(
    fed: LocalFederation,
) -> None:
    v = fed.stubs("vienna")
    wallet, holder = person(fed, "log1")
    before = dt.datetime.now(dt.UTC)
    officer = fed.staff("clerk-7", "appeals_officer")
    purpose = "appeal A-12: checking the trips the holder says are missing"
    events = v.wallet.ListMyEvents(
        wallet_pb2.ListMyEventsRequest(wallet_id=wallet, purpose=purpose), metadata=officer, timeout=5
    )
    assert events.events  # the officer did read the history
    after = dt.datetime.now(dt.UTC)

    entries = my_log(fed, wallet, holder)
    reads = [e for e in entries if e.action == "read history"]
    assert len(reads) == 1
    read = reads[0]
    assert (read.subject, list(read.roles), read.purpose) == ("staff:clerk-7", ["appeals_officer"], purpose)
    assert before <= dt.datetime.fromisoformat(read.at) <= after
    # The staff actions that made the wallet are there too, by the subject who made them.
    assert [(e.subject, e.action) for e in entries if e.action != "read history"] == [
        ("staff:staff-1", "opened wallet"),
    ]

    # Nobody else reads it: not another holder, not the staff member who read the history.
    _, other_holder = person(fed, "log1-other")
    req = rights_pb2.ListMyAccessLogRequest(wallet_id=wallet)
    assert refused(rights(fed).ListMyAccessLog, req, other_holder) == grpc.StatusCode.PERMISSION_DENIED
    assert refused(rights(fed).ListMyAccessLog, req, officer) == grpc.StatusCode.PERMISSION_DENIED
    assert refused(rights(fed).ListMyAccessLog, req, ()) == grpc.StatusCode.UNAUTHENTICATED


def test_every_staff_read_of_a_person_needs_a_purpose_and_is_logged(fed: LocalFederation) -> None:
    v = fed.stubs("vienna")
    wallet, holder = person(fed, "log2")
    recorder = fed.staff("desk-3", "recorder")
    officer = fed.staff("clerk-8", "appeals_officer")
    reads = [
        (v.wallet.GetBalance, wallet_pb2.GetBalanceRequest, recorder, "read balance"),
        (v.wallet.ListMyEvents, wallet_pb2.ListMyEventsRequest, officer, "read history"),
        (v.wallet.ListMyAppeals, wallet_pb2.ListMyAppealsRequest, officer, "read appeals"),
    ]
    logged = len(my_log(fed, wallet, holder))
    for call, request, staff, _ in reads:
        # No purpose (or only blanks): refused before anything is read or logged.
        for blank in ("", "   "):
            with pytest.raises(grpc.RpcError) as err:
                call(request(wallet_id=wallet, purpose=blank), metadata=staff, timeout=5)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert err.value.details().startswith("purpose:")
    assert len(my_log(fed, wallet, holder)) == logged
    # With a purpose in the request, or in the `civfed-purpose` metadata: read and logged.
    for call, request, staff, _ in reads:
        call(request(wallet_id=wallet, purpose="desk enquiry 4411"), metadata=staff, timeout=5)
        call(request(wallet_id=wallet), metadata=(*staff, ("civfed-purpose", "desk enquiry 4412")), timeout=5)
    entries = my_log(fed, wallet, holder)[logged:]
    assert [(e.subject, list(e.roles), e.action, e.purpose) for e in entries] == [
        (subject, [role], action, purpose)
        for subject, role, action in (
            ("staff:desk-3", "recorder", "read balance"),
            ("staff:clerk-8", "appeals_officer", "read history"),
            ("staff:clerk-8", "appeals_officer", "read appeals"),
        )
        for purpose in ("desk enquiry 4411", "desk enquiry 4412")
    ]
    # The holder's own reads are theirs, not the city's: nothing is added for them.
    v.wallet.ListMyEvents(wallet_pb2.ListMyEventsRequest(wallet_id=wallet), metadata=holder, timeout=5)
    assert len(my_log(fed, wallet, holder)) == logged + len(entries)


def test_staff_actions_on_a_wallet_are_logged_once_even_when_retried(fed: LocalFederation) -> None:
    # A desk activity: Sint-Niklaas engraves bikes at a desk (Vienna records none).
    s = fed.stubs("sint_niklaas")
    opened = open_wallet(s, "log3:open", CONSENT["sint_niklaas"])
    wallet, holder = opened.wallet_id, bearer(opened.holder_token)
    recorder = fed.staff("desk-5", "recorder")
    engraving = {"subject": "SN-LOG3", "date": "2026-05-03"}
    req = wallet_pb2.RecordActivityRequest(
        idempotency_key="log3:engraving", wallet_id=wallet, activity="bike_engraving", fields=engraving
    )
    # A retry with the same key records nothing new, whatever purpose it gives.
    for purpose in ("bike week stand", "bike week stand", "retried from the desk"):
        s.wallet.RecordActivity(req, metadata=(*recorder, ("civfed-purpose", purpose)), timeout=5)
    log = rights_pb2_grpc.RightsServiceStub(s.channel).ListMyAccessLog(
        rights_pb2.ListMyAccessLogRequest(wallet_id=wallet), metadata=holder, timeout=5
    )
    mine = [e for e in log.entries if e.subject == "staff:desk-5"]
    assert [(list(e.roles), e.action, e.purpose) for e in mine] == [
        (["recorder"], "recorded activity bike_engraving", "bike week stand")
    ]


def test_an_auditor_reads_the_access_log_never_the_events_and_the_read_is_logged(
    fed: LocalFederation,
) -> None:
    v = fed.stubs("vienna")
    wallet, holder = person(fed, "log4")
    auditor = fed.staff("audit-1", "auditor")
    assert (
        refused(v.wallet.ListMyEvents, wallet_pb2.ListMyEventsRequest(wallet_id=wallet, purpose="x"), auditor)
        == grpc.StatusCode.PERMISSION_DENIED
    )
    req = rights_pb2.ListAccessLogRequest(wallet_id=wallet)
    assert refused(rights(fed).ListAccessLog, req, auditor) == grpc.StatusCode.INVALID_ARGUMENT
    req.purpose = "quarterly access review Q2"
    seen = rights(fed).ListAccessLog(req, metadata=auditor, timeout=5)
    # The auditor's read is itself the last entry, and the person sees it.
    assert (seen.entries[-1].subject, seen.entries[-1].action) == ("staff:audit-1", "read access log")
    last = my_log(fed, wallet, holder)[-1]
    assert (last.subject, list(last.roles), last.purpose) == (
        "staff:audit-1",
        ["auditor"],
        "quarterly access review Q2",
    )
    # Any other role is refused.
    for role in ("recorder", "appeals_officer", "erasure_officer"):
        assert (
            refused(rights(fed).ListAccessLog, req, fed.staff("x", role)) == grpc.StatusCode.PERMISSION_DENIED
        )


def test_purposes_are_sealed_in_the_store_and_erased_with_the_person(fed: LocalFederation) -> None:
    v = fed.stubs("vienna")
    wallet, holder = person(fed, "log5")
    purpose = "complaint 88123 from the holder's neighbour"
    v.wallet.GetBalance(
        wallet_pb2.GetBalanceRequest(wallet_id=wallet, purpose=purpose),
        metadata=fed.staff("desk-9", "recorder"),
        timeout=5,
    )
    data: Path = fed.folder / "data" / "vienna"
    raw = b"".join(p.read_bytes() for p in sorted(data.glob("vienna.sqlite*")))
    assert purpose.encode() not in raw
    assert purpose in [e.purpose for e in my_log(fed, wallet, holder)]
    # Erased: who read what and when stays, the purpose reads as erased.
    req = rights_pb2.EraseMyWalletRequest(idempotency_key="log5:erase", wallet_id=wallet)
    rights(fed).EraseMyWallet(req, metadata=holder, timeout=5)
    app = fed.running["vienna"].node.app
    entry = next(e for e in access_log(app, UUID(wallet)) if e.subject == "staff:desk-9")
    assert (entry.action, entry.purpose) == ("read balance", REDACTED)


def test_civfed_history_reads_through_the_node_with_a_purpose_and_is_logged(
    fed: LocalFederation, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wallet, holder = person(fed, "log6")
    monkeypatch.setenv("CIVFED_NODE_ADDRESS", f"127.0.0.1:{fed.running['vienna'].public_port}")
    monkeypatch.setenv("CIVFED_NODE_CA_FILE", str(fed.ca.ca_file))
    tls = ["--server-name", "vienna"]
    # A purpose is required by the command line, and by the node.
    assert main(["history", wallet, *tls]) == 2
    assert "--purpose" in capsys.readouterr().err
    monkeypatch.setenv("CIVFED_STAFF_ACCESS_TOKEN", fed.idp.token("clerk-9", ["appeals_officer"]))
    assert main(["history", wallet, "--purpose", " ", *tls]) == 1
    assert "INVALID_ARGUMENT: purpose:" in capsys.readouterr().err
    assert main(["history", wallet, "--purpose", "appeal A-31 review", *tls]) == 0
    printed = capsys.readouterr().out
    # In Vienna's language, as the node writes it by default.
    assert "Wallet.Credited" in printed and "100,0 km mit dem Fahrrad" in printed
    read = my_log(fed, wallet, holder)[-1]
    assert (read.subject, list(read.roles), read.action, read.purpose) == (
        "staff:clerk-9",
        ["appeals_officer"],
        "read history",
        "appeal A-31 review",
    )
    # A role that may not read a person's events is refused by the node, and nothing is printed.
    monkeypatch.setenv("CIVFED_STAFF_ACCESS_TOKEN", fed.idp.token("audit-2", ["auditor"]))
    assert main(["history", wallet, "--purpose", "curious", *tls]) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err
    # An auditor reads the access log with the same tool, and that read is logged too.
    assert main(["access-log", wallet, "--purpose", "access review", *tls]) == 0
    line = "staff:clerk-9 (appeals_officer)  read history  purpose: appeal A-31 review"
    assert line in capsys.readouterr().out
    assert my_log(fed, wallet, holder)[-1].subject == "staff:audit-2"
