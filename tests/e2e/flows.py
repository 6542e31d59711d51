"""Steps shared by the end-to-end tests: citizens, shops, vouchers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from civfed.v1 import merchant_pb2, wallet_pb2
from services.grpc.auth import bearer
from services.grpc.client import call_with_retry
from services.grpc.local_federation import CityStubs

CONSENT = {"vienna": "wien-2026-01", "rome": "roma-2026-03", "sint_niklaas": "sengzen-2026-02"}


@dataclass
class Citizen:
    city: CityStubs
    wallet_id: str
    token: str

    @property
    def auth(self) -> Any:
        return bearer(self.token)

    def balance(self) -> Any:
        return self.city.wallet.GetBalance(
            wallet_pb2.GetBalanceRequest(wallet_id=self.wallet_id), metadata=self.auth, timeout=5
        )

    def voucher(self, amount: int, key: str) -> str:
        req = wallet_pb2.IssueRedemptionVoucherRequest(
            idempotency_key=key, wallet_id=self.wallet_id, amount=amount
        )
        return str(self.city.wallet.IssueRedemptionVoucher(req, metadata=self.auth, timeout=5).token)


def vienna_citizen(v: CityStubs, name: str, km_by_bike: int) -> Citizen:
    """A Vienna resident with km_by_bike // 100 tokens (20 kg CO2 per token at 200 g/km)."""
    w = v.wallet.OpenWallet(
        wallet_pb2.OpenWalletRequest(
            idempotency_key=f"open:{name}", participant_kind="resident", consent_version=CONSENT["vienna"]
        ),
        metadata=v.staff,
        timeout=5,
    )
    for i, start in enumerate(range(0, km_by_bike, 1000)):  # at most 1,000 km per trip
        km = min(1000, km_by_bike - start)
        v.wallet.RecordActivity(
            wallet_pb2.RecordActivityRequest(
                idempotency_key=f"trip:{name}:{i}",
                wallet_id=w.wallet_id,
                activity="trip",
                fields={"mode": "bike", "distance_m": str(km * 1000), "date": "2026-05-03"},
            ),
            metadata=v.staff,
            timeout=5,
        )
    return Citizen(v, w.wallet_id, w.holder_token)


def shop(city: CityStubs, name: str) -> tuple[str, Any]:
    m = city.merchant.RegisterMerchant(
        merchant_pb2.RegisterMerchantRequest(
            idempotency_key=f"shop:{name}", name=name, category="food", local=True
        ),
        metadata=city.staff,
        timeout=5,
    )
    return m.merchant_id, bearer(m.merchant_token)


def accept(city: CityStubs, merchant_auth: Any, token: str, key: str) -> Any:
    """A shop's till: a deadline on every call, and a retry with the same key only on UNAVAILABLE."""
    req = merchant_pb2.AcceptVoucherRequest(idempotency_key=key, redemption_token=token)
    return call_with_retry(city.merchant.AcceptVoucher, req, timeout=20, metadata=merchant_auth)


def rome_citizen(r: CityStubs, name: str, drop_offs: int) -> Citizen:
    """A Rome resident with 10 points per recycling drop-off."""
    w = r.wallet.OpenWallet(
        wallet_pb2.OpenWalletRequest(
            idempotency_key=f"open:{name}", participant_kind="resident", consent_version=CONSENT["rome"]
        ),
        metadata=r.staff,
        timeout=5,
    )
    for i in range(drop_offs):
        r.wallet.RecordActivity(
            wallet_pb2.RecordActivityRequest(
                idempotency_key=f"drop:{name}:{i}",
                wallet_id=w.wallet_id,
                activity="eco_action",
                activity_id=f"drop:{name}:{i}",
                fields={"action": "recycling_drop_off", "date": "2026-05-04"},
            ),
            metadata=r.staff,
            timeout=5,
        )
    return Citizen(r, w.wallet_id, w.holder_token)
