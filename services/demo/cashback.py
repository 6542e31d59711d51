"""Sint-Niklaas shoppers over the node's contracts: a local café's till reports each purchase
with its receipt id (CashbackService.ReportPurchase), and its customers earn Sengzen.

Each receipt is sent twice, the second time under another idempotency key, as a till that
lost the answer would: the holder is credited once. One receipt from an out-of-town chain
store earns nothing and is refused with its reason. Run again, every call replays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from civfed.v1 import cashback_pb2, merchant_pb2, wallet_pb2
from services.demo.local_federation import CityStubs
from services.grpc.auth import bearer

CITY, CONSENT = "sint_niklaas", "sengzen-2026-02"
KEY = "federation-demo:cashback"


class Shoppers:
    """`people` residents of Sint-Niklaas who shop at a local café about once a week."""

    def __init__(self, city: CityStubs, people: int, keep: Callable[[str, str], str]) -> None:
        self.city, self.people, self.keep = city, people, keep
        self.wallets: list[str] = []
        self.cafe_id = self.chain_id = ""
        self.cafe_till = self.chain_till = ""
        self.receipts = self.cashback = 0
        self.refused = ""
        self.currency = ""

    def _shop(self, name: str, local: bool, category: str) -> tuple[str, str]:
        key = f"{KEY}:shop:{name}"
        request = merchant_pb2.RegisterMerchantRequest(
            idempotency_key=key, name=name, category=category, local=local
        )
        shop = self.city.merchant.RegisterMerchant(request, metadata=self.city.staff, timeout=5)
        return str(shop.merchant_id), self.keep(key, shop.merchant_token)

    def open(self) -> None:
        self.cafe_id, self.cafe_till = self._shop("Café De Klok", True, "cafe")
        self.chain_id, self.chain_till = self._shop("Out-of-town chain outlet", False, "retail")
        for i in range(self.people):
            request = wallet_pb2.OpenWalletRequest(
                idempotency_key=f"{KEY}:wallet{i}", participant_kind="resident", consent_version=CONSENT
            )
            opened = self.city.wallet.OpenWallet(request, metadata=self.city.staff, timeout=5)
            self.wallets.append(str(opened.wallet_id))

    def _report(self, chain: bool, receipt: str, wallet: str, cents: int, key: str, date: str) -> Any:
        shop, till = (self.chain_id, self.chain_till) if chain else (self.cafe_id, self.cafe_till)
        request = cashback_pb2.ReportPurchaseRequest(
            idempotency_key=key,
            merchant_id=shop,
            receipt_id=receipt,
            wallet_id=wallet,
            amount_cents=cents,
            date=date,
        )
        return self.city.cashback.ReportPurchase(request, metadata=bearer(till), timeout=5)

    def play(self, day: int, date: str, last_day: int) -> None:
        """Shopping on the season's `day`, up to `last_day` (exclusive)."""
        if day >= last_day:
            return
        if day == 0:
            try:
                self._report(True, "C-1", self.wallets[0], 4_000, f"{KEY}:chain", date)
            except grpc.RpcError as exc:
                self.refused = (exc.details() or "").split(":", 1)[0]
        for i, wallet in enumerate(self.wallets):
            if day % 7 != i % 7:
                continue
            receipt, cents = f"{day:02d}-{i:03d}", 1_000 + 500 * (i % 8)
            first = self._report(False, receipt, wallet, cents, f"{KEY}:{receipt}", date)
            again = self._report(False, receipt, wallet, cents, f"{KEY}:{receipt}:resent", date)
            if again != first:
                raise RuntimeError(f"receipt {receipt} resent gave another answer")
            self.receipts += 1
            self.cashback += first.awarded.units
            self.currency = first.awarded.currency

    def summary(self) -> dict[str, Any]:
        return {
            "city": CITY,
            "people": self.people,
            "receipts": self.receipts,
            "cashback": self.cashback,
            "currency": self.currency,
            "refused_chain": self.refused,
        }


def render_cashback(s: dict[str, Any], decimals: int) -> str:
    cashback = f"{s['cashback'] / 10**decimals:,.{decimals}f}"
    return (
        f"  {s['people']} Sint-Niklaas shoppers: {s['receipts']} receipts reported by a local café's till,"
        f" each sent twice, earned {cashback} {s['currency']} once;"
        f" a chain store's receipt earned nothing ({s['refused_chain']})"
    )
