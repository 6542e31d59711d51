"""Per-city totals: wallets, tokens issued, spent, burned and outstanding, CO2 saved.

In a depreciating currency, `depreciated` is the depreciation wallets have
recorded so far and `tax_paid` what went to the treasury; both leave the
outstanding balance like spending does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from services.event_log import event_type, read_events


@dataclass
class CityTotals:
    city: str
    wallets: int = 0
    closed_wallets: int = 0
    issued: int = 0
    spent: int = 0
    burned: int = 0
    depreciated: int = 0
    tax_paid: int = 0
    lapsed: int = 0
    held: int = 0
    quantity: int = 0
    vouchers_redeemed: int = 0
    prizes_claimed: int = 0
    per_wallet_quantity: dict[str, int] = field(default_factory=dict)
    per_wallet_issued: dict[str, int] = field(default_factory=dict)

    @property
    def outstanding(self) -> int:
        return self.issued - self.spent - self.burned - self.lapsed - self.depreciated - self.tax_paid

    def apply(self, kind: str, e: Any) -> None:
        wallet = str(e.originator_id)
        if kind == "Wallet.Opened":
            self.wallets += 1
        elif kind == "Wallet.Closed":
            self.closed_wallets += 1
        elif kind in ("Wallet.Credited", "Wallet.Progressed"):
            amount = getattr(e, "amount", 0)
            self.issued += amount
            self.per_wallet_issued[wallet] = self.per_wallet_issued.get(wallet, 0) + amount
            if e.quantity is not None:
                self.quantity += e.quantity
                self.per_wallet_quantity[wallet] = self.per_wallet_quantity.get(wallet, 0) + e.quantity
        elif kind == "Wallet.Spent":
            self.spent += e.amount
        elif kind == "Wallet.Depreciated":
            self.depreciated += e.amount
        elif kind == "Wallet.TaxPaid":
            self.tax_paid += e.amount
        elif kind == "Wallet.HoldPlaced":
            self.held += e.amount
        elif kind == "Wallet.HoldReleased":
            self.held -= self._hold_amounts.pop(e.hold_id)
        elif kind == "Wallet.HoldSpent":
            amount = self._hold_amounts.pop(e.hold_id)
            self.held -= amount
            self.spent += amount
        elif kind == "Wallet.HoldBurned":
            # Redeemed at a partner city's shop: gone from this ledger, owed in settlement.
            amount = self._hold_amounts.pop(e.hold_id)
            self.held -= amount
            self.burned += amount
        elif kind == "Wallet.Lapsed":
            # A closed wallet's remainder, left unspent after the final spend window.
            self.lapsed += e.amount
        elif kind == "Voucher.Redeemed":
            self.vouchers_redeemed += 1
        elif kind in ("Prize.Claimed", "PrizeClaim.HandedOver"):
            self.prizes_claimed += 1
        if kind == "Wallet.HoldPlaced":
            self._hold_amounts[e.hold_id] = e.amount

    def __post_init__(self) -> None:
        self._hold_amounts: dict[str, int] = {}

    def summary(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if not k.startswith("per_wallet")}
        out["outstanding"] = self.outstanding
        return out


def city_totals(app: Application[UUID], city: str) -> CityTotals:
    totals = CityTotals(city)
    for _, event in read_events(app):
        totals.apply(event_type(event), event)
    return totals
