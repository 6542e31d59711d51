"""Single-use claim codes, shown to a merchant as a QR code."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from aggregates.errors import VoucherAlreadyRedeemed, VoucherExpired


class Voucher(Aggregate):
    """Backed by a hold on the wallet, so the tokens cannot be spent twice.

    The id is random (122 bits) and is what the QR code carries.
    """

    @event("Issued")
    def __init__(
        self, city: str, wallet_id: UUID, hold_id: str, amount: int, expires_at: dt.datetime
    ) -> None:
        self.city = city
        self.wallet_id = wallet_id
        self.hold_id = hold_id
        self.amount = amount
        self.expires_at = expires_at
        self.redeemed_by: UUID | None = None

    @property
    def qr_payload(self) -> str:
        return f"civfed:{self.city}:voucher:{self.id}"

    def check_redeemable(self, now: dt.datetime) -> None:
        if self.redeemed_by is not None:
            raise VoucherAlreadyRedeemed("voucher was already redeemed")
        if now >= self.expires_at:
            raise VoucherExpired(f"voucher expired at {self.expires_at.isoformat()}")

    @event("Redeemed")
    def redeem(self, merchant_id: UUID) -> None:
        self.redeemed_by = merchant_id
