"""Status codes, credentials and minimal disclosure at the service boundary."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from civfed.v1 import federation_pb2, merchant_pb2, wallet_pb2
from services.demo.local_federation import CityStubs, LocalFederation
from services.grpc.auth import bearer
from services.settings.errors import ConfigError
from services.settings.node import load_node_settings
from tests.e2e.flows import attest, open_wallet


def code_of(call: Any, *args: Any, **kw: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call(*args, timeout=5, **kw)
    return err.value.code(), err.value.details()


@pytest.fixture(scope="module")
def v(fed: LocalFederation) -> CityStubs:
    return fed.stubs("vienna")


@pytest.fixture(scope="module")
def wallet(v: CityStubs) -> wallet_pb2.OpenWalletResponse:
    return open_wallet(v, "w1")


def test_invalid_input_names_the_field(v: CityStubs, wallet: Any) -> None:
    req = wallet_pb2.SpendRequest(
        idempotency_key="s", wallet_id=wallet.wallet_id, merchant_id="nope", amount=1, purchase_ref="p"
    )
    code, details = code_of(v.wallet.Spend, req, metadata=bearer(wallet.holder_token))
    assert (code, details.split(":")[0]) == (grpc.StatusCode.INVALID_ARGUMENT, "merchant_id")
    req = wallet_pb2.SpendRequest(
        idempotency_key="s",
        wallet_id=wallet.wallet_id,
        merchant_id=str(uuid.uuid4()),
        amount=-5,
        purchase_ref="p",
    )
    code, details = code_of(v.wallet.Spend, req, metadata=bearer(wallet.holder_token))
    assert (code, details.split(":")[0]) == (grpc.StatusCode.INVALID_ARGUMENT, "amount")


def test_unknown_wallet_and_merchant_are_not_found(v: CityStubs, wallet: Any) -> None:
    code, _ = code_of(
        v.wallet.GetBalance,
        wallet_pb2.GetBalanceRequest(wallet_id=str(uuid.uuid4()), purpose="desk enquiry"),
        metadata=v.staff,
    )
    assert code == grpc.StatusCode.NOT_FOUND
    req = wallet_pb2.SpendRequest(
        idempotency_key="s2",
        wallet_id=wallet.wallet_id,
        merchant_id=str(uuid.uuid4()),
        amount=1,
        purchase_ref="p",
    )
    assert code_of(v.wallet.Spend, req, metadata=bearer(wallet.holder_token))[0] == grpc.StatusCode.NOT_FOUND


def test_insufficient_balance_and_reused_key(v: CityStubs, wallet: Any) -> None:
    m = v.merchant.RegisterMerchant(
        merchant_pb2.RegisterMerchantRequest(idempotency_key="m", name="Cafe", category="food", local=True),
        metadata=v.staff,
        timeout=5,
    )
    req = wallet_pb2.SpendRequest(
        idempotency_key="big",
        wallet_id=wallet.wallet_id,
        merchant_id=m.merchant_id,
        amount=99,
        purchase_ref="p",
    )
    code, details = code_of(v.wallet.Spend, req, metadata=bearer(wallet.holder_token))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "available" in details
    other = wallet_pb2.IssueVoucherRequest(idempotency_key="big", wallet_id=wallet.wallet_id, amount=1)
    code, details = code_of(v.wallet.IssueVoucher, other, metadata=bearer(wallet.holder_token))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "idempotency key" in details


def test_a_free_text_merchant_category_is_invalid_and_names_the_field(v: CityStubs) -> None:
    def register(category: str) -> merchant_pb2.RegisterMerchantRequest:
        return merchant_pb2.RegisterMerchantRequest(
            idempotency_key="praxis", name="Praxis", category=category, local=True
        )

    text = "BBNAME Dr Maria Muster psychotherapy"
    code, details = code_of(v.merchant.RegisterMerchant, register(text), metadata=v.staff)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    allowed = "cafe, culture, food, mobility, retail, transport"  # Vienna's city.toml
    assert details == f"category: not one of this city's categories; allowed: {allowed}"
    assert "Muster" not in details
    # Nothing was recorded under the key: the corrected registration goes through.
    m = v.merchant.RegisterMerchant(register("culture"), metadata=v.staff, timeout=5)
    assert m.merchant_id and m.merchant_token


def test_credentials_limit_each_role(v: CityStubs, wallet: Any) -> None:
    m = v.merchant.RegisterMerchant(
        merchant_pb2.RegisterMerchantRequest(idempotency_key="m2", name="Shop", category="food", local=True),
        metadata=v.staff,
        timeout=5,
    )
    credit = wallet_pb2.RecordActivityRequest(
        idempotency_key="a",
        wallet_id=wallet.wallet_id,
        activity="trip",
        fields={"mode": "bike", "distance_m": "100000", "date": "2026-05-03"},
    )
    assert (
        code_of(v.wallet.RecordActivity, credit, metadata=bearer(m.merchant_token))[0]
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        code_of(v.wallet.RecordActivity, credit, metadata=bearer(wallet.holder_token))[0]
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert code_of(v.wallet.RecordActivity, credit)[0] == grpc.StatusCode.UNAUTHENTICATED
    assert (
        code_of(v.wallet.RecordActivity, credit, metadata=bearer("holder.x.y"))[0]
        == grpc.StatusCode.UNAUTHENTICATED
    )
    other = open_wallet(v, "w2")
    mine = wallet_pb2.ListMyEventsRequest(wallet_id=wallet.wallet_id)
    assert (
        code_of(v.wallet.ListMyEvents, mine, metadata=bearer(other.holder_token))[0]
        == grpc.StatusCode.PERMISSION_DENIED
    )
    events = v.wallet.ListMyEvents(mine, metadata=bearer(wallet.holder_token), timeout=5).events
    assert events[0].type == "Wallet.Opened"


def test_garbage_never_yields_internal(fed: LocalFederation, v: CityStubs) -> None:
    sn = fed.files["sint_niklaas"]
    partner: Any = type(v.federation)(fed.channel("vienna", sn.cert, sn.key))
    for token in ("", ".", "a.b", "e30.e30", "x" * 3000, "eyJ2IjoxfQ.AAAA"):
        code, details = code_of(
            partner.Reserve, federation_pb2.ReserveRequest(idempotency_key="k", redemption_token=token)
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT, details
        assert "Traceback" not in details
    code, _ = code_of(
        partner.Commit, federation_pb2.CommitRequest(idempotency_key="k", redemption_id=str(uuid.uuid4()))
    )
    assert code == grpc.StatusCode.NOT_FOUND


def test_missing_setting_is_named(fed: LocalFederation) -> None:
    env = fed.environment("vienna")
    del env["CIVFED_TLS_CA_FILE"]
    with pytest.raises(ConfigError, match="CIVFED_TLS_CA_FILE"):
        load_node_settings(env)
    env = {**fed.environment("vienna"), "CIVFED_PARTNERS": "{not json"}
    with pytest.raises(ConfigError, match="CIVFED_PARTNERS"):
        load_node_settings(env)


def test_federation_input_errors_name_the_field(fed: LocalFederation, v: CityStubs) -> None:
    sn = fed.files["sint_niklaas"]
    partner: Any = type(v.federation)(fed.channel("vienna", sn.cert, sn.key))
    cases = [
        (
            partner.Reserve,
            federation_pb2.ReserveRequest(idempotency_key="k", redemption_token=""),
            "redemption_token",
        ),
        (
            partner.Reserve,
            federation_pb2.ReserveRequest(idempotency_key="k", redemption_token="a.b"),
            "redemption_token",
        ),
        (partner.Reserve, federation_pb2.ReserveRequest(redemption_token="a.b"), "idempotency_key"),
        (
            partner.Commit,
            federation_pb2.CommitRequest(idempotency_key="k", redemption_id="nope"),
            "redemption_id",
        ),
        (
            partner.Cancel,
            federation_pb2.CancelRequest(
                idempotency_key="k", redemption_id=str(uuid.uuid4()), reason="x" * 501
            ),
            "reason",
        ),
    ]
    for call, request, field in cases:
        code, details = code_of(call, request)
        assert (code, details.split(":")[0]) == (grpc.StatusCode.INVALID_ARGUMENT, field), details


def test_reused_key_with_other_parameters_changes_nothing(v: CityStubs, wallet: Any) -> None:
    holder = bearer(wallet.holder_token)

    def state() -> tuple[Any, int]:
        """The holder's balance and how many events their history lists."""
        history = v.wallet.ListMyEvents(
            wallet_pb2.ListMyEventsRequest(wallet_id=wallet.wallet_id), metadata=holder, timeout=5
        )
        balance = v.wallet.GetBalance(
            wallet_pb2.GetBalanceRequest(wallet_id=wallet.wallet_id), metadata=holder, timeout=5
        )
        return balance, len(history.events)

    # Trips come as a source's signed claims: the claim id is the key.
    trip = {"mode": "bike", "distance_m": "300000"}
    first = attest(v, "reuse-1", wallet.wallet_id, "trip", trip)
    assert first.awarded.units == 3
    before = state()
    # The same claim again: the stored result, nothing new.
    assert attest(v, "reuse-1", wallet.wallet_id, "trip", trip) == first
    # The same claim id for another claim: refused, and nothing changes.
    with pytest.raises(grpc.RpcError) as err:
        attest(v, "reuse-1", wallet.wallet_id, "trip", {**trip, "distance_m": "900000"})
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details().startswith("claim_id_reused")
    after = state()
    assert after == before


