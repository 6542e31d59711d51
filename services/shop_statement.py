"""A shop's statement, one page at a time.

A busy shop's stream grows by one event a sale for as long as it trades, so a statement
reads one page of it (from the oldest or from the newest) and takes its totals from the
shop's running figures, which a snapshot keeps: what a call costs is the page's size, not
the shop's history.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from aggregates.errors import InvalidInput
from aggregates.merchant import Merchant


@dataclass(frozen=True)
class StatementLine:
    kind: str  # one of PAYMENT_KINDS, or "reversal"
    reference: str
    amount: int
    at: dt.datetime


@dataclass(frozen=True)
class PayoutEntry:
    """A payout on a shop's statement."""

    run_id: str
    period: str
    tokens: int
    euro_cents: int
    at: dt.datetime


@dataclass(frozen=True)
class StatementPage:
    lines: list[StatementLine]
    payouts: list[PayoutEntry]
    # Over the shop's whole history, whatever the page: received = paid_out + to_pay_out.
    received: int
    paid_out: int
    to_pay_out: int
    # Where the next page starts, or "" when this one reached the end.
    next_page_token: str


def _cursor(token: str, newest_first: bool) -> int | None:
    """The version a page continues from, or None for the first page."""
    if not token:
        return None
    direction, _, version = token.partition(":")
    if direction != ("b" if newest_first else "f") or not version.isdigit() or len(version) > 18:
        raise InvalidInput("page_token", "not a token this statement handed out, in this order")
    return int(version)


def entry(e: Any) -> StatementLine | PayoutEntry | None:
    """What an event of the shop's stream puts on its statement, if anything."""
    if isinstance(e, Merchant.Paid):
        return StatementLine(e.kind, e.reference, e.amount, e.timestamp)
    if isinstance(e, Merchant.PaymentReversed):
        return StatementLine("reversal", e.reference, -e.amount, e.timestamp)
    if isinstance(e, Merchant.PaidOut):
        return PayoutEntry(str(e.run_id), e.period, e.amount, e.euro_cents, e.timestamp)
    return None


def statement_page(
    shop: Merchant, events: Any, size: int, token: str = "", newest_first: bool = False
) -> StatementPage:
    """One page of `shop`'s statement: up to `size` lines and payouts, read from `events`
    (the event store) in chunks, so a page costs about its own size."""
    cursor = _cursor(token, newest_first)
    lines: list[StatementLine] = []
    payouts: list[PayoutEntry] = []
    last, more = cursor, True
    while more and len(lines) + len(payouts) < size:
        chunk_size = size - len(lines) - len(payouts)
        if newest_first:
            top = shop.version if last is None else last - 1
            if top < 1:
                more = False
                break
            chunk = list(events.get(shop.id, lte=top, desc=True, limit=chunk_size))
        else:
            chunk = list(events.get(shop.id, gt=last or 0, lte=shop.version, limit=chunk_size))
        more = len(chunk) == chunk_size
        for e in chunk:
            last = e.originator_version
            found = entry(e)
            if isinstance(found, StatementLine):
                lines.append(found)
            elif isinstance(found, PayoutEntry):
                payouts.append(found)
    at_end = (
        not more
        or (newest_first and last is not None and last <= 1)
        or (not newest_first and last is not None and last >= shop.version)
    )
    next_token = "" if at_end or last is None else f"{'b' if newest_first else 'f'}:{last}"
    return StatementPage(
        lines=lines,
        payouts=payouts,
        received=shop.received,
        paid_out=shop.paid_out_total,
        to_pay_out=shop.to_pay_out,
        next_page_token=next_token,
    )
