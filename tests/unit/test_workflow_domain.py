"""The work catalogue, tasks, work logs with four eyes, and the per-approved-time rule."""

from __future__ import annotations

import datetime as dt
from uuid import uuid4

import pytest

from aggregates import rules
from aggregates.errors import AssessmentPaid, InvalidInput, NotFound, RuleRejected, SelfApproval, WorkNotOpen
from aggregates.rulebook import Rule, Rulebook, check_rule
from aggregates.treasury import Treasury
from aggregates.workflow import Task, WorkCatalogue, WorkLog

T0 = dt.datetime(2026, 9, 5, 9, 0, tzinfo=dt.UTC)


def test_catalogue_publish_change_retire_each_record_the_decision() -> None:
    cat = WorkCatalogue("zwolle")
    assert cat.publish("litter-picking", "Zwerfafval rapen", "civic", "Raadsbesluit 2026-041")
    assert not cat.publish("litter-picking", "Zwerfafval rapen", "civic", "Raadsbesluit 2026-041")
    assert cat.publish("litter-picking", "Zwerfafval rapen en melden", "civic", "Raadsbesluit 2026-077")
    cat.retire("litter-picking", "Raadsbesluit 2027-003")
    events = cat.collect_events()
    assert [type(e).__name__ for e in events] == [
        "Created",
        "CategoryPublished",
        "CategoryChanged",
        "CategoryRetired",
    ]
    assert [getattr(e, "decision_ref", None) for e in events[1:]] == [
        "Raadsbesluit 2026-041",
        "Raadsbesluit 2026-077",
        "Raadsbesluit 2027-003",
    ]
    assert cat.get("litter-picking").version == 2
    with pytest.raises(WorkNotOpen, match="retired"):
        cat.check_open("litter-picking")
    with pytest.raises(NotFound):
        cat.check_open("astrology")


def test_catalogue_refuses_unknown_sectors_and_missing_decisions() -> None:
    cat = WorkCatalogue("zwolle")
    with pytest.raises(InvalidInput, match="sector"):
        cat.publish("x-ray", "Nope", "entertainment", "Raadsbesluit 1")
    with pytest.raises(InvalidInput, match="decision_ref"):
        cat.publish("care-visits", "Bezoek", "care", " ")


def task(slots: int = 2) -> Task:
    return Task.post(
        "zwolle", "litter-picking", "Park de Wezenlanden", T0, T0 + dt.timedelta(hours=3), slots, "coord:anna"
    )


def test_tasks_have_slots_and_a_window() -> None:
    t = task(slots=1)
    first, second = uuid4(), uuid4()
    t.claim(first, T0 - dt.timedelta(days=1))
    with pytest.raises(WorkNotOpen, match="already claimed"):
        t.claim(first, T0)
    with pytest.raises(WorkNotOpen, match="no free slot"):
        t.claim(second, T0)
    t.check_loggable(first, 180, T0 + dt.timedelta(hours=3))
    with pytest.raises(InvalidInput, match="minutes"):
        t.check_loggable(first, 181, T0 + dt.timedelta(hours=3))
    with pytest.raises(WorkNotOpen, match="not claimed"):
        t.check_loggable(second, 60, T0 + dt.timedelta(hours=3))
    with pytest.raises(WorkNotOpen, match="ended"):
        task().claim(second, T0 + dt.timedelta(hours=3))
    with pytest.raises(InvalidInput, match="ends_at"):
        Task.post("zwolle", "litter-picking", "Park", T0, T0, 1, "coord:anna")
    with pytest.raises(InvalidInput, match="slots"):
        Task.post("zwolle", "litter-picking", "Park", T0, T0 + dt.timedelta(hours=1), 0, "coord:anna")


def work_log(logged_by: str | None = None) -> WorkLog:
    wallet = uuid4()
    return WorkLog("zwolle", uuid4(), wallet, "litter-picking", 90, "2026-09-05", logged_by or str(wallet))


def test_self_approval_is_rejected() -> None:
    log = work_log()
    with pytest.raises(SelfApproval, match="four eyes"):
        log.approve(str(log.wallet_id), 150)
    with pytest.raises(SelfApproval):
        log.reject(str(log.wallet_id), "I changed my mind")
    assert log.status == "logged"
    log.approve("coord:anna", 150)
    assert log.status == "approved"