def test_a_local_voucher_redemption_is_on_the_shops_statement(v: CityStubs) -> None:
    holder_wallet = open_wallet(v, "statement-holder")
    holder = bearer(holder_wallet.holder_token)
    trip = {"mode": "bike", "distance_m": "500000", "date": "2026-05-03"}  # 5 tokens
    attest(v, "statement-trip", holder_wallet.wallet_id, "trip", trip)
    m = v.merchant.RegisterMerchant(
        merchant_pb2.RegisterMerchantRequest(
            idempotency_key="statement-shop", name="Greissler", category="food", local=True
        ),
        metadata=v.staff,
        timeout=5,
    )
    shop = bearer(m.merchant_token)
    ask = merchant_pb2.GetStatementRequest()
    assert list(v.merchant.GetStatement(ask, metadata=shop, timeout=5).lines) == []

    voucher = v.wallet.IssueVoucher(
        wallet_pb2.IssueVoucherRequest(idempotency_key="lv", wallet_id=holder_wallet.wallet_id, amount=3),
        metadata=holder,
        timeout=5,
    )
    taken = v.merchant.AcceptVoucher(
        merchant_pb2.AcceptVoucherRequest(idempotency_key="till-1", local_voucher_id=voucher.voucher_id),
        metadata=shop,
        timeout=5,
    )
    assert taken.credited.units == 3

    statement = v.merchant.GetStatement(ask, metadata=shop, timeout=5)
    assert [(line.kind, line.reference, line.credited.units) for line in statement.lines] == [
        ("voucher", voucher.voucher_id, 3)
    ]
    assert statement.lines[0].credited.currency == statement.total.currency == "Wienertoken"
    assert statement.lines[0].timestamp
    assert statement.total.units == 3
    # The shop's statement names no wallet, and the holder paid exactly what the shop got.
    assert holder_wallet.wallet_id not in str(statement)
    balance = v.wallet.GetBalance(
        wallet_pb2.GetBalanceRequest(wallet_id=holder_wallet.wallet_id), metadata=holder, timeout=5
    )
    assert (balance.balance.units, balance.held.units) == (2, 0)


