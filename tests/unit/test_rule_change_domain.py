"""The rulebook's founding version, proposals, four-eyes approval and versions by date; and
the caps and dates a rule may carry (pure domain, no store)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from aggregates.errors import InvalidInput, ProposalNotOpen, RuleRejected, SelfApproval
from aggregates.limits import cap_refusal, check_limits, dates_refusal
from aggregates.rulebook import CHANGE, PUBLISH, RETIRE, Rule, Rulebook

NOW = dt.datetime(2026, 5, 4, 9, tzinfo=dt.UTC)
POINTS: dict[str, Any] = {"points": {"recycling_drop_off": 10}}


def rule(points: int = 10, conditions: dict[str, Any] | None = None) -> Rule:
    return Rule(
        "eco",
        "fixed_per_action",
        "eco_action",
        0,
        {"points": {"recycling_drop_off": points}},
        conditions or {},
    )


def founded() -> Rulebook:
    book = Rulebook("rome")
    book.found([(rule(), "Roma Capitale", "start")], NOW)
    return book


def test_the_first_rulebook_is_the_founding_version_and_cannot_be_published_over() -> None:
    book = founded()
    assert book.founded_at == NOW.isoformat() and book.get("eco").version == 1
    with pytest.raises(RuleRejected, match="proposed and approved"):
        book.publish(rule(12), "someone", "quietly")
    with pytest.raises(RuleRejected, match="proposed and approved"):
        book.retire("eco", "someone", "quietly")
    with pytest.raises(RuleRejected, match="already founded"):
        book.found([(rule(12), "someone", "again")], NOW)


def test_a_proposal_changes_nothing_until_another_person_approves_it() -> None:
    book = founded()
    book.propose("p1", rule(12), CHANGE, "staff:anna", "more for recycling", dt.date(2026, 5, 10), NOW)
    assert book.get("eco").version == 1
    with pytest.raises(SelfApproval, match="four eyes"):
        book.approve("p1", "staff:anna", "Delibera 7", NOW)
    with pytest.raises(InvalidInput, match="decision_ref"):
        book.approve("p1", "staff:bruno", " ", NOW)
    approved = book.approve("p1", "staff:bruno", "Delibera 7", NOW)
    assert (approved.version, approved.effective_from) == (2, "2026-05-10")
    # Activities are judged by the version in force on their own date.
    assert book.for_activity("eco_action", dt.date(2026, 5, 9)).version == 1
    assert book.for_activity("eco_action", dt.date(2026, 5, 10)).version == 2
    with pytest.raises(ProposalNotOpen):
        book.approve("p1", "staff:carla", "Delibera 8", NOW)


def test_a_rejected_proposal_changes_nothing() -> None:
    book = founded()
    book.propose("p1", rule(12), CHANGE, "staff:anna", "more", None, NOW)
    with pytest.raises(SelfApproval):
        book.reject("p1", "staff:anna", "withdrawn", NOW)
    book.reject("p1", "staff:bruno", "no budget", NOW)
    assert book.proposal("p1").status == "rejected" and book.get("eco").version == 1


def test_an_approval_after_the_effective_date_is_refused() -> None:
    book = founded()
    book.propose("p1", rule(12), CHANGE, "staff:anna", "more", dt.date(2026, 5, 5), NOW)
    with pytest.raises(RuleRejected, match="has passed"):
        book.approve("p1", "staff:bruno", "Delibera 7", NOW + dt.timedelta(days=2))


def test_a_proposal_without_a_date_applies_from_its_approval() -> None:
    book = founded()
    book.propose("p1", rule(12), CHANGE, "staff:anna", "more", None, NOW)
    later = NOW + dt.timedelta(days=6)
    assert book.approve("p1", "staff:bruno", "Delibera 7", later).effective_from == "2026-05-10"


def test_proposals_that_say_nothing_new_or_break_the_rules_are_refused() -> None:
    book = founded()
    with pytest.raises(RuleRejected, match="changes nothing"):
        book.propose("p0", rule(), CHANGE, "staff:anna", "same", None, NOW)
    book.propose("p1", rule(12), CHANGE, "staff:anna", "more", None, NOW)
    with pytest.raises(RuleRejected, match="already proposed"):
        book.propose("p2", rule(12), CHANGE, "staff:carla", "more too", None, NOW)
    with pytest.raises(InvalidInput, match="reason"):
        book.propose("p3", rule(14), CHANGE, "staff:anna", " ", None, NOW)
    with pytest.raises(RuleRejected, match="exists"):
        book.propose("p4", rule(14), PUBLISH, "staff:anna", "new", None, NOW)
    with pytest.raises(RuleRejected, match="protected"):
        book.propose("p5", rule(14, {"nationality": ["IT"]}), CHANGE, "staff:anna", "x", None, NOW)


def test_a_retirement_is_proposed_and_approved_like_any_change() -> None:
    book = founded()
    book.propose("p1", rule(), RETIRE, "operator:rulebook-file", "removed", dt.date(2026, 6, 1), NOW)
    book.approve("p1", "staff:bruno", "Delibera 9", NOW)
    assert book.for_activity("eco_action", dt.date(2026, 5, 31)).version == 1
    with pytest.raises(Exception, match="no active"):
        book.for_activity("eco_action", dt.date(2026, 6, 1))


def test_history_replays_to_the_same_rulebook() -> None:
    book = founded()
    book.propose("p1", rule(12), CHANGE, "staff:anna", "more", None, NOW)
    book.approve("p1", "staff:bruno", "Delibera 7", NOW)
    replayed: Rulebook | None = None
    for e in book.collect_events():
        replayed = e.mutate(replayed)  # type: ignore[attr-defined]
    assert replayed is not None
    assert (replayed.rules, replayed.versions, replayed.proposals) == (
        book.rules,
        book.versions,
        book.proposals,
    )


# -- caps and dates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "problem"),
    [
        ({"per_wallet_per_day": 0}, "positive whole number"),
        ({"per_wallet_per_month": -5}, "positive whole number"),
        ({"per_wallet_per_day": 1.5}, "positive whole number"),
        ({"per_wallet_per_day": 50, "per_wallet_per_month": 20}, "above"),
        ({"valid_from": "2026-06-01", "valid_until": "2026-05-01"}, "before"),
        ({"valid_from": "next week"}, "must be a date"),
    ],
)
def test_malformed_caps_and_dates_are_refused(conditions: dict[str, Any], problem: str) -> None:
    with pytest.raises(RuleRejected, match=problem):
        check_limits("eco", conditions)


def test_caps_count_the_day_and_the_month_and_refuse_the_award_whole() -> None:
    caps = {"per_wallet_per_day": 10, "per_wallet_per_month": 30}
    on = dt.date(2026, 5, 4)
    assert cap_refusal("eco", caps, on, 2, day=8, month=8) is None
    assert cap_refusal("eco", caps, on, 3, day=8, month=8) == (
        "per_wallet_per_day",
        "rule eco caps awards at 10 per wallet per day; 8 already earned on 2026-05-04, "
        "this award of 3 would exceed it",
    )
    limit = cap_refusal("eco", caps, on, 3, day=0, month=28)
    assert limit is not None and limit[0] == "per_wallet_per_month" and "2026-05" in limit[1]
    # An award of nothing passes no cap.
    assert cap_refusal("eco", caps, on, 0, day=10, month=30) is None


def test_dates_are_inclusive() -> None:
    dates = {"valid_from": "2026-05-01", "valid_until": "2026-05-31"}
    assert dates_refusal("eco", dates, dt.date(2026, 5, 1)) is None
    assert dates_refusal("eco", dates, dt.date(2026, 5, 31)) is None
    assert dates_refusal("eco", dates, dt.date(2026, 4, 30)) == (
        "valid_from",
        "rule eco is valid from 2026-05-01; the activity was on 2026-04-30",
    )
    refused = dates_refusal("eco", dates, dt.date(2026, 6, 1))
    assert refused is not None and refused[0] == "valid_until"
