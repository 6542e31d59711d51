"""Money surfaces under attack, over real gRPC (mutual TLS on loopback, staff tokens from the
test identity provider, SQLite stores): Vienna, Sint-Niklaas and Rome nodes, Sint-Niklaas
capping what Vienna may owe it uncleared. Each test plays a hostile staff member, shop,
holder or partner city against fund top-ups, shop payouts, clearing and the exposure limit,
and checks that the attack is refused with the right status and that nothing was written."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import uuid
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import grpc
import pytest

from aggregates.clearing import Figures, Line, PartnerExposure
from aggregates.fund import Fund
from civfed.v1 import (
    clearing_pb2,
    clearing_pb2_grpc,
    federation_pb2,
    federation_pb2_grpc,
    funds_pb2,
    funds_pb2_grpc,
    merchant_pb2,
    payouts_pb2,
    payouts_pb2_grpc,
    wallet_pb2,
)
from services.clock import MovableClock, utcnow
from services.demo.local_federation import LocalFederation
from services.federation.clearing import records
from services.federation.vouchers import load_private_key
from services.grpc.auth import bearer
from services.grpc.clearing_client import figures_message, line_message
from services.settings.cities import PACKAGED_CITIES
from tests.e2e.cluster import conservation
from tests.e2e.flows import CONSENT, accept, open_wallet, rome_citizen, shop, vienna_citizen

LIMIT = 40  # Vienna tokens Sint-Niklaas lets Vienna owe it, uncleared
SN = "sint_niklaas"
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
IBAN_A, IBAN_B = "BE71096123456769", "NL91ABNA0417164300"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalFederation, MovableClock]]:
    folder = Path(tmp_path_factory.mktemp("finance-attacks"))
    cities = folder / "cities"
    shutil.copytree(PACKAGED_CITIES, cities)
    toml = cities / SN / "city.toml"
    marker = "[federation.accepts.vienna]\n"
    toml.write_text(toml.read_text().replace(marker, f"{marker}exposure_limit = {LIMIT}\n"))
    clock = MovableClock()
    fed = LocalFederation(folder, ["vienna", SN, "rome"], extra_env={"CIVFED_CITIES_DIR": str(cities)})
    for city in fed.cities:
        fed.start_in_process(city, clock)
    yield fed, clock
    for city, running in fed.running.items():
        conservation(running.node.app, city)
    fed.stop_all()


def refused(fn: Any, request: Any, **kw: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        fn(request, timeout=30, **kw)
    return info.value.code(), info.value.details() or ""


def payouts(fed: LocalFederation, city: str = SN) -> Any:
    return payouts_pb2_grpc.PayoutServiceStub(fed.channel(city))


def admin(fed: LocalFederation, city: str) -> Any:
    return clearing_pb2_grpc.ClearingAdminServiceStub(fed.channel(city))


def as_partner(fed: LocalFederation, caller: str, callee: str) -> grpc.Channel:
    f = fed.files[caller]
    return fed.channel(callee, f.cert, f.key)


def key() -> str:
    return f"k:{uuid.uuid4()}"


# -- who may call ---------------------------------------------------------------------------


def test_finance_payout_and_clearing_calls_refuse_holders_shops_partners_and_other_staff(
    world: tuple[LocalFederation, MovableClock],
) -> None:
    fed, _ = world
    sn = fed.stubs(SN)
    holder = open_wallet(sn, "who:holder", CONSENT[SN])
    merchant_id, till = shop(sn, "Who Shop")
    partner = as_partner(fed, "vienna", SN)
    month = "2026-01"
    calls: list[tuple[str, Any, Any]] = []
    for channel_name, channel in (("staff port", fed.channel(SN)), ("partner", partner)):
        f = funds_pb2_grpc.FundServiceStub(channel)
        p = payouts_pb2_grpc.PayoutServiceStub(channel)
        a = clearing_pb2_grpc.ClearingAdminServiceStub(channel)
        calls += [
            (
                channel_name,
                f.ProposeFundTopUp,
                funds_pb2.ProposeFundTopUpRequest(
                    idempotency_key=key(), fund_id="city", amount=1, reason="r"
                ),
            ),
            (
                channel_name,
                f.ApproveFundTopUp,
                funds_pb2.ApproveFundTopUpRequest(
                    idempotency_key=key(), fund_id="city", proposal_id="x", decision_ref="d"
                ),
            ),
            (channel_name, f.GetFundReport, funds_pb2.GetFundReportRequest()),
            (channel_name, f.GetFinanceReport, funds_pb2.GetFinanceReportRequest(period=month)),
            (
                channel_name,
                p.ProposePayoutRun,
                payouts_pb2.ProposePayoutRunRequest(idempotency_key=key(), period="2026-W02"),
            ),
            (
                channel_name,
                p.RunPayouts,
                payouts_pb2.RunPayoutsRequest(idempotency_key=key(), period="2026-W02"),
            ),
            (channel_name, p.ListPayoutRuns, payouts_pb2.ListPayoutRunsRequest()),
            (
                channel_name,
                p.SetBankAccount,
                payouts_pb2.SetBankAccountRequest(
                    idempotency_key=key(), merchant_id=merchant_id, iban=IBAN_A, account_holder="x"
                ),
            ),
            (
                channel_name,
                a.RunClearing,
                clearing_pb2.RunClearingRequest(partner_city="vienna", period=month),
            ),
            (channel_name, a.ListClearings, clearing_pb2.ListClearingsRequest()),
        ]
    callers = {
        "holder": bearer(holder.holder_token),
        "till": till,
        "recorder": fed.staff("rick", "recorder"),
        "appeals officer": fed.staff("olga", "appeals_officer"),
    }
    for channel_name, fn, request in calls:
        if channel_name == "partner":
            code, details = refused(fn, request)  # the partner city's node, by its certificate
            assert code == grpc.StatusCode.PERMISSION_DENIED, (fn, details)
            continue
        for who, metadata in callers.items():
            code, details = refused(fn, request, metadata=metadata)
            assert code == grpc.StatusCode.PERMISSION_DENIED, (who, fn, details)
        code, _ = refused(fn, request)  # no credentials at all
        assert code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
    # Staff roles that read but do not decide.
    auditor = fed.staff("aud", "auditor")
    code, _ = refused(
        payouts(fed).RunPayouts,
        payouts_pb2.RunPayoutsRequest(idempotency_key=key(), period="2026-W02"),
        metadata=auditor,
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = refused(
        admin(fed, SN).RunClearing,
        clearing_pb2.RunClearingRequest(partner_city="vienna", period=month),
        metadata=fed.staff("fien", "finance_officer"),
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    # A clearing proposal comes only from a partner node, never from staff or a shop.
    stub = clearing_pb2_grpc.ClearingServiceStub(fed.channel(SN))
    figures = Figures.of(SN, "vienna", month, [])
    proposal = clearing_pb2.ProposeClearingRequest(figures=figures_message(figures), signature=b"x" * 64)
    for metadata in (fed.staff("cora", "council_approver"), till, bearer(holder.holder_token)):
        assert (
            refused(stub.ProposeClearing, proposal, metadata=metadata)[0] == grpc.StatusCode.PERMISSION_DENIED
        )


# -- fund top-ups ---------------------------------------------------------------------------


def fund(fed: LocalFederation, fund_id: str = "city") -> Fund:
    app = fed.running[SN].node.app
    found = app.repository.get(Fund.create_id(app.key, fund_id))
    assert isinstance(found, Fund)
    return found


def top_up(
    fed: LocalFederation, who: Any, idem: str, amount: int, fund_id: str = "city", reason: str = "r"
) -> Any:
    req = funds_pb2.ProposeFundTopUpRequest(
        idempotency_key=idem, fund_id=fund_id, amount=amount, reason=reason
    )
    return fed.stubs(SN).funds.ProposeFundTopUp(req, metadata=who, timeout=10)


def approve_request(idem: str, proposal_id: str, fund_id: str = "city", ref: str = "Besluit 7") -> Any:
    return funds_pb2.ApproveFundTopUpRequest(
        idempotency_key=idem, fund_id=fund_id, proposal_id=proposal_id, decision_ref=ref
    )


def test_a_top_up_needs_two_people_and_a_reused_key_or_approval_moves_nothing(
    world: tuple[LocalFederation, MovableClock],
) -> None:
    fed, _ = world
    stub = fed.stubs(SN).funds
    # The same person through two tokens with other roles is still one person.
    ada_publisher = fed.staff("ada", "rule_publisher")
    ada_approver = fed.staff("ada", "council_approver", "auditor")
    bea = fed.staff("bea", "council_approver")
    budget = fund(fed).budget
    proposed = top_up(fed, ada_publisher, "ada:1", 100)
    code, details = refused(
        stub.ApproveFundTopUp, approve_request("ada:2", proposed.proposal_id), metadata=ada_approver
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "four eyes" in details
    assert fund(fed).budget == budget

    # The proposer's key again with another amount: refused, not a second proposal nor the
    # first one's result; the same request again replays it.
    code, details = refused(
        stub.ProposeFundTopUp,
        funds_pb2.ProposeFundTopUpRequest(
            idempotency_key="ada:1", fund_id="city", amount=100_000, reason="r"
        ),
        metadata=ada_publisher,
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "idempotency key" in details
    assert top_up(fed, ada_publisher, "ada:1", 100).proposal_id == proposed.proposal_id
    assert [t["amount"] for t in fund(fed).top_ups.values() if t["proposed_by"] == "staff:ada"] == [100]

    # Bea approves; her approval replayed pays once; her key used for another proposal is refused.
    approved = stub.ApproveFundTopUp(approve_request("bea:1", proposed.proposal_id), metadata=bea, timeout=10)
    assert (approved.status, approved.amount, approved.budget) == ("approved", 100, budget + 100)
    again = stub.ApproveFundTopUp(approve_request("bea:1", proposed.proposal_id), metadata=bea, timeout=10)
    assert again == approved and fund(fed).budget == budget + 100
    other = top_up(fed, ada_publisher, "ada:3", 5_000)
    code, details = refused(stub.ApproveFundTopUp, approve_request("bea:1", other.proposal_id), metadata=bea)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "idempotency key" in details
    assert fund(fed).top_up(other.proposal_id).status == "proposed"  # type: ignore[union-attr]
    # The approved proposal approved again under a new key: already decided.
    code, details = refused(
        stub.ApproveFundTopUp, approve_request("bea:2", proposed.proposal_id), metadata=bea
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "already approved" in details
    # The decision that approved the first top-up, given again (respelt) for another amount.
    code, details = refused(
        stub.ApproveFundTopUp, approve_request("bea:4", other.proposal_id, ref="  besluit  7 "), metadata=bea
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "already approved top-up" in details
    assert fund(fed).top_up(other.proposal_id).status == "proposed"  # type: ignore[union-attr]
    # A proposal of one fund approved under another fund's name: not found there.
    code, _ = refused(
        stub.ApproveFundTopUp, approve_request("bea:3", other.proposal_id, "flemish_grant"), metadata=bea
    )
    assert code == grpc.StatusCode.NOT_FOUND
    assert fund(fed).budget == budget + 100 and fund(fed, "flemish_grant").top_ups == {}


@pytest.mark.parametrize(
    ("amount", "fund_id", "reason", "code", "field"),
    [
        (0, "city", "r", grpc.StatusCode.INVALID_ARGUMENT, "amount"),
        (-5, "city", "r", grpc.StatusCode.INVALID_ARGUMENT, "amount"),
        (2**63 - 1, "city", "r", grpc.StatusCode.INVALID_ARGUMENT, "amount"),
        (-(2**63), "city", "r", grpc.StatusCode.INVALID_ARGUMENT, "amount"),
        (10**12 + 1, "city", "r", grpc.StatusCode.INVALID_ARGUMENT, "amount"),
        (10, "no_such_fund", "r", grpc.StatusCode.NOT_FOUND, "no_such_fund"),
        (10, "City-Fund", "r", grpc.StatusCode.INVALID_ARGUMENT, "fund_id"),
        (10, "", "r", grpc.StatusCode.INVALID_ARGUMENT, "fund_id"),
        (10, "city", "", grpc.StatusCode.INVALID_ARGUMENT, "reason"),
        (10, "city", "   ", grpc.StatusCode.INVALID_ARGUMENT, "reason"),
    ],
)
def test_a_bad_top_up_is_refused_naming_its_field_and_records_nothing(
    world: tuple[LocalFederation, MovableClock], amount: int, fund_id: str, reason: str, code: Any, field: str
) -> None:
    fed, _ = world
    before = fund(fed).top_ups
    with pytest.raises(grpc.RpcError) as err:
        top_up(fed, fed.staff("pia", "rule_publisher"), key(), amount, fund_id, reason)
    assert err.value.code() == code and field in (err.value.details() or "")
    assert fund(fed).top_ups == before


def test_a_bad_approval_is_refused_naming_its_field(world: tuple[LocalFederation, MovableClock]) -> None:
    fed, _ = world
    stub = fed.stubs(SN).funds
    proposed = top_up(fed, fed.staff("pia", "rule_publisher"), key(), 7)
    bea = fed.staff("bea", "council_approver")
    for request, code, field in (
        (
            approve_request(key(), proposed.proposal_id, ref=""),
            grpc.StatusCode.INVALID_ARGUMENT,
            "decision_ref",
        ),
        (
            approve_request(key(), proposed.proposal_id, ref="  "),
            grpc.StatusCode.INVALID_ARGUMENT,
            "decision_ref",
        ),
        (approve_request(key(), ""), grpc.StatusCode.INVALID_ARGUMENT, "proposal_id"),
        (approve_request(key(), "not-a-proposal"), grpc.StatusCode.NOT_FOUND, "not-a-proposal"),
        (approve_request("", proposed.proposal_id), grpc.StatusCode.INVALID_ARGUMENT, "idempotency_key"),
    ):
        got, details = refused(stub.ApproveFundTopUp, request, metadata=bea)
        assert got == code and field in details, (request, details)
    assert fund(fed).top_up(proposed.proposal_id).status == "proposed"  # type: ignore[union-attr]


# -- shop payouts ---------------------------------------------------------------------------


def register(fed: LocalFederation, name: str, **account: Any) -> Any:
    req = merchant_pb2.RegisterMerchantRequest(
        idempotency_key=f"shop:{name}", name=name, category="food", local=True, **account
    )
    return fed.stubs(SN).merchant.RegisterMerchant(
        req, metadata=fed.staff("mia", "merchant_admin"), timeout=5
    )


def paid_at(fed: LocalFederation, shop_: Any, amount: int) -> None:
    """A Sint-Niklaas holder earns cashback at the shop, then spends `amount` there."""
    from civfed.v1 import cashback_pb2

    sn = fed.stubs(SN)
    holder = open_wallet(sn, key(), CONSENT[SN])
    till = bearer(shop_.merchant_token)
    for _ in range(amount // 250 + 1):
        sn.cashback.ReportPurchase(
            cashback_pb2.ReportPurchaseRequest(
                idempotency_key=key(),
                merchant_id=shop_.merchant_id,
                receipt_id=f"R-{uuid.uuid4().hex[:8]}",
                wallet_id=holder.wallet_id,
                amount_cents=5_000,
                date=dt.date.today().isoformat(),
            ),
            metadata=till,
            timeout=5,
        )
    spend = wallet_pb2.SpendRequest(
        idempotency_key=key(),
        wallet_id=holder.wallet_id,
        merchant_id=shop_.merchant_id,
        amount=amount,
        purchase_ref=key(),
    )
    sn.wallet.Spend(spend, metadata=bearer(holder.holder_token), timeout=5)


def propose_run(fed: LocalFederation, period: str, who: Any, idem: str | None = None) -> Any:
    req = payouts_pb2.ProposePayoutRunRequest(idempotency_key=idem or key(), period=period)
    return payouts(fed).ProposePayoutRun(req, metadata=who, timeout=10)


def run_request(period: str, idem: str | None = None, city: str = "") -> Any:
    return payouts_pb2.RunPayoutsRequest(idempotency_key=idem or key(), period=period, city=city)


def to_pay_out(fed: LocalFederation, merchant_id: str) -> int:
    return int(fed.running[SN].node.app.repository.get(uuid.UUID(merchant_id)).to_pay_out)


def credited(sepa: bytes) -> dict[str, str]:
    doc = ElementTree.fromstring(sepa)
    return {
        str(tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS)): str(
            tx.findtext("p:Amt/p:InstdAmt", namespaces=NS)
        )
        for tx in doc.iterfind(".//p:CdtTrfTxInf", NS)
    }


def test_a_payout_run_needs_two_people_and_pays_each_token_once(
    world: tuple[LocalFederation, MovableClock],
) -> None:
    fed, _ = world
    stub = payouts(fed)
    ann_a, ann_b = fed.staff("ann", "finance_officer"), fed.staff("ann", "finance_officer", "auditor")
    ben = fed.staff("ben", "finance_officer")
    bakery = register(fed, "Attack Bakery", iban=IBAN_A, bic="GKCCBEBB", account_holder="Bakery BV")
    paid_at(fed, bakery, 300)
    assert to_pay_out(fed, bakery.merchant_id) == 300

    # One person, two tokens: proposes, and may not run it.
    assert propose_run(fed, "2026-W10", ann_a).run.state == "proposed"
    code, details = refused(stub.RunPayouts, run_request("2026-W10"), metadata=ann_b)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "four eyes" in details
    assert to_pay_out(fed, bakery.merchant_id) == 300
    # Proposing again by someone else does not make them the proposer.
    assert propose_run(fed, "2026-W10", ben).run.proposed_by == "staff:ann"
    code, _ = refused(stub.RunPayouts, run_request("2026-W10"), metadata=ann_a)
    assert code == grpc.StatusCode.FAILED_PRECONDITION

    first = stub.RunPayouts(run_request("2026-W10", "ben:run"), metadata=ben, timeout=10)
    assert not first.already_run and first.run.tokens >= 300
    assert credited(first.sepa_file)[IBAN_A] == "1.50"
    assert to_pay_out(fed, bakery.merchant_id) == 0
    # The same key for another period: refused, not the first run's result.
    code, details = refused(stub.RunPayouts, run_request("2026-W11", "ben:run"), metadata=ben)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "idempotency key" in details
    # A retry with the same key (the answer was lost) gets the same answer and the same file,
    # byte for byte: its message id is the run's, so a bank refuses a second copy.
    retried = stub.RunPayouts(run_request("2026-W10", "ben:run"), metadata=ben, timeout=10)
    assert retried == first and b"<MsgId>CIVFED-" in first.sepa_file
    # The same period again, by other keys and people: nothing new, no file.
    for who, idem in ((ben, key()), (fed.staff("cas", "finance_officer"), key())):
        again = stub.RunPayouts(run_request("2026-W10", idem), metadata=who, timeout=10)
        assert again.already_run and again.sepa_file == b"" and again.run.run_id == first.run.run_id
    # A later week pays only what came in since: the bakery's tokens are not paid twice.
    paid_at(fed, bakery, 100)
    propose_run(fed, "2026-W11", ann_a)
    later = stub.RunPayouts(run_request("2026-W11"), metadata=ben, timeout=10)
    [line] = [x for x in later.run.lines if x.merchant_id == bakery.merchant_id]
    assert (line.tokens, line.euro_cents) == (100, 50)
    statement = fed.stubs(SN).merchant.GetStatement(
        merchant_pb2.GetStatementRequest(), metadata=bearer(bakery.merchant_token), timeout=5
    )
    assert (statement.total.units, statement.paid_out.units, statement.to_pay_out.units) == (400, 400, 0)
    assert [p.period for p in statement.payouts] == ["2026-W10", "2026-W11"]


@pytest.mark.parametrize(
    ("period", "city", "code", "field"),
    [
        ("2026-W99", "", grpc.StatusCode.INVALID_ARGUMENT, "period"),
        ("2026-W00", "", grpc.StatusCode.INVALID_ARGUMENT, "period"),
        ("2026-06", "", grpc.StatusCode.INVALID_ARGUMENT, "period"),  # a month, in a weekly city
        ("W22-2026", "", grpc.StatusCode.INVALID_ARGUMENT, "period"),
        ("2026-W2", "", grpc.StatusCode.INVALID_ARGUMENT, "period"),
        ("", "", grpc.StatusCode.INVALID_ARGUMENT, "period"),
        ("2026-W22-and-more", "", grpc.StatusCode.INVALID_ARGUMENT, "period"),
        ("2099-W01", "", grpc.StatusCode.FAILED_PRECONDITION, "not over"),
        ("2026-W22", "zwolle", grpc.StatusCode.INVALID_ARGUMENT, "city"),
    ],
)
def test_a_payout_run_for_a_bad_or_unfinished_period_is_refused(
    world: tuple[LocalFederation, MovableClock], period: str, city: str, code: Any, field: str
) -> None:
    fed, _ = world
    stub = payouts(fed)
    propose = payouts_pb2.ProposePayoutRunRequest(idempotency_key=key(), period=period, city=city)
    for fn, request in ((stub.ProposePayoutRun, propose), (stub.RunPayouts, run_request(period, city=city))):
        got, details = refused(fn, request, metadata=fed.staff("ann", "finance_officer"))
        assert got == code and field in details, details
    listed = stub.ListPayoutRuns(payouts_pb2.ListPayoutRunsRequest(), metadata=fed.staff("aud", "auditor"))
    assert period not in [r.period for r in listed.runs]


def test_this_weeks_run_is_refused_until_the_week_is_over(
    world: tuple[LocalFederation, MovableClock],
) -> None:
    fed, _ = world
    year, week, _ = utcnow().isocalendar()
    code, details = refused(
        payouts(fed).ProposePayoutRun,
        payouts_pb2.ProposePayoutRunRequest(idempotency_key=key(), period=f"{year}-W{week:02d}"),
        metadata=fed.staff("ann", "finance_officer"),
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "not over" in details


@pytest.mark.parametrize(
    ("iban", "bic", "holder", "field"),
    [
        ("BE71096123456768", "", "x", "iban"),  # a check digit off
        ("US12345678901234", "", "x", "iban"),
        ("SA0380000000608010167519", "", "x", "SEPA"),  # a valid IBAN a SEPA transfer cannot pay
        ("not an iban", "", "x", "iban"),
        (IBAN_A, "NOTABIC", "x", "bic"),
        (IBAN_A, "", "", "account_holder"),
        (IBAN_A, "", "   ", "account_holder"),
        # Nothing of it left in a transfer file's Latin letters: the schema would refuse the
        # file, and with it every other shop's payout in the run.
        (IBAN_A, "", "\U0001f642\U0001f4b6", "account_holder"),
        ("", "", "x", "iban"),
    ],
)
def test_a_bad_bank_account_is_refused_and_the_old_one_kept(
    world: tuple[LocalFederation, MovableClock], iban: str, bic: str, holder: str, field: str
) -> None:
    fed, _ = world
    shop_ = register(fed, "Account Shop", iban=IBAN_A, account_holder="Account BV")
    request = payouts_pb2.SetBankAccountRequest(
        idempotency_key=key(), merchant_id=shop_.merchant_id, iban=iban, bic=bic, account_holder=holder
    )
    code, details = refused(payouts(fed).SetBankAccount, request, metadata=fed.staff("mia", "merchant_admin"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and field in details, details
    assert fed.running[SN].node.app.repository.get(uuid.UUID(shop_.merchant_id)).iban == IBAN_A
    unknown = payouts_pb2.SetBankAccountRequest(
        idempotency_key=key(), merchant_id=str(uuid.uuid4()), iban=IBAN_A, account_holder="x"
    )
    code, _ = refused(payouts(fed).SetBankAccount, unknown, metadata=fed.staff("mia", "merchant_admin"))
    assert code == grpc.StatusCode.NOT_FOUND


def test_an_account_changed_after_the_proposal_is_not_paid_by_that_run(
    world: tuple[LocalFederation, MovableClock],
) -> None:
    """The second officer runs what the first proposed: a shop whose account was changed in
    between waits for a run proposed after the change, and the file pays no new account."""
    fed, _ = world
    stub = payouts(fed)
    grocer = register(fed, "Switch Grocer", iban=IBAN_A, account_holder="Grocer BV")
    paid_at(fed, grocer, 200)
    propose_run(fed, "2026-W12", fed.staff("ann", "finance_officer"))
    changed = payouts_pb2.SetBankAccountRequest(
        idempotency_key=key(), merchant_id=grocer.merchant_id, iban=IBAN_B, account_holder="Someone Else"
    )
    stub.SetBankAccount(changed, metadata=fed.staff("mia", "merchant_admin"), timeout=5)
    confirmed = stub.SetBankAccount(changed, metadata=fed.staff("max", "merchant_admin"), timeout=5)
    assert not confirmed.awaiting_second_entry  # a second person entered the same account
    ran = stub.RunPayouts(run_request("2026-W12"), metadata=fed.staff("ben", "finance_officer"), timeout=10)
    assert grocer.merchant_id in ran.skipped_merchant_ids
    assert grocer.merchant_id not in [line.merchant_id for line in ran.run.lines]
    assert IBAN_B not in credited(ran.sepa_file) if ran.sepa_file else True
    assert to_pay_out(fed, grocer.merchant_id) == 200
    # Proposed after the change, the new account is paid.
    propose_run(fed, "2026-W13", fed.staff("ann", "finance_officer"))
    ben = fed.staff("ben", "finance_officer")
    ran = stub.RunPayouts(run_request("2026-W13", "ben:w13"), metadata=ben, timeout=10)
    assert credited(ran.sepa_file)[IBAN_B] == "1.00"
    assert to_pay_out(fed, grocer.merchant_id) == 0
    # The account changed after the run paid it: the run retried (its answer lost) gives the
    # same file, to the account the run paid, not to the new one.
    back = payouts_pb2.SetBankAccountRequest(
        idempotency_key=key(), merchant_id=grocer.merchant_id, iban=IBAN_A, account_holder="Grocer BV"
    )
    stub.SetBankAccount(back, metadata=fed.staff("mia", "merchant_admin"), timeout=5)
    stub.SetBankAccount(back, metadata=fed.staff("max", "merchant_admin"), timeout=5)
    again = stub.RunPayouts(run_request("2026-W13", "ben:w13"), metadata=ben, timeout=10)
    assert again.sepa_file == ran.sepa_file and credited(again.sepa_file)[IBAN_B] == "1.00"
    assert to_pay_out(fed, grocer.merchant_id) == 0


# -- clearing between cities ----------------------------------------------------------------


def this_month() -> str:
    return utcnow().strftime("%Y-%m")


def propose_to(
    fed: LocalFederation, caller: str, callee: str, figures: Figures, signature: bytes, lines: Any = ()
) -> Any:
    stub = clearing_pb2_grpc.ClearingServiceStub(as_partner(fed, caller, callee))
    request = clearing_pb2.ProposeClearingRequest(
        figures=figures_message(figures), signature=signature, lines=[line_message(x) for x in lines]
    )
    return stub, request


def signer(fed: LocalFederation, city: str) -> Any:
    return load_private_key(fed.files[city].signing_key)


def statements(fed: LocalFederation, city: str) -> list[Any]:
    listed = admin(fed, city).ListClearings(
        clearing_pb2.ListClearingsRequest(), metadata=fed.staff("aud", "auditor")
    )
    return list(listed.statements)


def exposure(fed: LocalFederation) -> int:
    """Vienna's tokens taken at Sint-Niklaas and not cleared (none before the first)."""
    app = fed.running[SN].node.app
    exposure_id = PartnerExposure.create_id(SN, "vienna")
    if not app.recorder.select_events(exposure_id):
        return 0
    return int(app.repository.get(exposure_id).open)


