"""What a holder is shown as their balance: today's value, what is held, and for a
depreciating currency the published schedule of the coming depreciation."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aggregates.wallet import Wallet
from services.workflow import published_balance


@dataclass(frozen=True)
class ScheduledValue:
    """The wallet's value on a coming day if nothing is spent, and the depreciation since the step before."""

    on: str
    value: int
    depreciation: int


@dataclass(frozen=True)
class BalanceView:
    balance: int  # today's value: in a depreciating currency, less than the recorded balance
    available: int  # today's value less what is held
    held: int
    rounding: str = ""  # how the schedule is rounded; empty without a schedule
    schedule: tuple[ScheduledValue, ...] = ()
    expires_on: str = ""  # a wallet with a validity end (a tourist's): when it expires
    final_spend_until: str = ""  # and when what is left lapses (ISO date-times)


def balance_view(wallet: Wallet, today: dt.date, depreciating: bool) -> BalanceView:
    """`wallet` as its holder sees it on `today`; `depreciating`: the city publishes a schedule."""
    value = wallet.value_on(today)
    ends = wallet.spend_until
    expires_on = wallet.valid_until.isoformat() if wallet.valid_until else ""
    until = ends.isoformat() if ends is not None and not wallet.closed else ""
    if not (depreciating and wallet.lots):
        return BalanceView(
            value, value - wallet.held, wallet.held, expires_on=expires_on, final_spend_until=until
        )
    published = published_balance(wallet, today)  # the wallet and day already read
    return BalanceView(
        value,
        value - wallet.held,
        wallet.held,
        published["rounding"],
        tuple(ScheduledValue(s["on"], s["value"], s["depreciation"]) for s in published["schedule"]),
        expires_on=expires_on,
        final_spend_until=until,
    )
