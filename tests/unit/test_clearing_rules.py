"""Clearing's pure rules: periods, digests, what two cities' lists must agree on, exposure."""

from __future__ import annotations

import datetime as dt
from uuid import uuid4

import pytest

from aggregates.clearing import (
    ClearingStatement,
    Figures,
    Line,
    OverExposure,
    PartnerExposure,
    check_clearable,
    digest,
    first_difference,
    period_end,
    reconcile,
)
from aggregates.errors import InvalidInput, PreconditionFailed

END = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
BEFORE, AFTER = END - dt.timedelta(seconds=1), END + dt.timedelta(seconds=1)


def test_a_period_is_a_month_and_ends_at_the_next_months_start() -> None:
    assert period_end("2026-05") == END
    assert period_end("2026-12") == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    for bad in ("2026-13", "2026-5", "May", "2026-05-01"):
        with pytest.raises(InvalidInput):
            period_end(bad)


def test_a_period_is_cleared_once_over_and_never_before_the_last_cleared() -> None:
    with pytest.raises(PreconditionFailed, match="not over"):
        check_clearable("2026-05", BEFORE, None)
    assert check_clearable("2026-05", END, None) == END
    with pytest.raises(PreconditionFailed, match="already cleared"):
        check_clearable("2026-04", END, "2026-05")


def test_the_statement_id_is_the_pair_and_the_period_in_either_order() -> None:
    one = ClearingStatement.create_id("vienna", "rome", "2026-05")
    assert one == ClearingStatement.create_id("rome", "vienna", "2026-05")
    assert one != ClearingStatement.create_id("rome", "vienna", "2026-06")


def test_the_digest_ignores_order_and_times_but_not_ids_or_amounts() -> None:
    a, b = Line(str(uuid4()), "vienna", 5, BEFORE), Line(str(uuid4()), "rome", 7, BEFORE)
    assert digest([a, b]) == digest([Line(b.redemption_id, "rome", 7, AFTER), a])
    assert digest([a, b]) != digest([a, Line(b.redemption_id, "rome", 8)])
    f = Figures.of("rome", "vienna", "2026-05", [a, b])
    assert (f.owed_by_a, f.owed_by_b, f.redemptions) == (7, 5, 2)
    assert f.payload().startswith(b"civfed-clearing-v1\n")  # never a voucher's payload


def test_the_first_difference_in_id_order() -> None:
    ids = sorted(str(uuid4()) for _ in range(3))
    ours = [Line(ids[0], "vienna", 5), Line(ids[1], "vienna", 6), Line(ids[2], "vienna", 7)]
    assert first_difference(ours, ours) is None
    theirs = [ours[0], Line(ids[1], "vienna", 9)]
    assert first_difference(ours, theirs) == (ids[1], 6, 9)
    assert first_difference(ours[:1], ours) == (ids[1], None, 6)


def test_a_redemption_recorded_just_after_the_end_here_counts_if_the_partner_counts_it() -> None:
    ids = sorted(str(uuid4()) for _ in range(2))
    ours = [Line(ids[0], "vienna", 5, BEFORE), Line(ids[1], "vienna", 6, AFTER)]
    # The partner recorded both before the end: agreed.
    assert reconcile([Line(ids[0], "vienna", 5), Line(ids[1], "vienna", 6)], ours, END) is None
    # Or only the first: agreed too, the second goes to the next period.
    assert reconcile([Line(ids[0], "vienna", 5)], ours, END) is None
    # Not the first, which we recorded before the end: named, with our amount.
    assert reconcile([Line(ids[1], "vienna", 6)], ours, END) == (ids[0], None, 5)
    # One we never recorded, or another amount: named.
    other = str(uuid4())
    assert reconcile([*ours, Line(other, "vienna", 1)], ours, END) == (other, 1, None)
    assert reconcile([Line(ids[0], "vienna", 4)], ours, END) == (ids[0], 4, 5)


def test_the_exposure_limit_counts_what_is_open_and_clearing_frees_it() -> None:
    e = PartnerExposure("sint_niklaas", "vienna")
    e.check_room(30, 30)
    e.use(20)
    with pytest.raises(OverExposure, match="exposure limit reached: vienna would owe sint_niklaas 31"):
        e.check_room(11, 30)
    e.give_back(5)  # a redemption that did not go through
    e.check_room(15, 30)
    e.cleared(100, "2026-05")  # cleared, never below zero
    assert e.open == 0
    e.give_back(3)
    assert e.open == 0
