"""Cashback from a shop's till, against a real Sint-Niklaas node over gRPC: a receipt credits
its holder once, whatever key or till reports it again; a shop that is not local earns its
customers nothing; a till reports only for its own shop; holders and staff cannot report."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from civfed.v1 import cashback_pb2, credentials_pb2, merchant_pb2, sources_pb2, wallet_pb2
from services.claims import new_source_key, public_pem
from services.demo.local_federation import CityStubs, LocalFederation
from services.grpc.auth import bearer
from tests.e2e.flows import CONSENT, open_wallet


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


@pytest.fixture
def sn(fed: LocalFederation) -> CityStubs:
    return fed.stubs("sint_niklaas")


def shop(fed: LocalFederation, sn: CityStubs, name: str, local: bool = True) -> Any:
    req = merchant_pb2.RegisterMerchantRequest(
        idempotency_key=f"shop:{uuid.uuid4()}", name=name, category="cafe", local=local
    )
    return sn.merchant.RegisterMerchant(req, metadata=fed.staff("mia", "merchant_admin"), timeout=5)


def holder(sn: CityStubs) -> Any:
    return open_wallet(sn, f"cashback:{uuid.uuid4()}", CONSENT["sint_niklaas"])


def report(
    sn: CityStubs,
    till_token: str,
    merchant_id: str,
    receipt: str,
    wallet_id: str,
    cents: int = 5_000,
    key: str | None = None,
    date: str | None = None,
    language: str = "",
) -> Any:
    req = cashback_pb2.ReportPurchaseRequest(
        idempotency_key=key or f"k:{uuid.uuid4()}",
        merchant_id=merchant_id,
        receipt_id=receipt,
        wallet_id=wallet_id,
        amount_cents=cents,
        date=date or today(),
        language=language,
    )
    return sn.cashback.ReportPurchase(req, metadata=bearer(till_token), timeout=5)


def refused(call: Any, *args: Any, **kwargs: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call(*args, **kwargs)
    return err.value.code(), err.value.details()


def balance(sn: CityStubs, opened: Any) -> int:
    req = wallet_pb2.GetBalanceRequest(wallet_id=opened.wallet_id)
    return int(sn.wallet.GetBalance(req, metadata=bearer(opened.holder_token), timeout=5).balance.units)


def credits(sn: CityStubs, opened: Any) -> list[dict[str, Any]]:
    req = wallet_pb2.ListMyEventsRequest(wallet_id=opened.wallet_id)
    events = sn.wallet.ListMyEvents(req, metadata=bearer(opened.holder_token), timeout=5).events
    return [json.loads(e.fields_json) for e in events if e.type.endswith("Credited")]


def test_a_till_reports_the_same_receipt_twice_and_the_holder_is_credited_once(
    fed: LocalFederation, sn: CityStubs
) -> None:
    cafe, anna = shop(fed, sn, "Café De Reinaert"), holder(sn)
    first = report(sn, cafe.merchant_token, cafe.merchant_id, "R-0001", anna.wallet_id, key="a")
    assert first.awarded.units == 250 and first.awarded.currency == "Sengzen"  # 5 % of 50.00 EUR
    # In Sint-Niklaas's language unless the till asks for another.
    assert first.rule_id == "local-cashback" and "levert 5,00% = 250 op" in first.explanation
    # Again under another key, and from the shop's second till: the stored result, no credit.
    again = report(sn, cafe.merchant_token, cafe.merchant_id, "R-0001", anna.wallet_id, key="b")
    issue = credentials_pb2.IssueTillCredentialRequest(
        idempotency_key=f"till2:{cafe.merchant_id}", merchant_id=cafe.merchant_id, label="till 2"
    )
    till2 = sn.credentials.IssueTillCredential(issue, metadata=fed.staff("mia", "merchant_admin"), timeout=5)
    third = report(sn, till2.credential, cafe.merchant_id, "R-0001", anna.wallet_id, key="c")
    assert again == first and third == first
    # Asked in English, the same stored result answers in English.
    english = report(
        sn, cafe.merchant_token, cafe.merchant_id, "R-0001", anna.wallet_id, key="a", language="en"
    )
    assert english.awarded == first.awarded and "earns 5.00% = 250 (in hundredths" in english.explanation
    assert balance(sn, anna) == 250
    # The award names the till's shop as its source and the receipt as its claim id.
    [credited] = credits(sn, anna)
    assert credited["source"] == f"till:{cafe.merchant_id}" and credited["claim_id"] == "R-0001"
    # The next receipt is a purchase of its own.
    report(sn, cafe.merchant_token, cafe.merchant_id, "R-0002", anna.wallet_id, cents=2_000)
    assert balance(sn, anna) == 350


def test_tills_racing_to_report_one_receipt_credit_it_once(fed: LocalFederation, sn: CityStubs) -> None:
    cafe, anna = shop(fed, sn, "Café Het Bolwerk"), holder(sn)

    def send(i: int) -> Any:
        return report(sn, cafe.merchant_token, cafe.merchant_id, "RACE-1", anna.wallet_id, key=f"race{i}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, range(16)))
    assert all(a == answers[0] for a in answers) and answers[0].awarded.units == 250
    assert balance(sn, anna) == 250 and len(credits(sn, anna)) == 1


def test_the_same_receipt_id_for_another_purchase_is_refused(fed: LocalFederation, sn: CityStubs) -> None:
    cafe, anna, bert = shop(fed, sn, "Café Pax"), holder(sn), holder(sn)
    report(sn, cafe.merchant_token, cafe.merchant_id, "R-7", anna.wallet_id)
    for wallet, cents in ((anna.wallet_id, 9_000), (bert.wallet_id, 5_000)):
        code, details = refused(report, sn, cafe.merchant_token, cafe.merchant_id, "R-7", wallet, cents)
        assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("receipt_reused")
    assert balance(sn, anna) == 250 and balance(sn, bert) == 0
    # Receipt numbers are the shop's own: another shop's R-7 is another purchase.
    bakery = shop(fed, sn, "Bakkerij Verstraete")
    assert report(sn, bakery.merchant_token, bakery.merchant_id, "R-7", bert.wallet_id).awarded.units == 250


def test_a_non_local_shops_receipt_earns_nothing(fed: LocalFederation, sn: CityStubs) -> None:
    chain, anna = shop(fed, sn, "MegaChain Outlet", local=False), holder(sn)
    for key in ("x", "y"):
        code, details = refused(
            report, sn, chain.merchant_token, chain.merchant_id, "C-1", anna.wallet_id, key=key
        )
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        assert details.startswith("not_local_shop") and "MegaChain Outlet is not a local shop" in details
    assert balance(sn, anna) == 0 and credits(sn, anna) == []


def test_one_till_cannot_report_for_another_merchant(fed: LocalFederation, sn: CityStubs) -> None:
    a, b, anna = shop(fed, sn, "Shop A"), shop(fed, sn, "Shop B"), holder(sn)
    code, details = refused(report, sn, a.merchant_token, b.merchant_id, "B-1", anna.wallet_id)
    assert code == grpc.StatusCode.PERMISSION_DENIED and "own shop" in details
    assert balance(sn, anna) == 0
    # The refused attempt did not take shop B's receipt id: B's own till still reports it.
    assert report(sn, b.merchant_token, b.merchant_id, "B-1", anna.wallet_id).awarded.units == 250


def test_a_holder_staff_or_anyone_else_cannot_report_a_purchase(fed: LocalFederation, sn: CityStubs) -> None:
    cafe, anna = shop(fed, sn, "Café Central"), holder(sn)
    req = cashback_pb2.ReportPurchaseRequest(
        idempotency_key="self",
        merchant_id=cafe.merchant_id,
        receipt_id="FAKE-1",
        wallet_id=anna.wallet_id,
        amount_cents=100_000,
        date=today(),
    )
    callers: list[tuple[Any, grpc.StatusCode]] = [
        (bearer(anna.holder_token), grpc.StatusCode.PERMISSION_DENIED),
        ((), grpc.StatusCode.UNAUTHENTICATED),
    ]
    for role in ("recorder", "merchant_admin", "rule_publisher", "auditor"):
        callers.append((fed.staff(f"desk-{role}", role), grpc.StatusCode.PERMISSION_DENIED))
    for metadata, want in callers:
        code, _ = refused(sn.cashback.ReportPurchase, req, metadata=metadata, timeout=5)
        assert code == want
    assert balance(sn, anna) == 0


def test_bad_reports_are_refused_naming_the_field(fed: LocalFederation, sn: CityStubs) -> None:
    cafe, anna = shop(fed, sn, "Café Terminus"), holder(sn)
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)).isoformat()
    cases = [
        ({"cents": 0}, "amount_cents"),
        ({"receipt": ""}, "receipt_id"),
        ({"wallet_id": "not-a-wallet"}, "wallet_id"),
        ({"date": "yesterday"}, "date"),
        ({"date": tomorrow}, "date"),
    ]
    for change, field in cases:
        args: dict[str, Any] = {"receipt": "T-1", "wallet_id": anna.wallet_id, **change}
        receipt, wallet = args.pop("receipt"), args.pop("wallet_id")
        code, details = refused(report, sn, cafe.merchant_token, cafe.merchant_id, receipt, wallet, **args)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and field in details, (change, details)
    # A wallet that does not exist in this city is not found; nothing is credited anywhere.
    code, _ = refused(report, sn, cafe.merchant_token, cafe.merchant_id, "T-2", str(uuid.uuid4()))
    assert code == grpc.StatusCode.NOT_FOUND
    assert balance(sn, anna) == 0


def test_a_city_with_no_cashback_rule_refuses_with_a_reason(fed: LocalFederation) -> None:
    v = fed.stubs("vienna")
    req = merchant_pb2.RegisterMerchantRequest(
        idempotency_key="vienna-cafe", name="Café", category="food", local=True
    )
    cafe = v.merchant.RegisterMerchant(req, metadata=fed.staff("mia", "merchant_admin"), timeout=5)
    opened = open_wallet(v, "cashback:vienna")
    code, details = refused(report, v, cafe.merchant_token, cafe.merchant_id, "V-1", opened.wallet_id)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("no_cashback_rule")


def test_reflection_describes_the_cashback_service(sn: CityStubs) -> None:
    """What grpcurl asks before it calls ReportPurchase (README, "Cashback from a shop's till")."""
    info = reflection_pb2_grpc.ServerReflectionStub(sn.channel).ServerReflectionInfo
    ask = reflection_pb2.ServerReflectionRequest
    [listed] = list(info(iter([ask(list_services="")]), timeout=5))
    assert "civfed.v1.CashbackService" in {s.name for s in listed.list_services_response.service}
    [found] = list(info(iter([ask(file_containing_symbol="civfed.v1.CashbackService")]), timeout=5))
    assert found.file_descriptor_response.file_descriptor_proto


def test_purchases_cannot_come_in_as_a_sources_claims(fed: LocalFederation, sn: CityStubs) -> None:
    """A source's claims are keyed by the source's own claim id, so a receipt could be credited
    once by the till and again as a claim: no source may attest purchases."""
    req = sources_pb2.RegisterSourceRequest(
        idempotency_key="pos-aggregator",
        source_id="pos-aggregator",
        name="Till data aggregator",
        key_id="k1",
        public_key_pem=public_pem(new_source_key()),
        kinds=["local_purchase"],
        reason="purchases from the shops' tills",
    )
    code, details = refused(
        sn.sources.RegisterSource, req, metadata=fed.staff("rita", "rule_publisher"), timeout=5
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "kinds" in details and "till" in details
