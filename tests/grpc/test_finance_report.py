"""The finance department's report over real gRPC, against Sint-Niklaas and Vienna nodes in
this process (mutual TLS, staff tokens from the test identity provider): per fund it gives
the fund report's figures, per month the totals of the payout runs and the clearings the
other services list, per partner what was cleared and what is open; its CSV parses and adds
up to its JSON; a caller without a finance role is refused."""

from __future__ import annotations

import csv
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest

from civfed.v1 import (
    cashback_pb2,
    clearing_pb2,
    clearing_pb2_grpc,
    funds_pb2,
    merchant_pb2,
    payouts_pb2,
    payouts_pb2_grpc,
    wallet_pb2,
)
from services.cli.desk import TOKEN
from services.cli.main import main
from services.clock import MovableClock, utcnow
from services.demo.local_federation import LocalFederation
from services.finance import month_of_payout
from services.grpc.auth import bearer
from tests.e2e.cluster import conservation
from tests.e2e.flows import CONSENT, accept, open_wallet, shop, vienna_citizen

PERIOD = utcnow().strftime("%Y-%m")
# A week whose last day is in PERIOD: the one holding the month's 8th.
_iso = utcnow().replace(day=8).isocalendar()
WEEK = f"{_iso.year}-W{_iso.week:02d}"


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    clock = MovableClock()
    f = LocalFederation(Path(tmp_path_factory.mktemp("finance")), ["vienna", "sint_niklaas"])
    for city in f.cities:
        f.start_in_process(city, clock)
    sn, v = f.stubs("sint_niklaas"), f.stubs("vienna")
    # Awards from the city's funds, and a spend at a shop with a bank account, paid out.
    admin = f.staff("mia", "merchant_admin")
    company = sn.merchant.RegisterMerchant(
        _shop(
            "Bakkerij Van Damme BV", iban="BE71096123456769", bic="GKCCBEBB", account_holder="Van Damme BV"
        ),
        metadata=admin,
        timeout=5,
    )
    anna = open_wallet(sn, f"finance:{uuid.uuid4()}", CONSENT["sint_niklaas"])
    for _ in range(2):
        sn.cashback.ReportPurchase(
            cashback_pb2.ReportPurchaseRequest(
                idempotency_key=f"k:{uuid.uuid4()}",
                merchant_id=company.merchant_id,
                receipt_id=f"R-{uuid.uuid4().hex[:8]}",
                wallet_id=anna.wallet_id,
                amount_cents=5_000,
                date=dt.date.today().isoformat(),
            ),
            metadata=bearer(company.merchant_token),
            timeout=5,
        )
    sn.wallet.Spend(
        wallet_pb2.SpendRequest(
            idempotency_key=f"spend:{uuid.uuid4()}",
            wallet_id=anna.wallet_id,
            merchant_id=company.merchant_id,
            amount=301,
            purchase_ref=f"p-{uuid.uuid4()}",
        ),
        metadata=bearer(anna.holder_token),
        timeout=5,
    )
    # Vienna tokens redeemed at a Sint-Niklaas shop, cleared once the month is over.
    _, bakker = shop(sn, "Bakker")
    ida = vienna_citizen(v, "ida", 3000)
    for i, amount in enumerate((5, 7)):
        accept(sn, bakker, ida.voucher(amount, f"v{i}"), f"sale{i}")
    clock.offset = dt.timedelta(days=40)
    run = clearing_pb2.RunClearingRequest(partner_city="vienna", period=PERIOD)
    clearing_pb2_grpc.ClearingAdminServiceStub(sn.channel).RunClearing(run, metadata=sn.staff, timeout=30)
    accept(sn, bakker, ida.voucher(3, "open"), "open")  # open, in no statement yet
    payouts = payouts_pb2_grpc.PayoutServiceStub(sn.channel)
    payouts.ProposePayoutRun(
        payouts_pb2.ProposePayoutRunRequest(idempotency_key="propose", period=WEEK),
        metadata=f.staff("ann", "finance_officer"),
        timeout=10,
    )
    payouts.RunPayouts(
        payouts_pb2.RunPayoutsRequest(idempotency_key="run", period=WEEK),
        metadata=f.staff("fien", "finance_officer"),
        timeout=10,
    )
    yield f
    for city, running in f.running.items():
        conservation(running.node.app, city)
    f.stop_all()


