"""Businesses that accept a city's tokens, and the prizes they put up."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from aggregates.errors import InvalidInput, MerchantNotAccepted, OutOfStock


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
