"""The lot a new award opens in a city's currency, if that currency depreciates."""

from __future__ import annotations

import datetime as dt

from aggregates.depreciation import LotTerms, lot_terms
from services.settings.cities import Currency


def new_lot(currency: Currency, now: dt.datetime) -> LotTerms | None:
    """None for a currency without depreciation: its wallets keep no lots at all."""
    if currency.depreciation is None:
        return None
    return lot_terms(now.date(), currency.depreciation.days)
