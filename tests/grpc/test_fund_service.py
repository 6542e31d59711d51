"""Funds and budgets over real gRPC, against a Bologna node (mutual TLS on loopback, staff
tokens from the test identity provider, SQLite): the EU grant behind Bologna's rules runs
out, further awards are refused with the fund named, a top-up by two people lets them
continue, and the report shows per fund that budget = awarded + remaining."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest

from civfed.v1 import funds_pb2, wallet_pb2
from services.cli.main import main
from services.demo.local_federation import CityStubs, LocalFederation
from services.grpc.auth import bearer
from services.settings.cities import load_city
from tests.e2e.cluster import conservation
from tests.rights.apps import edited_cities

CONSENT = load_city("bologna").config.consent_versions[-1]
START = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    path = Path(tmp_path_factory.mktemp("funds"))
    # A grant of 20 points (2 euros at 0.10 a point), and wallets that close at once.
    edited_cities(path, "bologna", 'budget_eur = "200000"', "budget = 20", file="city.toml")
    cities = edited_cities(
        path,
        "bologna",
        "consent_versions = [",
        "final_spend_days = 0\nconsent_versions = [",
        file="city.toml",
    )
    fed = LocalFederation(path, ["bologna"], extra_env={"CIVFED_CITIES_DIR": str(cities)})
    running = fed.start_in_process("bologna", lambda: START)
    yield fed
    conservation(running.node.app, "bologna")
    fed.stop_all()


def opened(b: CityStubs, key: str) -> Any:
    req = wallet_pb2.OpenWalletRequest(
        idempotency_key=key, participant_kind="resident", consent_version=CONSENT
    )
    return b.wallet.OpenWallet(req, metadata=b.staff, timeout=5)


def record(b: CityStubs, key: str, wallet_id: str, action: str) -> Any:
    req = wallet_pb2.RecordActivityRequest(
        idempotency_key=key,
        wallet_id=wallet_id,
        activity="eco_action",
        fields={"action": action, "date": "2026-05-04"},
        activity_id=key,
    )
    return b.wallet.RecordActivity(req, metadata=b.staff, timeout=5)


def refused(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def grant(fed: LocalFederation, b: CityStubs) -> Any:
    auditor = fed.staff("aud-1", "auditor")
    report = b.funds.GetFundReport(funds_pb2.GetFundReportRequest(), metadata=auditor, timeout=5)
    assert report.city == "bologna" and report.euro_per_token == "0.10"
    assert [f.fund_id for f in report.funds] == ["eu_grant", "quartieri"]
    fund = report.funds[0]
    assert fund.funder == "European Union" and fund.rules == ["eco-actions"]
    t = fund.tokens
    # budget = awarded + remaining, always; awarded = issued − lapsed − depreciated.
    assert t.budget == t.awarded + t.remaining
    assert t.awarded == t.issued - t.lapsed - t.depreciated
    assert t.outstanding == t.issued - t.redeemed - t.lapsed - t.depreciated
    assert Decimal(fund.euros.remaining) == Decimal(t.remaining) * Decimal("0.10")
    return fund


def test_a_fund_runs_out_and_a_two_person_top_up_lets_awards_continue(node: LocalFederation) -> None:
    fed = node
    b = fed.stubs("bologna")
    w = opened(b, "f:w")
    for i in range(3):
        assert record(b, f"f:{i}", w.wallet_id, "bike_to_work").awarded.units == 6
    assert grant(fed, b).tokens.remaining == 2

    err = refused(lambda: record(b, "f:3", w.wallet_id, "bike_to_work"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "fund 'eu_grant'" in (err.details() or "") and "2 left" in (err.details() or "")
    # The refusal is recorded on the wallet with the fund named, and the holder sees it.
    events = b.wallet.ListMyEvents(
        wallet_pb2.ListMyEventsRequest(wallet_id=w.wallet_id), metadata=bearer(w.holder_token)
    ).events
    refusals = [json.loads(e.fields_json) for e in events if e.type == "Wallet.AwardRefused"]
    assert [(r["limit"], r["activity_id"]) for r in refusals] == [("fund:eu_grant", "f:3")]

    # A top-up: a rule publisher proposes, the same person may not approve it, a council
    # approver who is someone else does.
    proposer = fed.staff("pub-1", "rule_publisher", "council_approver")
    proposed = b.funds.ProposeFundTopUp(
        funds_pb2.ProposeFundTopUpRequest(
            idempotency_key="t1", fund_id="eu_grant", amount=30, reason="second tranche of the grant"
        ),
        metadata=proposer,
        timeout=5,
    )
    assert proposed.status == "proposed" and proposed.proposed_by == "staff:pub-1" and proposed.budget == 20
    approve = funds_pb2.ApproveFundTopUpRequest(
        idempotency_key="t2", fund_id="eu_grant", proposal_id=proposed.proposal_id, decision_ref="Delibera 42"
    )
    same = refused(lambda: b.funds.ApproveFundTopUp(approve, metadata=proposer, timeout=5))
    assert same.code() == grpc.StatusCode.FAILED_PRECONDITION and "four eyes" in (same.details() or "")
    approved = b.funds.ApproveFundTopUp(
        approve, metadata=fed.staff("giunta-2", "council_approver"), timeout=5
    )
    assert approved.status == "approved" and approved.approved_by == "staff:giunta-2"
    assert (approved.budget, approved.remaining) == (50, 32)
    # A recorder may not top a fund up.
    again = funds_pb2.ProposeFundTopUpRequest(idempotency_key="t3", fund_id="eu_grant", amount=1, reason="x")
    recorder = fed.staff("desk-1", "recorder")
    denied = refused(lambda: b.funds.ProposeFundTopUp(again, metadata=recorder, timeout=5))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED

    assert record(b, "f:4", w.wallet_id, "bike_to_work").awarded.units == 6
    fund = grant(fed, b)
    assert (fund.declared, fund.tokens.budget, fund.tokens.issued, fund.tokens.remaining) == (20, 50, 24, 26)


def test_a_closed_wallet_lapses_and_releases_the_budget(node: LocalFederation) -> None:
    fed = node
    b = fed.stubs("bologna")
    before = grant(fed, b).tokens
    w = opened(b, "lapse:w")
    assert record(b, "lapse:1", w.wallet_id, "recycling_drop_off").awarded.units == 8
    closed = wallet_pb2.CloseWalletRequest(idempotency_key="lapse:close", wallet_id=w.wallet_id)
    b.wallet.CloseWallet(closed, metadata=bearer(w.holder_token), timeout=5)
    after = grant(fed, b).tokens
    assert after.issued == before.issued + 8 and after.lapsed == before.lapsed + 8
    assert after.remaining == before.remaining and after.outstanding == before.outstanding


def cli(fed: LocalFederation, monkeypatch: pytest.MonkeyPatch, capsys: Any, token: str, *argv: str) -> Any:
    monkeypatch.setenv("CIVFED_STAFF_ACCESS_TOKEN", token)
    port = fed.running["bologna"].public_port
    where = ["--node", f"127.0.0.1:{port}", "--ca-file", str(fed.ca.ca_file), "--server-name", "bologna"]
    code = main(["funds", "top-up", *argv, *where])
    out = capsys.readouterr()
    return code, out.out if code == 0 else out.err


def test_a_top_up_from_the_command_line_needs_two_people(
    node: LocalFederation, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    fed = node
    ada, bea = fed.idp.token("ada", ["council_approver"]), fed.idp.token("bea", ["council_approver"])
    before = grant(fed, fed.stubs("bologna")).tokens.budget
    code, out = cli(
        fed,
        monkeypatch,
        capsys,
        ada,
        "propose",
        "--fund",
        "eu_grant",
        "--amount",
        "100",
        "--reason",
        "autumn",
    )
    assert code == 0 and "(proposed)" in out
    proposal = out.split()[1]
    approve = ["approve", proposal, "--fund", "eu_grant", "--decision-ref", "Delibera 50"]
    code, err = cli(fed, monkeypatch, capsys, ada, *approve)
    assert code == 1 and "FAILED_PRECONDITION" in err and "four eyes" in err
    code, out = cli(fed, monkeypatch, capsys, bea, *approve)
    assert code == 0 and "(approved)" in out and "approved by staff:bea" in out
    assert grant(fed, fed.stubs("bologna")).tokens.budget == before + 100
