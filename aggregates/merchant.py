"""Businesses that accept a city's tokens, and the prizes they put up."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from aggregates.errors import InvalidInput, MerchantNotAccepted, OutOfStock

# What a shop is paid for: a holder's direct payment, a local voucher, a prize it put
# up, or a partner city's voucher (credited at the agreed rate).
PAYMENT_KINDS = ("payment", "voucher", "prize", "redemption")


class Merchant(Aggregate):
    @event("Registered")
    def __init__(self, city: str, name: str, category: str, local: bool, basic_economy: bool) -> None:
        self.city = city
        self.name = name
        self.category = category
        self.local = local
        self.basic_economy = basic_economy

    @classmethod
    def admit(
        cls,
        city: str,
        name: str,
        category: str,
        local: bool,
        basic_economy: bool,
        categories: Mapping[str, str],
    ) -> Merchant:
        """A merchant in one of the city's declared categories (code -> display name).

        The category is published on the public stream, so it must be one of the
        city's codes, never free text; the refusal does not repeat what was given.
        """
        if category not in categories:
            allowed = ", ".join(sorted(categories))
            if not allowed:
                raise InvalidInput("category", "this city declares no merchant categories")
            raise InvalidInput("category", f"not one of this city's categories; allowed: {allowed}")
        return cls(city, name, category, local, basic_economy)

    # -- what the shop was paid: its statement, with no wallet in it ----------
    class Paid(Aggregate.Event):
        """Tokens received. `kind` is one of PAYMENT_KINDS; `reference` is one the shop
        itself was shown (a voucher, a prize, a redemption), never the holder's."""

        amount: int
        kind: str
        reference: str

    class PaymentReversed(Aggregate.Event):
        """A credit taken back because the sale behind it did not complete."""

        amount: int
        kind: str
        reference: str

    def paid(self, amount: int, kind: str, reference: str = "") -> None:
        self.trigger_event(self.Paid, amount=amount, kind=kind, reference=reference)

    def payment_reversed(self, amount: int, kind: str, reference: str = "") -> None:
        self.trigger_event(self.PaymentReversed, amount=amount, kind=kind, reference=reference)

    def check_accepts(self, local_only: bool, basic_economy_only: bool = False) -> None:
        if local_only and not self.local:
            raise MerchantNotAccepted(f"{self.name} is not a local shop; this currency is spent only locally")
        if basic_economy_only and not self.basic_economy:
            raise MerchantNotAccepted(
                f"{self.name} is not in the basic economy; this currency is spent only there"
            )


class Prize(Aggregate):
    """A partner business's prize, claimable once a holder has enough points."""

    @event("Offered")
    def __init__(self, city: str, merchant_id: UUID, name: str, cost: int, stock: int) -> None:
        self.city = city
        self.merchant_id = merchant_id
        self.name = name
        self.cost = cost
        self.stock = stock

    @classmethod
    def offer(cls, city: str, merchant_id: UUID, name: str, cost: int, stock: int) -> Prize:
        if type(cost) is not int or cost <= 0:
            raise InvalidInput("cost", "must be a positive whole number")
        if type(stock) is not int or stock <= 0:
            raise InvalidInput("stock", "must be a positive whole number")
        return cls(city, merchant_id, name, cost, stock)

    def check_in_stock(self) -> None:
        if self.stock <= 0:
            raise OutOfStock(f"prize {self.name!r} is out of stock")

    @event("Claimed")
    def claim(self, wallet_id: UUID) -> None:
        self.stock -= 1
