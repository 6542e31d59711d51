"""Cross-city redemption between real node processes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import grpc
import pytest
from cluster import Cluster
from flows import accept, shop, vienna_citizen

from civfed.v1 import federation_pb2, federation_pb2_grpc, merchant_pb2
from services.event_log import event_type, read_events


def events_of(cluster: Cluster, city: str, kind: str) -> list[object]:
    app = cluster.open_app(city)
    try:
        return [e for _, e in read_events(app) if event_type(e) == kind]
    finally:
        app.close()


def test_happy_path_credits_the_shop_burns_at_home_and_settles(cluster: Cluster) -> None:
    v, s = cluster.stubs("vienna"), cluster.stubs("sint_niklaas")
    anna = vienna_citizen(v, "anna", 500)  # 5 tokens
    _, shop_auth = shop(s, "Bakkerij Waasland")
    out = accept(s, shop_auth, anna.voucher(3, "v1"), "sale-1")
    assert (out.credited.units, out.home_city, out.home_amount.units) == (150, "vienna", 3)
    assert (anna.balance().balance.units, anna.balance().held.units) == (2, 0)
    statement = s.merchant.GetStatement(merchant_pb2.GetStatementRequest(), metadata=shop_auth, timeout=5)
    assert statement.total.units == 150
    # Each side sees its own claim: Vienna owes Sint-Niklaas 3 Wienertoken.
    with pytest.raises(grpc.RpcError) as err:  # an ordinary client certificate is no partner city
        v.federation.GetSettlement(federation_pb2.GetSettlementRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    sn = cluster.fed.files["sint_niklaas"]
    as_partner = federation_pb2_grpc.FederationServiceStub(cluster.fed.channel("vienna", sn.cert, sn.key))
    home = as_partner.GetSettlement(federation_pb2.GetSettlementRequest(), timeout=5)
    assert [(p.partner_city, p.payable_units, p.redemptions) for p in home.positions] == [
        ("sint_niklaas", 3, 1)
    ]
    burned = events_of(cluster, "vienna", "Wallet.HoldBurned")
    assert [(e.partner_city, e.hold_id.startswith("redemption:")) for e in burned] == [("sint_niklaas", True)]
    assert len(events_of(cluster, "sint_niklaas", "ForeignRedemption.Committed")) == 1


def test_replayed_forged_and_expired_vouchers_are_refused(cluster: Cluster) -> None:
    v, s, r = cluster.stubs("vienna"), cluster.stubs("sint_niklaas"), cluster.stubs("rome")
    ben = vienna_citizen(v, "ben", 900)
    _, shop1 = shop(s, "Shop one")
    _, shop2 = shop(s, "Shop two")
    _, roman = shop(r, "Forno")
    token = ben.voucher(2, "v1")
    accept(s, shop1, token, "a")
    for auth, city in ((shop2, s), (roman, r)):  # the same voucher at another shop, another city
        with pytest.raises(grpc.RpcError) as err:
            accept(city, auth, token, "replay")
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    body, sig = ben.voucher(2, "v2").split(".")
    forged = body.replace(body[10], "A" if body[10] != "A" else "B", 1) + "." + sig
    with pytest.raises(grpc.RpcError) as err:
        accept(s, shop1, forged, "forged")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        accept(s, shop1, "not-a-voucher", "junk")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ben.balance().balance.units == 7


def test_expired_voucher_is_refused(tmp_path: object, cluster: Cluster) -> None:
    # Restart Vienna with a one-second voucher lifetime.
    cluster.stop("vienna")
    cluster.fed.extra_env["CIVFED_VOUCHER_TTL_SECONDS"] = "1"
    cluster.start("vienna")
    v, s = cluster.stubs("vienna"), cluster.stubs("sint_niklaas")
    cara = vienna_citizen(v, "cara", 300)
    _, shop1 = shop(s, "Shop")
    token = cara.voucher(1, "v1")
    cluster.fed.move_clock(2.1)  # past the voucher's expiry, on every node's clock
    with pytest.raises(grpc.RpcError) as err:
        accept(s, shop1, token, "late")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "expired" in err.value.details()
    assert cara.balance().balance.units == 3


def test_city_without_agreement_is_refused(cluster: Cluster) -> None:
    cluster.start("bologna")
    b, s, v = cluster.stubs("bologna"), cluster.stubs("sint_niklaas"), cluster.stubs("vienna")
    # Bologna's own shops take no partner's tokens.
    _, bolo_shop = shop(b, "Bottega")
    dan = vienna_citizen(v, "dan", 400)
    with pytest.raises(grpc.RpcError) as err:
        accept(b, bolo_shop, dan.voucher(1, "v1"), "x")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "does not accept" in err.value.details()
    # Nor does Vienna let Bologna's shops redeem its tokens: the home city refuses too,
    # even when asked directly with Bologna's own node certificate.
    bo = cluster.fed.files["bologna"]
    as_bologna = federation_pb2_grpc.FederationServiceStub(cluster.fed.channel("vienna", bo.cert, bo.key))
    with pytest.raises(grpc.RpcError) as err:
        as_bologna.Reserve(
            federation_pb2.ReserveRequest(idempotency_key="r", redemption_token=dan.voucher(1, "v2")),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no redemption agreement" in err.value.details()
    assert dan.balance().held.units == 0
    # Over the per-redemption cap of Sint-Niklaas for Vienna tokens (100).
    rich = vienna_citizen(v, "rich", 16_000)
    _, shop1 = shop(s, "Shop")
    with pytest.raises(grpc.RpcError) as err:
        accept(s, shop1, rich.voucher(150, "big"), "big")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "cap" in err.value.details()
    assert dan.balance().balance.units == 4 and rich.balance().balance.units == 160


def never_overdrawn(cluster: Cluster, city: str, wallet_id: str) -> int:
    """Replay one wallet's events: holds never exceed the balance at any point; returns the most held."""
    app = cluster.open_app(city)
    balance, holds, most = 0, {}, 0
    try:
        for e in app.repository.event_store.get(UUID(wallet_id)):
            kind = event_type(e)
            if kind == "Wallet.Credited":
                balance += e.amount  # type: ignore[attr-defined]
            elif kind == "Wallet.HoldPlaced":
                holds[e.hold_id] = e.amount  # type: ignore[attr-defined]
            elif kind == "Wallet.HoldReleased":
                holds.pop(e.hold_id)  # type: ignore[attr-defined]
            elif kind == "Wallet.HoldBurned":
                balance -= holds.pop(e.hold_id)  # type: ignore[attr-defined]
            assert 0 <= sum(holds.values()) <= balance, (kind, balance, holds)
            most = max(most, sum(holds.values()))
    finally:
        app.close()
    return most