def test_whoever_logged_on_someones_behalf_cannot_approve_either() -> None:
    log = work_log(logged_by="coord:bert")
    with pytest.raises(SelfApproval):
        log.approve("coord:bert", 150)
    log.approve("coord:anna", 150)


def test_rejection_needs_a_reason_and_is_final_until_appealed() -> None:
    log = work_log()
    with pytest.raises(InvalidInput, match="reason"):
        log.reject("coord:anna", "")
    log.reject("coord:anna", "the task was cancelled because of the storm")
    with pytest.raises(WorkNotOpen, match="rejected"):
        log.approve("coord:anna", 150)
    appeal = uuid4()
    log.reinstate(appeal, 150)
    assert log.status == "approved"
    with pytest.raises(WorkNotOpen):
        log.reinstate(appeal, 150)


@pytest.mark.parametrize(
    ("minutes", "amount"),
    [(60, 100), (90, 150), (7, 11), (1, 1), (45, 75), (600, 1000)],
)
def test_one_token_per_hour_pro_rata_in_minutes_rounded_down(minutes: int, amount: int) -> None:
    work = rules.ApprovedTimeInput(date=dt.date(2026, 9, 5), minutes=minutes, category="food-bank")
    award = rules.per_approved_time({"units_per_hour": 100, "four_eyes": True}, work)
    assert award.amount == amount
    assert "approved food-bank work" in award.explanation
    assert award.quantity is None  # minutes stay in the log, never in published figures


def test_the_time_rule_must_require_four_eyes() -> None:
    with pytest.raises(RuleRejected, match="four_eyes"):
        check_rule("hours", rules.PER_APPROVED_TIME, {"units_per_hour": 100}, {})
    with pytest.raises(RuleRejected, match="units_per_hour"):
        check_rule("hours", rules.PER_APPROVED_TIME, {"units_per_hour": 0, "four_eyes": True}, {})
    book = Rulebook("zwolle")
    book.publish(
        Rule(
            "hours", rules.PER_APPROVED_TIME, "approved_work", 0, {"units_per_hour": 100, "four_eyes": True}
        ),
        "Gemeente Zwolle",
        "1 token per hour",
    )
    assert book.for_activity("approved_work").kind == rules.PER_APPROVED_TIME


REF = r"AANSLAG-[0-9]{4}-[0-9]{1,8}"


def test_treasury_records_tax_against_assessments() -> None:
    treasury, payer = Treasury("zwolle"), uuid4()
    treasury.receive(5_000, "AANSLAG-2027-001", payer, REF, instalments=True)
    treasury.receive(1_000, "AANSLAG-2027-001", payer, REF, instalments=True)
    treasury.receive(250, "AANSLAG-2027-002", uuid4(), REF, instalments=True)
    assert treasury.balance == 6_250
    assert treasury.received == {"AANSLAG-2027-001": 6_000, "AANSLAG-2027-002": 250}
    with pytest.raises(InvalidInput, match="assessment_ref"):
        treasury.receive(1, "", payer, REF, instalments=True)


def test_an_assessment_reference_outside_the_city_format_is_refused_naming_the_field() -> None:
    treasury, payer = Treasury("zwolle"), uuid4()
    for text in ("any text at all", "AANSLAG-1", "aanslag-2027-001", "AANSLAG-2027-001 ", "x"):
        with pytest.raises(InvalidInput, match="assessment_ref"):
            treasury.receive(100, text, payer, REF, instalments=False)
    assert treasury.balance == 0


def test_a_reference_is_paid_once_unless_the_city_takes_instalments() -> None:
    treasury, payer = Treasury("zwolle"), uuid4()
    treasury.receive(100, "AANSLAG-2027-001", payer, REF, instalments=False)
    with pytest.raises(AssessmentPaid, match="already paid"):
        treasury.receive(100, "AANSLAG-2027-001", payer, REF, instalments=False)
    assert treasury.received == {"AANSLAG-2027-001": 100}