def _shop(name: str, **account: Any) -> Any:
    return merchant_pb2.RegisterMerchantRequest(
        idempotency_key=f"shop:{name}", name=name, category="food", local=True, **account
    )


def report(fed: LocalFederation, period: str = PERIOD, role: str = "finance_officer") -> Any:
    sn = fed.stubs("sint_niklaas")
    req = funds_pb2.GetFinanceReportRequest(period=period)
    return sn.funds.GetFinanceReport(req, metadata=fed.staff("fin-1", role), timeout=10)


def test_the_report_gives_the_fund_reports_figures_and_the_payout_and_clearing_totals(
    fed: LocalFederation,
) -> None:
    sn = fed.stubs("sint_niklaas")
    r = report(fed)
    assert (r.city, r.period, r.decimals, r.euro_per_token) == ("sint_niklaas", PERIOD, 2, "0.50")
    funds = sn.funds.GetFundReport(funds_pb2.GetFundReportRequest(), metadata=fed.staff("a", "auditor"))
    assert [(f.fund_id, f.issued, f.redeemed, f.outstanding) for f in r.funds] == [
        (f.fund_id, f.tokens.issued, f.tokens.redeemed, f.tokens.outstanding) for f in funds.funds
    ]
    assert sum(f.issued for f in r.funds) == 500 and sum(f.redeemed for f in r.funds) == 301

    runs = (
        payouts_pb2_grpc.PayoutServiceStub(sn.channel)
        .ListPayoutRuns(
            payouts_pb2.ListPayoutRunsRequest(), metadata=fed.staff("fien", "finance_officer"), timeout=10
        )
        .runs
    )
    paid = [run for run in runs if run.state == "paid" and month_of_payout(run.period) == PERIOD]
    listed = clearing_pb2_grpc.ClearingAdminServiceStub(sn.channel).ListClearings(
        clearing_pb2.ListClearingsRequest(), metadata=sn.staff, timeout=10
    )
    statements = [s.figures for s in listed.statements if s.figures.period == PERIOD]
    (line,) = r.periods
    assert (
        (line.period, line.payout_runs, line.clearings)
        == (PERIOD, len(paid), len(statements))
        == (PERIOD, 1, 1)
    )
    assert line.paid_out == sum(run.tokens for run in paid) > 0
    assert line.paid_out_euro_cents == sum(run.euro_cents for run in paid) > 0
    (figures,) = statements
    assert (figures.city_a, figures.owed_by_a, figures.owed_by_b) == ("sint_niklaas", 0, 12)
    assert line.cleared_owed_by_us == figures.owed_by_a

    (partner,) = r.partners
    (position,) = listed.open
    assert partner.partner_city == position.partner_city == "vienna"
    assert (partner.cleared_owed_by_us, partner.cleared_owed_by_partner, partner.cleared_redemptions) == (
        0,
        12,
        2,
    )
    assert (
        (partner.open_owed_by_us, partner.open_owed_by_partner, partner.open_redemptions)
        == (
            position.owed_by_us,
            position.owed_by_partner,
            position.redemptions,
        )
        == (0, 3, 1)
    )

    # Per fund and month, exactly what the fund's own events booked: the month's figures
    # add up to the fund's to date here (every award and spend of this test is this month).
    assert sorted(m.fund_id for m in r.fund_periods) == sorted(f.fund_id for f in r.funds)
    months = {m.fund_id: m for m in r.fund_periods}
    for f in r.funds:
        m = months[f.fund_id]
        assert m.period == PERIOD
        assert (m.issued, m.redeemed, m.lapsed, m.depreciated, m.outstanding) == (
            f.issued,
            f.redeemed,
            f.lapsed,
            f.depreciated,
            f.outstanding,
        )
    # The partner's side in euros at Vienna's published rate (0.01 a token, no decimals);
    # this city's side at its own.
    assert (partner.partner_euro_per_token, partner.partner_euro_note) == ("0.01", "")
    assert (partner.cleared_owed_by_partner_eur, partner.open_owed_by_partner_eur) == ("0.12", "0.03")
    assert (partner.cleared_owed_by_us_eur, partner.open_owed_by_us_eur) == ("0.00", "0.00")

    # A month with neither payouts nor clearings: the funds, zero totals, the open position.
    quiet = report(fed, "2020-01")
    assert [(p.period, p.paid_out, p.clearings) for p in quiet.periods] == [("2020-01", 0, 0)]
    assert quiet.funds == r.funds and quiet.partners[0].cleared_redemptions == 0
    # Before any award: every fund's month is empty, nothing outstanding at its end.
    assert {(m.issued, m.outstanding) for m in quiet.fund_periods} == {(0, 0)}


