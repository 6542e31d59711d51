"""Which stored events end a cross-city redemption, and how (services/federation/outcomes.py)."""

from __future__ import annotations

import datetime as dt
from uuid import uuid4

from aggregates.redemption import ForeignRedemption, Redemption
from services.federation.outcomes import count_outcomes, saga_outcomes

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def reserved() -> Redemption:
    r = Redemption("vienna", uuid4(), uuid4(), 3, NOW + dt.timedelta(minutes=15))
    r.reserve("sint_niklaas", "redemption:h1", NOW + dt.timedelta(minutes=2))
    return r


def started() -> ForeignRedemption:
    return ForeignRedemption("sint_niklaas", "vienna", uuid4(), uuid4(), 3, 150, 50, 1, "2026-12-01")


def test_each_end_of_a_saga_is_one_outcome_and_nothing_else_counts() -> None:
    committed, cancelled, lapsed = reserved(), reserved(), reserved()
    committed.commit("sint_niklaas", 3)
    cancelled.cancel("sale abandoned")
    lapsed.expire()
    refused = started()
    refused.refused("voucher expired")
    credited, reversed_ = started(), started()
    for saga in (credited, reversed_):
        saga.reserved(uuid4())
        saga.credit_merchant(saga.merchant_id, saga.credit)
    credited.committed("vienna", 3, 150)
    reversed_.reverse(reversed_.merchant_id, 150, "the home city did not commit in time")
    found: list[tuple[str, str]] = []
    listener = count_outcomes(lambda side, outcome: found.append((side, outcome)))
    for aggregate in (committed, cancelled, lapsed, refused, credited, reversed_):
        listener(aggregate.collect_events())
    assert found == [
        ("home", "committed"),
        ("home", "cancelled"),
        ("home", "lapsed"),
        ("acceptor", "refused"),
        ("acceptor", "committed"),
        ("acceptor", "lapsed"),
    ]


def test_events_that_end_no_saga_count_nothing() -> None:
    home = reserved()
    foreign = started()
    foreign.reserved(uuid4())
    foreign.credit_merchant(foreign.merchant_id, foreign.credit)
    assert saga_outcomes([*home.collect_events(), *foreign.collect_events()]) == []
