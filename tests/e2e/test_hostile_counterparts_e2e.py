"""A shop or holder trying to get paid twice, or for nothing, against real node processes."""

from __future__ import annotations

import grpc
import pytest
from cluster import Cluster
from flows import accept, rome_citizen, shop, vienna_citizen

from civfed.v1 import merchant_pb2, wallet_pb2


def count(cluster: Cluster, city: str, kind: str) -> int:
    return len(cluster.events(city, kind))


def refused(call: object, *args: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call(*args)  # type: ignore[operator]
    return err.value


def test_a_voucher_pays_exactly_once_at_one_shop_or_two(cluster: Cluster) -> None:
    v, s = cluster.stubs("vienna"), cluster.stubs("sint_niklaas")
    ana = vienna_citizen(v, "ana", 500)  # 5 tokens
    _, bakery = shop(s, "Bakkerij")
    _, cafe = shop(s, "Cafe")
    token = ana.voucher(2, "v1")
    first = accept(s, bakery, token, "sale-1")
    assert (first.credited.units, first.home_amount.units) == (100, 2)
    # The till retrying the same sale with its own key gets the stored answer, not a second credit.
    again = accept(s, bakery, token, "sale-1")
    assert (again.credited.units, again.redemption_id) == (100, first.redemption_id)
    # A new sale at the same shop, or at another, with the same voucher is refused, with a reason.
    for auth, key in ((bakery, "sale-2"), (cafe, "sale-3"), (bakery, "sale-4")):
        err = refused(accept, s, auth, token, key)
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "already presented" in err.details()
    statements = [
        s.merchant.GetStatement(merchant_pb2.GetStatementRequest(), metadata=auth, timeout=5).total.units
        for auth in (bakery, cafe)
    ]
    assert statements == [100, 0]
    assert (ana.balance().balance.units, ana.balance().held.units) == (3, 0)
    assert count(cluster, "vienna", "Wallet.HoldBurned") == 1
    assert count(cluster, "sint_niklaas", "ForeignRedemption.MerchantCredited") == 1


def test_a_credit_that_rounds_to_nothing_is_refused_before_anything_is_held(cluster: Cluster) -> None:
    r, v = cluster.stubs("rome"), cluster.stubs("vienna")
    gio = rome_citizen(r, "gio", 1)  # 10 points
    _, ticket_office = shop(v, "Ticket office")
    # Vienna takes Rome points at 1/2, rounded down: one point buys nothing there.
    one = gio.voucher(1, "one")
    err = refused(accept, v, ticket_office, one, "sale-1")
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "worth nothing" in err.details() and "least that buys anything there is 2" in err.details()
    assert (gio.balance().balance.units, gio.balance().held.units) == (10, 0)
    assert count(cluster, "rome", "Wallet.HoldPlaced") == 0
    assert count(cluster, "vienna", "ForeignRedemption.Started") == 0
    # Two points buy one Wienertoken, and the home amount is in Rome's currency, not its key.
    two = accept(v, ticket_office, gio.voucher(2, "two"), "sale-2")
    assert (two.credited.units, two.credited.currency) == (1, "Wienertoken")
    assert two.home_amount.units == 2 and two.home_amount.currency not in ("", "rome")


def test_the_issuer_refuses_a_voucher_that_buys_nothing_where_it_is_meant_for(cluster: Cluster) -> None:
    r = cluster.stubs("rome")
    lia = rome_citizen(r, "lia", 30)  # 300 points

    def issue(amount: int, at: str, key: str) -> wallet_pb2.IssueRedemptionVoucherResponse:
        req = wallet_pb2.IssueRedemptionVoucherRequest(
            idempotency_key=key, wallet_id=lia.wallet_id, amount=amount, redeem_at=at
        )
        return r.wallet.IssueRedemptionVoucher(req, metadata=lia.auth, timeout=10)

    err = refused(issue, 1, "vienna", "k1")
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "worth nothing at vienna" in err.details()
    err = refused(issue, 250, "sint_niklaas", "k2")  # above Sint-Niklaas's cap of 200 for Rome
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "cap" in err.details()
    err = refused(issue, 2, "bologna", "k3")  # no agreement at all
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "agreement" in err.details()
    assert issue(2, "vienna", "k4").token and issue(1, "sint_niklaas", "k5").token
    assert count(cluster, "rome", "Redemption.Issued") == 2
    assert lia.balance().held.units == 0


def test_closing_with_every_token_on_a_voucher_keeps_them_spendable(cluster: Cluster) -> None:
    v = cluster.stubs("vienna")
    eva = vienna_citizen(v, "eva", 300)  # 3 tokens
    _, home_shop = shop(v, "Naschmarkt")
    voucher = v.wallet.IssueVoucher(
        wallet_pb2.IssueVoucherRequest(idempotency_key="lv", wallet_id=eva.wallet_id, amount=3),
        metadata=eva.auth,
        timeout=5,
    )
    closing = v.wallet.CloseWallet(
        wallet_pb2.CloseWalletRequest(idempotency_key="bye", wallet_id=eva.wallet_id, reason="moving"),
        metadata=eva.auth,
        timeout=5,
    )
    assert (closing.closed, closing.balance.units) == (False, 3) and closing.final_spend_until
    assert count(cluster, "vienna", "Wallet.Lapsed") == 0
    taken = v.merchant.AcceptVoucher(
        merchant_pb2.AcceptVoucherRequest(idempotency_key="till-1", local_voucher_id=voucher.voucher_id),
        metadata=home_shop,
        timeout=5,
    )
    assert taken.credited.units == 3
    assert (eva.balance().balance.units, eva.balance().held.units) == (0, 0)