def test_a_caller_without_a_finance_role_is_refused_and_a_period_is_a_month(fed: LocalFederation) -> None:
    for role in ("recorder", "merchant_admin", "rule_publisher"):
        with pytest.raises(grpc.RpcError) as err:
            report(fed, role=role)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, role
    for role in ("auditor", "council_approver"):
        assert report(fed, role=role).city == "sint_niklaas"
    with pytest.raises(grpc.RpcError) as err:
        report(fed, "2026-W22")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def cli(fed: LocalFederation, monkeypatch: pytest.MonkeyPatch, capsys: Any, *argv: str) -> tuple[int, str]:
    monkeypatch.setenv(TOKEN, fed.idp.token("fien", ["finance_officer"]))
    port = fed.running["sint_niklaas"].public_port
    where = ["--address", f"127.0.0.1:{port}", "--ca", str(fed.ca.ca_file), "--server-name", "sint_niklaas"]
    code = main(["finance", "report", *where, *argv])
    out = capsys.readouterr()
    return code, out.out if code == 0 else out.err


def test_the_command_line_writes_csv_whose_totals_match_its_json(
    fed: LocalFederation, monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    args = ["--city", "sint-niklaas", "--period", PERIOD]
    code, printed = cli(fed, monkeypatch, capsys, *args, "--json")
    assert code == 0, printed
    shown = json.loads(printed)
    out = tmp_path / "finance.csv"
    code, printed = cli(fed, monkeypatch, capsys, *args, "--csv", str(out))
    assert code == 0, printed
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["section", "period", "subject", "figure", "amount", "eur"]
    r = report(fed)
    # Amounts in Sengzen with two decimals, euros at 0.50 a Sengzen.
    issued = sum(f.issued for f in r.funds)
    assert shown["totals"]["issued"] == {
        "amount": f"{Decimal(issued) / 100:.2f}",
        "eur": f"{Decimal(issued) / 200:.2f}",
    }
    for figure in ("issued", "redeemed", "outstanding"):
        funds = sum(
            Decimal(row["amount"]) for row in rows if row["section"] == "fund" and row["figure"] == figure
        )
        (total,) = [row for row in rows if row["section"] == "total" and row["figure"] == figure]
        assert funds == Decimal(total["amount"]) == Decimal(shown["totals"][figure]["amount"])
        assert Decimal(total["eur"]) == Decimal(shown["totals"][figure]["eur"])
    for figure in ("paid_out", "cleared_owed_by_us"):
        periods = sum(
            Decimal(row["amount"]) for row in rows if row["section"] == "period" and row["figure"] == figure
        )
        (total,) = [row for row in rows if row["section"] == "total" and row["figure"] == figure]
        assert periods == Decimal(total["amount"]) == Decimal(shown["totals"][figure]["amount"])
    paid = next(row for row in rows if row["section"] == "total" and row["figure"] == "paid_out")
    assert (
        Decimal(paid["eur"])
        == Decimal(r.periods[0].paid_out_euro_cents) / 100
        == Decimal(shown["totals"]["paid_out"]["eur"])
    )
    open_ = next(
        row
        for row in rows
        if row["section"] == "partner" and row["figure"] == "open_owed_by_partner_partner_units"
    )
    assert (open_["subject"], open_["amount"], open_["eur"]) == ("vienna", "3", "0.03")
    for figure in ("issued", "redeemed", "outstanding"):
        months = sum(
            Decimal(row["amount"])
            for row in rows
            if row["section"] == "fund_period" and row["figure"] == figure and row["period"] == PERIOD
        )
        assert months == Decimal(shown["totals"][figure]["amount"]), figure
    assert set(shown["fund_periods"]) == {f.fund_id for f in r.funds}
    # No wallet and no shop appears anywhere in the report.
    text = out.read_text()
    assert "Bakker" not in text and "Van Damme" not in text
    code, printed = cli(fed, monkeypatch, capsys, *args)
    assert code == 0 and printed.startswith(f"Finance report of sint_niklaas, {PERIOD} (Sengzen)")
    assert "paid_out" in printed and "EUR 1.50" in printed
    # The wrong city is said, not reported.
    code, printed = cli(fed, monkeypatch, capsys, "--city", "vienna")
    assert code != 0 and "sint_niklaas" in printed
