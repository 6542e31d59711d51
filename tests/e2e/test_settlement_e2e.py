"""Settlement netted between two cities whose residents redeem in each other's shops."""

from __future__ import annotations

from typing import Any

from cluster import Cluster
from flows import accept, rome_citizen, shop, vienna_citizen

from civfed.v1 import federation_pb2, federation_pb2_grpc


def settlement(cluster: Cluster, caller: str, callee: str) -> Any:
    """`callee`'s settlement as the partner `caller` sees it, over its node certificate."""
    f = cluster.fed.files[caller]
    stub = federation_pb2_grpc.FederationServiceStub(cluster.fed.channel(callee, f.cert, f.key))
    return stub.GetSettlement(federation_pb2.GetSettlementRequest(), timeout=5)


def as_tuple(p: Any) -> tuple[object, ...]:
    return (
        p.partner_city,
        p.home_currency,
        p.payable_units,
        p.receivable_units,
        p.receivable_value_units,
        p.net_units,
        p.redemptions,
    )


def test_settlement_nets_claims_in_both_directions(cluster: Cluster) -> None:
    v, r, s = cluster.stubs("vienna"), cluster.stubs("rome"), cluster.stubs("sint_niklaas")
    _, forno = shop(r, "Forno")
    _, kaffeehaus = shop(v, "Kaffeehaus")
    _, bakker = shop(s, "Bakker")
    # Vienna tokens at a Rome shop: Rome credits 2 points per Wienertoken.
    ida, jan = vienna_citizen(v, "ida", 500), vienna_citizen(v, "jan", 500)
    assert accept(r, forno, ida.voucher(3, "v1"), "f1").credited.units == 6
    assert accept(r, forno, jan.voucher(4, "v1"), "f2").credited.units == 8
    # Rome points at a Vienna shop: Vienna credits 1 Wienertoken per 2 points, rounded down.
    kim = rome_citizen(r, "kim", 2)
    assert accept(v, kaffeehaus, kim.voucher(9, "v1"), "k1").credited.units == 4
    # Another pair, which Rome must not see in Vienna's answer.
    assert accept(s, bakker, ida.voucher(2, "v2"), "b1").credited.units == 100

    # Vienna owes Rome 7 Wienertoken; Rome owes Vienna 9 points, which Vienna's
    # shop was credited as 4 Wienertoken: on balance Vienna owes Rome 3.
    assert [as_tuple(p) for p in settlement(cluster, "rome", "vienna").positions] == [
        ("rome", "Wienertoken", 7, 9, 4, -3, 3)
    ]
    # Rome's side in points: owes 9, its shop was credited 14 for Vienna's 7 tokens.
    assert [as_tuple(p) for p in settlement(cluster, "vienna", "rome").positions] == [
        ("vienna", "Smart Citizen Wallet points", 9, 7, 14, 5, 3)
    ]
    # Vienna and Sint-Niklaas: one direction only.
    assert [as_tuple(p) for p in settlement(cluster, "sint_niklaas", "vienna").positions] == [
        ("sint_niklaas", "Wienertoken", 2, 0, 0, -2, 1)
    ]
    assert [as_tuple(p) for p in settlement(cluster, "vienna", "sint_niklaas").positions] == [
        ("vienna", "Sengzen", 0, 2, 100, 100, 1)
    ]
    assert (ida.balance().balance.units, jan.balance().balance.units, kim.balance().balance.units) == (
        0,
        1,
        11,
    )