def test_clearing_refuses_early_foreign_duplicated_and_second_statements(
    world: tuple[LocalFederation, MovableClock],
) -> None:
    fed, clock = world
    v, sn = fed.stubs("vienna"), fed.stubs(SN)
    _, till = shop(sn, "Clearing Shop")
    ida = vienna_citizen(v, "clearing-ida", 12_000)  # 120 Wienertoken
    for i, amount in enumerate((5, 7, 4)):
        accept(sn, till, ida.voucher(amount, f"clear:v{i}"), f"clear:sale{i}")
    # A redemption still in flight: held at home (here by a partner's direct call), never committed.
    vienna_federation = federation_pb2_grpc.FederationServiceStub(as_partner(fed, SN, "vienna"))
    held = vienna_federation.Reserve(
        federation_pb2.ReserveRequest(idempotency_key="held", redemption_token=ida.voucher(6, "clear:held")),
        timeout=10,
    )
    assert held.decision == federation_pb2.DECISION_ACCEPTED
    period = this_month()

    # Not before the month is over: neither proposed by the partner nor run by staff.
    early = Figures.of(SN, "vienna", period, [])
    stub, request = propose_to(fed, "vienna", SN, early, signer(fed, "vienna").sign(early.payload()))
    code, details = refused(stub.ProposeClearing, request)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "not over" in details
    clock.offset = dt.timedelta(days=40)
    true, lines, _ = fed.running[SN].node.clearing.draft("vienna", period)
    assert (true.owed_by_b, true.redemptions) == (16, 3)  # the held redemption is not counted

    # A third city: Rome, with its own key, proposes a statement of the Vienna pair; Vienna
    # proposes one naming Rome; a statement signed by Rome's key in Vienna's name.
    stub, request = propose_to(fed, "rome", SN, true, signer(fed, "rome").sign(true.payload()))
    code, details = refused(stub.ProposeClearing, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "figures" in details
    foreign = Figures.of("rome", SN, period, [])
    stub, request = propose_to(fed, "vienna", SN, foreign, signer(fed, "vienna").sign(foreign.payload()))
    code, details = refused(stub.ProposeClearing, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "figures" in details
    stub, request = propose_to(fed, "vienna", SN, true, signer(fed, "rome").sign(true.payload()))
    code, details = refused(stub.ProposeClearing, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "not signed by vienna" in details

    # Sint-Niklaas proposes to Vienna a list with one real redemption counted twice, and
    # figures that add it up: Vienna would sign that it owes 21, not 16.
    doubled = [*lines, lines[0]]
    inflated = Figures.of(SN, "vienna", period, doubled)
    assert inflated.owed_by_b == 16 + lines[0].amount
    stub, request = propose_to(fed, SN, "vienna", inflated, signer(fed, SN).sign(inflated.payload()), doubled)
    code, details = refused(stub.ProposeClearing, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "lines" in details
    assert statements(fed, "vienna") == [] and statements(fed, SN) == []

    # The true statement is recorded by both, once.
    run = clearing_pb2.RunClearingRequest(partner_city=SN, period=period)
    statement = (
        admin(fed, "vienna").RunClearing(run, metadata=fed.staff("cora", "council_approver")).statement
    )
    assert (statement.figures.owed_by_b, statement.figures.redemptions) == (16, 3)
    assert statements(fed, "vienna") == statements(fed, SN) == [statement]
    assert exposure(fed) == 0
    # Replayed after it was recorded: the same countersignature, nothing recorded again.
    stub, request = propose_to(fed, SN, "vienna", true, signer(fed, SN).sign(true.payload()))
    answer = stub.ProposeClearing(request, timeout=30)
    assert answer.agreed and answer.countersignature == statement.signature_b
    # Another statement for the same month, properly signed: not agreed, the recorded one stands.
    other = Figures.of(SN, "vienna", period, lines[:1])
    stub, request = propose_to(fed, SN, "vienna", other, signer(fed, SN).sign(other.payload()), lines[:1])
    answer = stub.ProposeClearing(request, timeout=30)
    assert not answer.agreed and answer.recorded.owed_by_b == 16
    stub, request = propose_to(
        fed, "vienna", SN, other, signer(fed, "vienna").sign(other.payload()), lines[:1]
    )
    assert not stub.ProposeClearing(request, timeout=30).agreed
    assert statements(fed, "vienna") == statements(fed, SN) == [statement]
    assert exposure(fed) == 0
    # An earlier month, once a later one is cleared, is not cleared on its own.
    before = Figures.of(SN, "vienna", "2026-01", [])
    stub, request = propose_to(fed, SN, "vienna", before, signer(fed, SN).sign(before.payload()))
    code, details = refused(stub.ProposeClearing, request)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "already cleared" in details

    # Staff: a city with no agreement, the city itself, malformed names and months.
    approver = fed.staff("cora", "council_approver")
    for partner, month, code, field in (
        ("zwolle", period, grpc.StatusCode.FAILED_PRECONDITION, "no clearing agreement"),
        (SN, period, grpc.StatusCode.FAILED_PRECONDITION, "no clearing agreement"),
        ("Vienna!", period, grpc.StatusCode.INVALID_ARGUMENT, "partner_city"),
        ("vienna", "2026-13", grpc.StatusCode.INVALID_ARGUMENT, "period"),
        ("vienna", "2026-1", grpc.StatusCode.INVALID_ARGUMENT, "period"),
        ("vienna", "2099-01", grpc.StatusCode.FAILED_PRECONDITION, "not over"),
    ):
        got, details = refused(
            admin(fed, SN).RunClearing,
            clearing_pb2.RunClearingRequest(partner_city=partner, period=month),
            metadata=approver,
        )
        assert got == code and field in details, (partner, month, details)

    # The held redemption is given back; it was never in a statement.
    vienna_federation.Cancel(
        federation_pb2.CancelRequest(
            idempotency_key="held:cancel", redemption_id=held.redemption_id, reason="x"
        ),
        timeout=10,
    )
    clock.offset = dt.timedelta()


def test_concurrent_redemptions_never_take_a_partner_over_its_exposure_limit(
    world: tuple[LocalFederation, MovableClock],
) -> None:
    fed, clock = world
    clock.offset = dt.timedelta()  # claims are dated today
    v, sn = fed.stubs("vienna"), fed.stubs(SN)
    tills = [shop(sn, f"Race Shop {i}")[1] for i in range(4)]
    ida = vienna_citizen(v, "race-ida", 12_000)
    room = LIMIT - exposure(fed)
    tokens = [ida.voucher(10, f"race:{i}") for i in range(8)]

    def sale(i: int) -> str:
        try:
            accept(sn, tills[i % 4], tokens[i], f"race:sale:{i}")
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
            assert "exposure limit" in (err.details() or ""), err.details()
            return "refused"
        return "accepted"

    with futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(sale, range(8)))
    assert outcomes.count("accepted") == room // 10
    assert exposure(fed) == LIMIT - room + 10 * (room // 10) <= LIMIT


GOOD_FIGURES = {
    "city_a": SN,
    "city_b": "vienna",
    "period": "2026-02",
    "owed_by_a": 0,
    "owed_by_b": 0,
    "redemptions": 0,
    "digest": "0" * 64,
}


@pytest.mark.parametrize(
    ("figures", "line", "signature", "field"),
    [
        ({"period": "2026-13"}, None, 64, "period"),
        ({"period": "2026-2"}, None, 64, "period"),
        ({"city_a": "Sint Niklaas"}, None, 64, "city_a"),
        ({"owed_by_a": -1}, None, 64, "owed_by_a"),
        ({"owed_by_b": 2**63 - 1}, None, 64, "owed_by_b"),
        ({"redemptions": -3}, None, 64, "redemptions"),
        ({"digest": "zz"}, None, 64, "digest"),
        ({}, None, 0, "signature"),
        ({}, None, 63, "signature"),
        ({}, {"redemption_id": "not-a-uuid"}, 64, "redemption_id"),
        ({}, {"amount": 0}, 64, "amount"),
        ({}, {"amount": -5}, 64, "amount"),
        ({}, {"home_city": ""}, 64, "home_city"),
        ({}, {"recorded_at": "yesterday"}, 64, "recorded_at"),
    ],
)
def test_a_malformed_clearing_proposal_is_refused_naming_its_field(
    world: tuple[LocalFederation, MovableClock],
    figures: dict[str, Any],
    line: dict[str, Any] | None,
    signature: int,
    field: str,
) -> None:
    fed, _ = world
    sent = clearing_pb2.ClearingFigures(**{**GOOD_FIGURES, **figures})
    lines = []
    if line is not None:
        good = {"redemption_id": str(uuid.uuid4()), "home_city": "vienna", "amount": 5, "recorded_at": ""}
        lines.append(clearing_pb2.ClearingLine(**{**good, **line}))
    request = clearing_pb2.ProposeClearingRequest(figures=sent, signature=b"s" * signature, lines=lines)
    stub = clearing_pb2_grpc.ClearingServiceStub(as_partner(fed, "vienna", SN))
    code, details = refused(stub.ProposeClearing, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and field in details, details
    assert "2026-02" not in [s.figures.period for s in statements(fed, SN)]


@pytest.mark.parametrize("period", ["2026-13", "2026-1", "May 2026", "2026-05-01"])
def test_a_finance_report_for_a_malformed_month_is_refused(
    world: tuple[LocalFederation, MovableClock], period: str
) -> None:
    fed, _ = world
    code, details = refused(
        fed.stubs(SN).funds.GetFinanceReport,
        funds_pb2.GetFinanceReportRequest(period=period),
        metadata=fed.staff("aud", "auditor"),
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "period" in details


def test_two_proposals_sent_at_once_get_one_statement_and_one_countersignature(
    world: tuple[LocalFederation, MovableClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rome sends Sint-Niklaas two different statements for last month at once, both of
    which Sint-Niklaas's records bear out (one also counts this month's redemptions, recorded
    after last month's end). Only one may be recorded and countersigned: a countersignature
    on the other would let Rome record a statement Sint-Niklaas did not, and the two cities'
    open positions would part for good."""
    fed, _ = world
    r, sn = fed.stubs("rome"), fed.stubs(SN)
    _, till = shop(sn, "Two Proposals Shop")
    rosa = rome_citizen(r, "two-proposals-rosa", 3)
    for i, amount in enumerate((10, 12)):
        accept(sn, till, rosa.voucher(amount, f"two:v{i}"), f"two:sale{i}")
    node = fed.running[SN].node
    node.writer.settle()  # every sale answered is saved
    lines = records(node.app, "rome").open
    assert sorted(line.amount for line in lines) == [10, 12]
    first_of_month = utcnow().replace(day=1)
    last_month = (first_of_month - dt.timedelta(days=1)).strftime("%Y-%m")
    rome_key = signer(fed, "rome")
    empty = Figures.of("rome", SN, last_month, [])
    pulled = Figures.of("rome", SN, last_month, lines)

    # Both proposals pass the "not yet recorded" check before either is recorded.
    barrier = threading.Barrier(2, timeout=20)
    original = node.clearing.recorded

    def recorded_then_wait(partner: str, period: str) -> Any:
        found = original(partner, period)
        if found is None:
            barrier.wait()
        return found

    monkeypatch.setattr(node.clearing, "recorded", recorded_then_wait)

    def send(figures: Figures, sent: list[Line]) -> Any:
        stub, request = propose_to(fed, "rome", SN, figures, rome_key.sign(figures.payload()), sent)
        return stub.ProposeClearing(request, timeout=30)

    with futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda args: send(*args), [(empty, []), (pulled, lines)]))
    monkeypatch.undo()
    [statement] = [s for s in statements(fed, SN) if s.figures.city_a == "rome"]
    agreed = [a for a in answers if a.agreed]
    assert len(agreed) == 1
    [refused_answer] = [a for a in answers if not a.agreed]
    assert refused_answer.recorded == statement.figures
    assert agreed[0].countersignature == statement.signature_b  # city_b is Sint-Niklaas


def test_a_run_pays_what_its_proposal_put_up_and_no_tokens_that_came_after(
    world: tuple[LocalFederation, MovableClock],
) -> None:
    fed, _ = world
    stub = payouts(fed)
    deli = register(fed, "Pinned Deli", iban=IBAN_A, account_holder="Deli BV")
    paid_at(fed, deli, 120)
    proposed = propose_run(fed, "2026-W14", fed.staff("ann", "finance_officer"))
    # The approver sees what the proposal puts up: this shop's 120 tokens, 60 cents.
    [line] = [x for x in proposed.run.lines if x.merchant_id == deli.merchant_id]
    assert (proposed.run.state, line.tokens, line.euro_cents) == ("proposed", 120, 60)
    # More tokens arrive before the run: they are not in what was approved.
    paid_at(fed, deli, 80)
    ran = stub.RunPayouts(run_request("2026-W14"), metadata=fed.staff("ben", "finance_officer"), timeout=10)
    [line] = [x for x in ran.run.lines if x.merchant_id == deli.merchant_id]
    assert (line.tokens, line.euro_cents) == (120, 60)
    assert ran.run.tokens == proposed.run.tokens
    assert to_pay_out(fed, deli.merchant_id) == 80  # waiting for the next run
    propose_run(fed, "2026-W15", fed.staff("ann", "finance_officer"))
    ran = stub.RunPayouts(run_request("2026-W15"), metadata=fed.staff("ben", "finance_officer"), timeout=10)
    [line] = [x for x in ran.run.lines if x.merchant_id == deli.merchant_id]
    assert (line.tokens, line.euro_cents) == (80, 40)
    assert to_pay_out(fed, deli.merchant_id) == 0


def test_a_holder_name_a_transfer_cannot_carry_is_refused_at_registration(
    world: tuple[LocalFederation, MovableClock],
) -> None:
    fed, _ = world
    code, details = refused(
        fed.stubs(SN).merchant.RegisterMerchant,
        merchant_pb2.RegisterMerchantRequest(
            idempotency_key=key(),
            name="Emoji Shop",
            category="food",
            local=True,
            iban=IBAN_A,
            account_holder="\U0001f642",
        ),
        metadata=fed.staff("mia", "merchant_admin"),
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "account_holder" in details


def test_a_stored_name_a_transfer_cannot_carry_holds_back_that_shop_only(
    world: tuple[LocalFederation, MovableClock],
) -> None:
    """An account stored before names were checked: its shop waits, the others are paid."""
    fed, _ = world
    app = fed.running[SN].node.app
    odd, fine = (
        register(fed, "Odd Name Shop"),
        register(fed, "Fine Name Shop", iban=IBAN_A, account_holder="Fine"),
    )
    paid_at(fed, odd, 10)
    paid_at(fed, fine, 10)
    fed.running[SN].node.writer.settle()
    stored = app.repository.get(uuid.UUID(odd.merchant_id))
    stored.set_bank_account(IBAN_B, "", "\U0001f642", False, "staff:before-checks")
    app.save(stored)
    propose_run(fed, "2026-W16", fed.staff("ann", "finance_officer"))
    ran = payouts(fed).RunPayouts(
        run_request("2026-W16"), metadata=fed.staff("ben", "finance_officer"), timeout=10
    )
    assert credited(ran.sepa_file)[IBAN_A] == "0.05"
    assert odd.merchant_id in ran.skipped_merchant_ids and IBAN_B not in credited(ran.sepa_file)
    assert to_pay_out(fed, odd.merchant_id) == 10 and to_pay_out(fed, fine.merchant_id) == 0


def test_an_earlier_period_is_not_run_after_a_later_one_was_paid(
    world: tuple[LocalFederation, MovableClock],
) -> None:
    """A run pays what the shops collected up to the day it runs: run for an earlier period
    after a later one was paid, it would label later tokens (and the finance report's month)
    with that earlier period."""
    fed, _ = world
    stub = payouts(fed)
    ann, ben = fed.staff("ann", "finance_officer"), fed.staff("ben", "finance_officer")
    propose_run(fed, "2026-W30", ann)  # proposed, not run yet
    propose_run(fed, "2026-W31", ann)
    stub.RunPayouts(run_request("2026-W31"), metadata=ben, timeout=10)
    for period in ("2026-W30", "2026-W05", "1999-W01"):
        for fn, request in (
            (
                stub.ProposePayoutRun,
                payouts_pb2.ProposePayoutRunRequest(idempotency_key=key(), period=period),
            ),
            (stub.RunPayouts, run_request(period)),
        ):
            code, details = refused(fn, request, metadata=ben)
            assert code == grpc.StatusCode.FAILED_PRECONDITION and "2026-W31" in details, details
    # A period paid before is still answered as paid, and a later one runs.
    assert stub.RunPayouts(run_request("2026-W31"), metadata=ben, timeout=10).already_run
    propose_run(fed, "2026-W32", ann)
    assert not stub.RunPayouts(run_request("2026-W32"), metadata=ben, timeout=10).already_run


def test_a_reused_key_with_other_content_is_refused_for_proposals_and_accounts(
    world: tuple[LocalFederation, MovableClock],
) -> None:
    fed, _ = world
    stub = payouts(fed)
    ann, mia = fed.staff("ann", "finance_officer"), fed.staff("mia", "merchant_admin")
    propose_run(fed, "2026-W40", ann, "ann:reused")
    code, details = refused(
        stub.ProposePayoutRun,
        payouts_pb2.ProposePayoutRunRequest(idempotency_key="ann:reused", period="2026-W41"),
        metadata=ann,
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "idempotency key" in details
    listed = stub.ListPayoutRuns(payouts_pb2.ListPayoutRunsRequest(), metadata=ann)
    assert "2026-W41" not in [r.period for r in listed.runs]

    shop_ = register(fed, "Reused Key Shop", iban=IBAN_A, account_holder="Reused BV")
    first = payouts_pb2.SetBankAccountRequest(
        idempotency_key="mia:acct", merchant_id=shop_.merchant_id, iban=IBAN_B, account_holder="Reused BV"
    )
    stub.SetBankAccount(first, metadata=mia, timeout=5)
    other = payouts_pb2.SetBankAccountRequest(
        idempotency_key="mia:acct", merchant_id=shop_.merchant_id, iban=IBAN_A, account_holder="Reused BV"
    )
    code, details = refused(stub.SetBankAccount, other, metadata=mia)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "idempotency key" in details
    # The first entry stands, waiting for a second person; the account is still the one set.
    shop_state = fed.running[SN].node.app.repository.get(uuid.UUID(shop_.merchant_id))
    assert (shop_state.iban, shop_state.pending_account["iban"]) == (IBAN_A, IBAN_B)


def test_no_one_person_can_send_a_shops_payouts_to_another_account(
    world: tuple[LocalFederation, MovableClock],
) -> None:
    """Dual entry: a change to an account already set waits until a second person enters the
    same account; payouts go to the account set meanwhile, whatever the first person does."""
    fed, _ = world
    stub = payouts(fed)
    ann, ben = fed.staff("ann", "finance_officer"), fed.staff("ben", "finance_officer")
    grocer = register(fed, "Dual Entry Grocer", iban=IBAN_A, account_holder="Grocer BV")
    paid_at(fed, grocer, 100)

    def enter(who: Any, iban: str, holder: str = "Grocer BV") -> Any:
        req = payouts_pb2.SetBankAccountRequest(
            idempotency_key=key(), merchant_id=grocer.merchant_id, iban=iban, account_holder=holder
        )
        return stub.SetBankAccount(req, metadata=who, timeout=5)

    # One merchant administrator enters another account, then again, and with a second token.
    mia = fed.staff("mia", "merchant_admin")
    assert enter(mia, IBAN_B).awaiting_second_entry
    assert enter(mia, IBAN_B).awaiting_second_entry
    assert enter(fed.staff("mia", "merchant_admin", "finance_officer"), IBAN_B).awaiting_second_entry
    propose_run(fed, "2026-W44", ann)
    ran = stub.RunPayouts(run_request("2026-W44"), metadata=ben, timeout=10)
    assert credited(ran.sepa_file)[IBAN_A] == "0.50" and IBAN_B not in credited(ran.sepa_file)

    # A second person entering a different account does not confirm the first: it replaces it.
    max_ = fed.staff("max", "merchant_admin")
    assert enter(max_, IBAN_B, "Someone Else").awaiting_second_entry
    shop_state = fed.running[SN].node.app.repository.get(uuid.UUID(grocer.merchant_id))
    assert shop_state.iban == IBAN_A and shop_state.pending_account["entered_by"].endswith("max")
    # The same account entered by someone else than the one who entered it: now it is set.
    set_ = enter(mia, IBAN_B, "Someone Else")
    assert not set_.awaiting_second_entry
    shop_state = fed.running[SN].node.app.repository.get(uuid.UUID(grocer.merchant_id))
    assert (shop_state.iban, shop_state.pending_account) == (IBAN_B, None)
    assert not enter(max_, IBAN_B, "Someone Else").awaiting_second_entry  # already so: unchanged
    paid_at(fed, grocer, 100)
    propose_run(fed, "2026-W45", ann)
    ran = stub.RunPayouts(run_request("2026-W45"), metadata=ben, timeout=10)
    assert credited(ran.sepa_file)[IBAN_B] == "0.50" and IBAN_A not in credited(ran.sepa_file)