def test_a_shops_statement_comes_in_pages_and_refuses_a_page_it_did_not_hand_out(v: CityStubs) -> None:
    holder_wallet = open_wallet(v, "paged-holder")
    holder = bearer(holder_wallet.holder_token)
    attest(v, "paged-trip", holder_wallet.wallet_id, "trip", {"mode": "bike", "distance_m": "500000"})
    m = v.merchant.RegisterMerchant(
        merchant_pb2.RegisterMerchantRequest(
            idempotency_key="paged-shop", name="Kiosk", category="food", local=True
        ),
        metadata=v.staff,
        timeout=5,
    )
    shop = bearer(m.merchant_token)
    vouchers = []
    for i in range(5):
        voucher = v.wallet.IssueVoucher(
            wallet_pb2.IssueVoucherRequest(
                idempotency_key=f"pv{i}", wallet_id=holder_wallet.wallet_id, amount=1
            ),
            metadata=holder,
            timeout=5,
        )
        v.merchant.AcceptVoucher(
            merchant_pb2.AcceptVoucherRequest(idempotency_key=f"pt{i}", local_voucher_id=voucher.voucher_id),
            metadata=shop,
            timeout=5,
        )
        vouchers.append(voucher.voucher_id)
    for newest_first, expected in ((False, vouchers), (True, vouchers[::-1])):
        seen, token, pages = [], "", 0
        while True:
            ask = merchant_pb2.GetStatementRequest(page_size=2, page_token=token, newest_first=newest_first)
            page = v.merchant.GetStatement(ask, metadata=shop, timeout=5)
            assert len(page.lines) <= 2 and page.total.units == 5 and page.to_pay_out.units == 5
            seen += [line.reference for line in page.lines]
            pages, token = pages + 1, page.next_page_token
            if not token:
                break
        assert (seen, pages) == (expected, 3)
    # Nothing but its own pages, and no negative page size.
    for bad, field in (
        (merchant_pb2.GetStatementRequest(page_size=-1), "page_size"),
        (merchant_pb2.GetStatementRequest(page_token="f:1; DROP"), "page_token"),
        (merchant_pb2.GetStatementRequest(page_token=token or "b:3", newest_first=False), "page_token"),
    ):
        code, details = code_of(v.merchant.GetStatement, bad, metadata=shop)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and field in details


