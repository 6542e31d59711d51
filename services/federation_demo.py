"""Three city nodes on loopback, a few cross-city redemptions, the settlement table."""

from __future__ import annotations

import tempfile
from pathlib import Path

from civfed.v1 import federation_pb2, federation_pb2_grpc, merchant_pb2, wallet_pb2
from services.grpc.auth import bearer
from services.grpc.local_federation import LocalFederation

CITIES = {"vienna": "wien-2026-01", "rome": "roma-2026-03", "sint_niklaas": "sengzen-2026-02"}
# (home, acceptor, tokens): who redeems what where.
SALES = [
    ("vienna", "sint_niklaas", 4),
    ("vienna", "rome", 3),
    ("rome", "sint_niklaas", 6),
    ("rome", "vienna", 8),
]
EARN = {
    "vienna": ("trip", {"mode": "bike", "distance_m": "900000"}),
    "rome": ("eco_action", {"action": "recycling_drop_off"}),
}


def run_federation_demo() -> str:
    with tempfile.TemporaryDirectory(prefix="civfed-nodes-") as folder:
        fed = LocalFederation(Path(folder), list(CITIES))
        try:
            for city in CITIES:
                fed.start_in_process(city)
            stubs = {c: fed.stubs(c) for c in CITIES}
            lines = []
            for n, (home, acceptor, amount) in enumerate(SALES):
                h, a = stubs[home], stubs[acceptor]
                w = h.wallet.OpenWallet(
                    wallet_pb2.OpenWalletRequest(
                        idempotency_key=f"w{n}", participant_kind="resident", consent_version=CITIES[home]
                    ),
                    metadata=h.staff,
                    timeout=5,
                )
                activity, fields = EARN[home]
                for i in range(10):
                    h.wallet.RecordActivity(
                        wallet_pb2.RecordActivityRequest(
                            idempotency_key=f"a{n}.{i}",
                            wallet_id=w.wallet_id,
                            activity=activity,
                            fields={**fields, "date": f"2026-05-{i + 1:02d}"},
                            activity_id=f"demo-{n}-{i}",
                        ),
                        metadata=h.staff,
                        timeout=5,
                    )
                token = h.wallet.IssueRedemptionVoucher(
                    wallet_pb2.IssueRedemptionVoucherRequest(
                        idempotency_key=f"v{n}", wallet_id=w.wallet_id, amount=amount
                    ),
                    metadata=bearer(w.holder_token),
                    timeout=5,
                ).token
                shop = a.merchant.RegisterMerchant(
                    merchant_pb2.RegisterMerchantRequest(
                        idempotency_key=f"s{n}", name=f"Shop {n}", category="food", local=True
                    ),
                    metadata=a.staff,
                    timeout=5,
                )
                out = a.merchant.AcceptVoucher(
                    merchant_pb2.AcceptVoucherRequest(idempotency_key=f"sale{n}", redemption_token=token),
                    metadata=bearer(shop.merchant_token),
                    timeout=10,
                )
                lines.append(
                    f"  {amount} {home} tokens at a {acceptor} shop: credited {out.credited.units} "
                    f"{out.credited.currency} (smallest unit)"
                )
            lines += [
                "",
                "payable: own units redeemed at the partner's shops; receivable: the partner's units",
                "redeemed here; net: what the partner owes on balance, in the city's own units",
                f"{'city':<14}{'partner':<14}{'payable':>9}{'receivable':>12}{'net':>7}{'redemptions':>13}",
            ]
            for city in CITIES:
                for partner in CITIES:
                    if partner == city:
                        continue
                    f = fed.files[partner]
                    stub = federation_pb2_grpc.FederationServiceStub(fed.channel(city, f.cert, f.key))
                    for p in stub.GetSettlement(federation_pb2.GetSettlementRequest(), timeout=5).positions:
                        lines.append(
                            f"{city:<14}{p.partner_city:<14}{p.payable_units:>9}"
                            f"{p.receivable_units:>12}{p.net_units:>7}{p.redemptions:>13}"
                        )
            for s in stubs.values():
                s.close()
            return "\n".join(lines)
        finally:
            fed.stop_all()
