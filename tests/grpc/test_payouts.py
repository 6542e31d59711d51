"""Shop payouts against real Sint-Niklaas and Zwolle nodes over gRPC (SQLite stores): a run
pays each shop the euro value of the tokens it collected, in a pain.001 file that validates
against the schema sepaxml ships; a second run for the same period pays nobody again; shops
read their payouts on their statements; tokens received - paid out = the shops' balances."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import grpc
import pytest
import sepaxml
import xmlschema

from civfed.v1 import cashback_pb2, merchant_pb2, payouts_pb2, payouts_pb2_grpc, wallet_pb2
from services.cli.desk import TOKEN
from services.cli.main import main
from services.demo.local_federation import CityStubs, LocalFederation
from services.grpc.auth import bearer
from services.payouts import shop_totals
from tests.e2e.flows import CONSENT, open_wallet
from tests.grpc.conftest import in_process_federation

SCHEMA = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.03.xsd"
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
COMPANY_IBAN, SOLE_TRADER_IBAN = "BE71096123456769", "NL91ABNA0417164300"


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    # Token conservation, shops' included, in both cities once the module's tests are done.
    with in_process_federation(Path(tmp_path_factory.mktemp("payouts")), ["sint_niklaas", "zwolle"]) as f:
        yield f


@pytest.fixture(scope="module")
def sn(fed: LocalFederation) -> CityStubs:
    return fed.stubs("sint_niklaas")


def payouts(city: CityStubs) -> Any:
    return payouts_pb2_grpc.PayoutServiceStub(city.channel)


def finance(fed: LocalFederation, who: str = "fien") -> Any:
    return fed.staff(who, "finance_officer")


def register(fed: LocalFederation, sn: CityStubs, name: str, **account: Any) -> Any:
    req = merchant_pb2.RegisterMerchantRequest(
        idempotency_key=f"shop:{uuid.uuid4()}", name=name, category="food", local=True, **account
    )
    return sn.merchant.RegisterMerchant(req, metadata=fed.staff("mia", "merchant_admin"), timeout=5)


def spend(sn: CityStubs, holder: Any, shop: Any, amount: int) -> None:
    req = wallet_pb2.SpendRequest(
        idempotency_key=f"spend:{uuid.uuid4()}",
        wallet_id=holder.wallet_id,
        merchant_id=shop.merchant_id,
        amount=amount,
        purchase_ref=f"p-{uuid.uuid4()}",
    )
    sn.wallet.Spend(req, metadata=bearer(holder.holder_token), timeout=5)


def earn(sn: CityStubs, till: Any, holder: Any, receipts: int) -> None:
    """Cashback on `receipts` purchases of 50.00 EUR at a local shop: 250 each."""
    for _ in range(receipts):
        req = cashback_pb2.ReportPurchaseRequest(
            idempotency_key=f"k:{uuid.uuid4()}",
            merchant_id=till.merchant_id,
            receipt_id=f"R-{uuid.uuid4().hex[:8]}",
            wallet_id=holder.wallet_id,
            amount_cents=5_000,
            date=dt.date.today().isoformat(),
        )
        sn.cashback.ReportPurchase(req, metadata=bearer(till.merchant_token), timeout=5)


def propose(fed: LocalFederation, city: CityStubs, period: str, who: str = "ann") -> Any:
    req = payouts_pb2.ProposePayoutRunRequest(idempotency_key=f"propose:{uuid.uuid4()}", period=period)
    return payouts(city).ProposePayoutRun(req, metadata=finance(fed, who), timeout=10)


def run(fed: LocalFederation, city: CityStubs, period: str) -> Any:
    """Four eyes: proposed by one finance officer, run by another."""
    propose(fed, city, period)
    req = payouts_pb2.RunPayoutsRequest(idempotency_key=f"run:{uuid.uuid4()}", period=period)
    return payouts(city).RunPayouts(req, metadata=finance(fed), timeout=10)


def statement(sn: CityStubs, shop: Any) -> Any:
    return sn.merchant.GetStatement(
        merchant_pb2.GetStatementRequest(), metadata=bearer(shop.merchant_token), timeout=5
    )


def refused(call: Any, *args: Any, **kwargs: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call(*args, **kwargs)
    return err.value.code(), err.value.details()


@pytest.fixture(scope="module")
def shops(fed: LocalFederation, sn: CityStubs) -> dict[str, Any]:
    """A company with its account given at registration, a sole trader whose account is set
    later, and a shop with no account; each paid by a holder."""
    company = register(
        fed, sn, "Bakkerij Van Damme BV", iban=COMPANY_IBAN, bic="GKCCBEBB", account_holder="Van Damme BV"
    )
    trader = register(fed, sn, "Fietsen Jan")
    req = payouts_pb2.SetBankAccountRequest(
        idempotency_key="bank:jan",
        merchant_id=trader.merchant_id,
        iban="nl91 abna 0417 1643 00",
        account_holder="Jan Peeters",
        sole_trader=True,
    )
    payouts(sn).SetBankAccount(req, metadata=fed.staff("mia", "merchant_admin"), timeout=5)
    no_account = register(fed, sn, "Kiosk")
    anna = open_wallet(sn, f"payouts:{uuid.uuid4()}", CONSENT["sint_niklaas"])
    earn(sn, company, anna, 3)  # 750 hundredths of a Sengzen
    spend(sn, anna, company, 301)  # 150.5 cents: 150 paid, 1/2 cent carried
    spend(sn, anna, trader, 200)  # 100 cents
    spend(sn, anna, no_account, 50)  # no account: waits
    return {"company": company, "trader": trader, "no_account": no_account, "anna": anna}


def test_a_run_pays_each_shop_in_a_pain001_file_that_validates_and_a_second_run_pays_nobody(
    fed: LocalFederation, sn: CityStubs, shops: dict[str, Any], tmp_path: Path
) -> None:
    company, trader, kiosk = shops["company"], shops["trader"], shops["no_account"]
    first = run(fed, sn, "2026-W22")
    assert not first.already_run
    lines = {line.merchant_id: line for line in first.run.lines}
    assert set(lines) == {company.merchant_id, trader.merchant_id}
    assert (lines[company.merchant_id].tokens, lines[company.merchant_id].euro_cents) == (301, 150)
    assert lines[company.merchant_id].carry == "1/2"
    assert (lines[trader.merchant_id].tokens, lines[trader.merchant_id].euro_cents) == (200, 100)
    assert list(first.skipped_merchant_ids) == [kiosk.merchant_id]
    assert first.run.rate == "1/2" and first.run.euro_cents == 250 and first.run.tokens == 501
    assert (first.run.proposed_by, first.run.recorded_by, first.run.state) == (
        "staff:ann",
        "staff:fien",
        "paid",
    )

    # The file validates against the pain.001 schema inside the installed sepaxml package.
    out = tmp_path / "payouts.xml"
    out.write_bytes(first.sepa_file)
    xmlschema.XMLSchema(str(SCHEMA)).validate(str(out))
    doc = ElementTree.parse(out).getroot()
    assert doc.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs", namespaces=NS) == "2"
    assert doc.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=NS) == "2.50"
    assert doc.findtext(".//p:DbtrAcct/p:Id/p:IBAN", namespaces=NS) == "BE68539007547034"
    credited = {
        tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS): tx.findtext("p:Amt/p:InstdAmt", namespaces=NS)
        for tx in doc.iterfind(".//p:CdtTrfTxInf", NS)
    }
    assert credited == {COMPANY_IBAN: "1.50", SOLE_TRADER_IBAN: "1.00"}

    # The same period again, by another key and another officer: nothing new, and it says so.
    again = payouts(sn).RunPayouts(
        payouts_pb2.RunPayoutsRequest(idempotency_key="run:again", period="2026-W22"),
        metadata=fed.staff("piet", "finance_officer"),
        timeout=10,
    )
    assert again.already_run and again.sepa_file == b""
    assert again.run.run_id == first.run.run_id and again.run.euro_cents == 250
    assert statement(sn, company).paid_out.units == 301  # paid once
    listed = payouts(sn).ListPayoutRuns(
        payouts_pb2.ListPayoutRunsRequest(), metadata=fed.staff("aud", "auditor"), timeout=5
    )
    assert [r.period for r in listed.runs] == ["2026-W22"]


def test_four_eyes_a_run_needs_a_proposal_and_an_approver_who_did_not_propose_it(
    fed: LocalFederation, sn: CityStubs
) -> None:
    asked = payouts_pb2.RunPayoutsRequest(idempotency_key=f"run:{uuid.uuid4()}", period="2026-W40")
    code, details = refused(payouts(sn).RunPayouts, asked, metadata=finance(fed), timeout=5)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "proposed" in details
    proposed = propose(fed, sn, "2026-W40", who="fien")
    assert proposed.run.state == "proposed" and not proposed.already_proposed
    assert propose(fed, sn, "2026-W40", who="piet").already_proposed
    again = payouts_pb2.RunPayoutsRequest(idempotency_key=f"run:{uuid.uuid4()}", period="2026-W40")
    code, details = refused(payouts(sn).RunPayouts, again, metadata=finance(fed, "fien"), timeout=5)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "four eyes" in details
    listed = payouts(sn).ListPayoutRuns(payouts_pb2.ListPayoutRunsRequest(), metadata=finance(fed), timeout=5)
    assert {r.period: r.state for r in listed.runs}["2026-W40"] == "proposed"


def test_statements_show_payouts_and_the_carried_fraction_is_paid_next_time(
    fed: LocalFederation, sn: CityStubs, shops: dict[str, Any]
) -> None:
    company, kiosk = shops["company"], shops["no_account"]
    run(fed, sn, "2026-W22")  # run by the test above when the module runs whole; else now
    shown = statement(sn, company)
    assert shown.total.units == 301 and shown.paid_out.units == 301 and shown.to_pay_out.units == 0
    [payout] = shown.payouts
    assert (payout.period, payout.tokens.units, payout.euro_cents) == ("2026-W22", 301, 150)
    assert payout.tokens.currency == "Sengzen"
    waiting = statement(sn, kiosk)
    assert (waiting.total.units, waiting.paid_out.units, waiting.to_pay_out.units) == (50, 0, 50)
    assert list(waiting.payouts) == []

    # One more hundredth (half a cent) and the half carried from before: one whole cent.
    spend(sn, shops["anna"], company, 1)
    nxt = run(fed, sn, "2026-W23")
    [line] = [x for x in nxt.run.lines if x.merchant_id == company.merchant_id]
    assert (line.tokens, line.euro_cents, line.carry) == (1, 1, "0")
    shown = statement(sn, company)
    assert [p.period for p in shown.payouts] == ["2026-W22", "2026-W23"]
    assert (shown.total.units, shown.paid_out.units, shown.to_pay_out.units) == (302, 302, 0)

    # Conservation for shops: tokens received - paid out = their balances.
    totals = shop_totals(fed.running["sint_niklaas"].node.app)
    assert totals.conserved and totals.balances == 50 and totals.paid_out == 502


def test_a_sole_traders_account_is_sealed_and_a_companys_is_not(
    fed: LocalFederation, shops: dict[str, Any]
) -> None:
    app = fed.running["sint_niklaas"].node.app
    stored = {
        name: b"".join(e.state for e in app.recorder.select_events(uuid.UUID(shops[name].merchant_id)))
        for name in ("company", "trader")
    }
    assert COMPANY_IBAN.encode() in stored["company"]
    assert SOLE_TRADER_IBAN.encode() not in stored["trader"] and b"Jan Peeters" not in stored["trader"]
    # Read through the application, the sole trader's account opens with its key.
    merchant = app.repository.get(uuid.UUID(shops["trader"].merchant_id))
    assert (merchant.iban, merchant.account_holder) == (SOLE_TRADER_IBAN, "Jan Peeters")


def test_a_wrong_iban_is_refused_and_a_city_without_a_euro_value_makes_no_payouts(
    fed: LocalFederation, sn: CityStubs
) -> None:
    code, details = refused(register, fed, sn, "Typo", iban="BE71096123456768", account_holder="Typo")
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "iban" in details
    code, details = refused(register, fed, sn, "Nameless", iban=COMPANY_IBAN)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "account_holder" in details
    code, details = refused(run, fed, fed.stubs("zwolle"), "2026-W22")
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "Zwolle makes no payouts" in details and "hours of work" in details
    code, details = refused(run, fed, sn, "2026-W99")
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "period" in details
    code, _ = refused(
        payouts(sn).RunPayouts,
        payouts_pb2.RunPayoutsRequest(idempotency_key="x", period="2026-W22"),
        metadata=fed.staff("mia", "merchant_admin"),
        timeout=5,
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED


def cli(
    fed: LocalFederation, monkeypatch: pytest.MonkeyPatch, capsys: Any, *argv: str, who: str = "fien"
) -> tuple[int, str]:
    monkeypatch.setenv(TOKEN, fed.idp.token(who, ["finance_officer"]))
    port = fed.running["sint_niklaas"].public_port
    where = ["--address", f"127.0.0.1:{port}", "--ca", str(fed.ca.ca_file), "--server-name", "sint_niklaas"]
    code = main(["payouts", argv[0], *where, *argv[1:]])
    out = capsys.readouterr()
    return code, out.out if code == 0 else out.err


def test_the_command_line_runs_a_period_once_writes_the_file_and_lists_the_runs(
    fed: LocalFederation,
    sn: CityStubs,
    shops: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    tmp_path: Path,
) -> None:
    spend(sn, shops["anna"], shops["trader"], 10)  # 5 cents to Jan Peeters
    out = tmp_path / "w30.xml"
    period = ["--city", "sint-niklaas", "--period", "2026-W30", "--out", str(out)]
    code, printed = cli(fed, monkeypatch, capsys, "propose", *period[:4], who="ann")
    assert code == 0 and "proposed" in printed and "another finance officer" in printed
    # The proposal shows what the other officer will pay, and no more.
    assert "paying no more" in printed and " units, EUR " in printed
    code, printed = cli(fed, monkeypatch, capsys, "run", *period, "--json")
    assert code == 0, printed
    shown = json.loads(printed)
    assert shown["period"] == "2026-W30" and not shown["already_run"] and shown["file"] == str(out)
    assert shown["euro_cents"] == "5"  # int64 in JSON is a string
    xmlschema.XMLSchema(str(SCHEMA)).validate(str(out))

    out.unlink()
    code, printed = cli(fed, monkeypatch, capsys, "run", *period)
    assert code == 0 and "paid out already" in printed and "nothing new" in printed
    assert not out.exists()

    code, printed = cli(fed, monkeypatch, capsys, "list", "--json")
    assert code == 0 and "2026-W30" in [r["period"] for r in json.loads(printed)]

    wrong = ["--city", "zwolle", "--period", "2026-W31", "--out", str(out)]
    code, printed = cli(fed, monkeypatch, capsys, "run", *wrong)
    assert code == 1 and "INVALID_ARGUMENT" in printed and "sint_niklaas" in printed


def test_one_shop_cannot_read_another_shops_payouts(
    fed: LocalFederation, sn: CityStubs, shops: dict[str, Any]
) -> None:
    """A statement is the calling till's own shop, whatever the request: the request names no
    shop, so a shop's credential reads its own payouts only, and no other caller reads any."""
    company, kiosk = shops["company"], shops["no_account"]
    run(fed, sn, "2026-W22")
    paid = statement(sn, company)
    assert paid.payouts and paid.paid_out.units > 0
    # The kiosk, trying to name the company in the request, gets its own statement only: the
    # request has no field that names a shop, only how to page through the caller's own.
    fields = [f.name for f in merchant_pb2.GetStatementRequest.DESCRIPTOR.fields]
    assert fields == ["page_size", "page_token", "newest_first"]
    own = statement(sn, kiosk)
    assert list(own.payouts) == [] and own.paid_out.units == 0
    assert {p.run_id for p in own.payouts}.isdisjoint({p.run_id for p in paid.payouts})
    # Neither a holder nor finance, audit or shop-registration staff reads a shop's statement.
    anna = shops["anna"]
    for metadata in (
        bearer(anna.holder_token),
        fed.staff("fien", "finance_officer"),
        fed.staff("aud", "auditor"),
        fed.staff("mia", "merchant_admin"),
    ):
        code, _ = refused(
            sn.merchant.GetStatement, merchant_pb2.GetStatementRequest(), metadata=metadata, timeout=5
        )
        assert code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