def test_fifty_concurrent_redemptions_spend_exactly_the_balance(cluster: Cluster) -> None:
    v, s = cluster.stubs("vienna"), cluster.stubs("sint_niklaas")
    eve = vienna_citizen(v, "eve", 1000)  # 10 tokens
    _, shop1 = shop(s, "Shop")
    tokens = [eve.voucher(1, f"v{i}") for i in range(50)]  # vouchers hold nothing until reserved
    refusals: list[tuple[grpc.StatusCode, str]] = []

    def attempt(i: int) -> bool:
        try:
            accept(s, shop1, tokens[i], f"sale-{i}")
            return True
        except grpc.RpcError as exc:
            refusals.append((exc.code(), exc.details()))
            return False

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(attempt, range(50)))
    # The balance allows exactly ten sales; the other forty are clean refusals.
    assert sum(outcomes) == 10, refusals
    assert {code for code, _ in refusals} == {grpc.StatusCode.FAILED_PRECONDITION}, refusals
    assert {d for _, d in refusals} == {"redemption refused: the home city did not accept it"}
    assert (eve.balance().balance.units, eve.balance().held.units) == (0, 0)
    assert len(events_of(cluster, "vienna", "Wallet.HoldBurned")) == 10
    assert len(events_of(cluster, "vienna", "Redemption.Committed")) == 10
    assert len(events_of(cluster, "sint_niklaas", "ForeignRedemption.Committed")) == 10
    assert len(events_of(cluster, "sint_niklaas", "ForeignRedemption.Refused")) == 40
    # Nothing was reserved and then given back: no hold lapsed, no credit was reversed.
    assert events_of(cluster, "vienna", "Redemption.Expired") == []
    assert events_of(cluster, "sint_niklaas", "ForeignRedemption.CreditReversed") == []
    assert never_overdrawn(cluster, "vienna", eve.wallet_id) <= 10
    statement = s.merchant.GetStatement(merchant_pb2.GetStatementRequest(), metadata=shop1, timeout=5)
    assert statement.total.units == 10 * 50  # 50 hundredths of a Sengzen per Wienertoken