def test_the_caller_is_checked_before_the_body_except_on_calls_about_one_wallet(
    v: CityStubs, wallet: Any
) -> None:
    holder = bearer(wallet.holder_token)
    # A staff-only call: a holder is refused before the (invalid) body is read.
    bad_open = wallet_pb2.OpenWalletRequest(idempotency_key="", participant_kind="", consent_version="")
    assert code_of(v.wallet.OpenWallet, bad_open, metadata=holder)[0] == grpc.StatusCode.PERMISSION_DENIED
    assert code_of(v.wallet.OpenWallet, bad_open, metadata=v.staff)[0] == grpc.StatusCode.INVALID_ARGUMENT
    # Staff may not spend at all: the policy refuses before the body is read.
    bad_spend = wallet_pb2.SpendRequest(idempotency_key="s", wallet_id="nope", amount=1, purchase_ref="p")
    assert code_of(v.wallet.Spend, bad_spend, metadata=v.staff)[0] == grpc.StatusCode.PERMISSION_DENIED
    # A holder may, for one wallet: which one depends on the body, so it is read first.
    code, details = code_of(v.wallet.Spend, bad_spend, metadata=holder)
    assert (code, details.split(":")[0]) == (grpc.StatusCode.INVALID_ARGUMENT, "wallet_id")
    spend = wallet_pb2.SpendRequest(
        idempotency_key="s",
        wallet_id=wallet.wallet_id,
        merchant_id=str(uuid.uuid4()),
        amount=1,
        purchase_ref="p",
    )
    assert code_of(v.wallet.Spend, spend, metadata=v.staff)[0] == grpc.StatusCode.PERMISSION_DENIED
    assert code_of(v.wallet.Spend, spend)[0] == grpc.StatusCode.UNAUTHENTICATED


def test_a_holders_history_comes_in_pages_that_make_the_whole_of_it(v: CityStubs) -> None:
    opened = open_wallet(v, "paged-history")
    holder = bearer(opened.holder_token)
    for i in range(4):
        attest(v, f"paged-history-{i}", opened.wallet_id, "trip", {"mode": "bike", "distance_m": "30000"})

    def ask(**kw: Any) -> Any:
        req = wallet_pb2.ListMyEventsRequest(wallet_id=opened.wallet_id, **kw)
        return v.wallet.ListMyEvents(req, metadata=holder, timeout=5)

    whole = ask()
    assert whole.next_page_token == ""
    assert {"Keyring.Created", "Wallet.Opened"} <= {e.type for e in whole.events}
    seen: list[tuple[str, int]] = []
    token, pages = "", 0
    while True:
        page = ask(page_size=3, page_token=token)
        assert len(page.events) <= 3
        seen += [(e.aggregate_id, e.version) for e in page.events]
        pages, token = pages + 1, page.next_page_token
        if not token:
            break
    assert seen == [(e.aggregate_id, e.version) for e in whole.events]
    assert pages >= len(whole.events) // 3 >= 2
    for bad, field in (({"page_size": -5}, "page_size"), ({"page_token": "h:x"}, "page_token")):
        code, details = code_of(
            v.wallet.ListMyEvents,
            wallet_pb2.ListMyEventsRequest(wallet_id=opened.wallet_id, **bad),
            metadata=holder,
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and field in details
