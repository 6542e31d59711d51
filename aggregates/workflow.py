"""Council-approved work: the catalogue of qualifying work, tasks, and logged hours.

Taking part is a choice: nothing here records who did not take part, and a
log's minutes stay in the city's own store (these aggregates are not exported).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import InvalidInput, NotFound, SelfApproval, WorkDayFull, WorkNotOpen

# The basic economy comes first; "civic" is light civic work such as litter picking.
SECTORS = ("energy", "food", "care", "safety", "governance", "civic")
MAX_TASK_DAYS = 14
# What a day holds: one person's approved minutes on one day never exceed it.
DAY_MINUTES = 24 * 60


@dataclass(frozen=True)
class Category:
    code: str
    title: str
    sector: str
    version: int
    decision_ref: str
    active: bool = True


def check_text(field: str, value: str, limit: int = 200) -> None:
    if not value.strip():
        raise InvalidInput(field, "must not be empty")
    if len(value) > limit:
        raise InvalidInput(field, f"at most {limit} characters")


class WorkCatalogue(Aggregate):
    """One per city. Every change names the council decision that made it."""

    @staticmethod
    def create_id(city: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"civfed:{city}:work-catalogue")

    @event("Created")
    def __init__(self, city: str) -> None:
        self.city = city
        self.categories: dict[str, Category] = {}
        # The categories of the city file as last applied: code -> [title, sector, decision].
        # None in a catalogue that never recorded them.
        self.file_specs: dict[str, list[str]] | None = None

    def sync_file(self, specs: dict[str, list[str]]) -> None:
        """Apply what changed in the city file since it was last applied: new and edited entries
        are published, removed ones retired. Changes the council made by command to entries the
        file did not touch stay as they are."""
        last = self.file_specs
        if last is None:
            # Never recorded: the file is the whole catalogue, as it was before the record.
            changed = specs
            removed = {code for code, c in self.categories.items() if c.active and code not in specs}
        else:
            changed = {code: spec for code, spec in specs.items() if last.get(code) != spec}
            removed = set(last) - set(specs)
        for code, (title, sector, decision_ref) in changed.items():
            self.publish(code, title, sector, decision_ref)
        for code in sorted(removed):
            category = self.categories.get(code)
            if category is not None and category.active:
                self.retire(code, "removed from the published city file")
        if last != specs:
            self._file_synced(specs)

    @event("FileSynced")
    def _file_synced(self, specs: dict[str, list[str]]) -> None:
        self.file_specs = specs

    def publish(self, code: str, title: str, sector: str, decision_ref: str) -> bool:
        """Publish a new category or change an existing one; False if nothing changed."""
        if not re.fullmatch(r"[a-z][a-z0-9_-]{1,47}", code):
            raise InvalidInput("code", "lower-case letters, digits, '-' or '_', 2 to 48 characters")
        check_text("title", title)
        check_text("decision_ref", decision_ref, 100)
        if sector not in SECTORS:
            raise InvalidInput("sector", f"must be one of {SECTORS}")
        current = self.categories.get(code)
        if current is None:
            self._published(code, title, sector, decision_ref)
            return True
        if (current.title, current.sector, current.active) == (title, sector, True):
            return False
        self._changed(code, title, sector, decision_ref)
        return True

    @event("CategoryPublished")
    def _published(self, code: str, title: str, sector: str, decision_ref: str) -> None:
        self.categories[code] = Category(code, title, sector, 1, decision_ref)

    @event("CategoryChanged")
    def _changed(self, code: str, title: str, sector: str, decision_ref: str) -> None:
        old = self.categories[code]
        self.categories[code] = Category(code, title, sector, old.version + 1, decision_ref)

    def retire(self, code: str, decision_ref: str) -> None:
        check_text("decision_ref", decision_ref, 100)
        if not self.get(code).active:
            raise WorkNotOpen(f"work category {code!r} is already retired")
        self._retired(code, decision_ref)

    @event("CategoryRetired")
    def _retired(self, code: str, decision_ref: str) -> None:
        self.categories[code] = replace(self.categories[code], active=False, decision_ref=decision_ref)

    def get(self, code: str) -> Category:
        if code not in self.categories:
            raise NotFound(f"work category {code!r} is not in the {self.city} catalogue")
        return self.categories[code]

    def check_open(self, code: str) -> Category:
        category = self.get(code)
        if not category.active:
            raise WorkNotOpen(f"work category {code!r} was retired ({category.decision_ref})")
        return category


class Task(Aggregate):
    """A coordinator's task in one category, at a place, in a time window, with slots."""

    @event("Posted")
    def __init__(
        self,
        city: str,
        category: str,
        place: str,
        starts_at: dt.datetime,
        ends_at: dt.datetime,
        slots: int,
        posted_by: str,
    ) -> None:
        self.city = city
        self.category = category
        self.place = place
        self.starts_at = starts_at
        self.ends_at = ends_at
        self.slots = slots
        self.posted_by = posted_by
        self.claimed_by: list[UUID] = []
        self.closed_reason = ""

    @classmethod
    def post(
        cls,
        city: str,
        category: str,
        place: str,
        starts_at: dt.datetime,
        ends_at: dt.datetime,
        slots: int,
        posted_by: str,
    ) -> Task:
        check_text("place", place)
        check_text("posted_by", posted_by, 100)
        if not 1 <= slots <= 1000:
            raise InvalidInput("slots", "must be between 1 and 1000")
        if ends_at <= starts_at:
            raise InvalidInput("ends_at", "must be after starts_at")
        if ends_at - starts_at > dt.timedelta(days=MAX_TASK_DAYS):
            raise InvalidInput("ends_at", f"a task's window is at most {MAX_TASK_DAYS} days")
        return cls(city, category, place, starts_at, ends_at, slots, posted_by)

    @property
    def window_minutes(self) -> int:
        return int((self.ends_at - self.starts_at).total_seconds()) // 60

    @property
    def loggable_minutes(self) -> int:
        """A log is the minutes of one day's work: at most the window, and at most a day."""
        return min(self.window_minutes, DAY_MINUTES)

    def close(self, reason: str) -> None:
        """No further claims; minutes already worked on a claimed slot can still be logged."""
        check_text("reason", reason, 500)
        if self.closed_reason:
            raise WorkNotOpen(f"task {self.id} was already closed ({self.closed_reason})")
        self._closed(reason)

    @event("Closed")
    def _closed(self, reason: str) -> None:
        self.closed_reason = reason

    def claim(self, wallet_id: UUID, now: dt.datetime) -> None:
        if self.closed_reason:
            raise WorkNotOpen(f"task {self.id} was closed ({self.closed_reason})")
        if wallet_id in self.claimed_by:
            raise WorkNotOpen(f"task {self.id} is already claimed by this wallet")
        if len(self.claimed_by) >= self.slots:
            raise WorkNotOpen(f"task {self.id} has no free slot")
        if now >= self.ends_at:
            raise WorkNotOpen(f"task {self.id} ended at {self.ends_at.isoformat()}")
        self._claimed(wallet_id)

    @event("Claimed")
    def _claimed(self, wallet_id: UUID) -> None:
        self.claimed_by.append(wallet_id)

    def check_loggable(self, wallet_id: UUID, minutes: int, now: dt.datetime) -> None:
        if wallet_id not in self.claimed_by:
            raise WorkNotOpen(f"task {self.id} was not claimed by this wallet")
        if now < self.starts_at:
            raise WorkNotOpen(f"task {self.id} starts at {self.starts_at.isoformat()}")
        most = self.loggable_minutes
        if not 0 < minutes <= most:
            raise InvalidInput(
                "minutes",
                f"a log is one day's work on this task: between 1 and {most} minutes "
                f"(the task's window is {self.window_minutes} minutes, a day {DAY_MINUTES})",
            )


PENDING, APPROVED, REJECTED, REFUSED = "logged", "approved", "rejected", "refused"


class WorkLog(Aggregate):
    """The minutes one participant worked on one task, and the coordinator's decision."""

    @staticmethod
    def create_id(city: str, task_id: UUID, wallet_id: UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"civfed:{city}:work-log:{task_id}:{wallet_id}")

    @event("Logged")
    def __init__(
        self,
        city: str,
        task_id: UUID,
        wallet_id: UUID,
        category: str,
        minutes: int,
        worked_on: str,
        logged_by: str,
    ) -> None:
        self.city = city
        self.task_id = task_id
        self.wallet_id = wallet_id
        self.category = category
        self.minutes = minutes
        self.worked_on = dt.date.fromisoformat(worked_on)  # ISO text in the event
        self.logged_by = logged_by
        self.status = PENDING
        self.reason = ""

    def check_pending(self) -> None:
        if self.status != PENDING:
            raise WorkNotOpen(f"work log {self.id} was already {self.status}")

    def check_four_eyes(self, approver: str) -> None:
        """The person who worked, or who logged the minutes, never decides on them."""
        if approver in (str(self.wallet_id), self.logged_by):
            raise SelfApproval("four eyes: nobody approves or rejects their own hours")

    def approve(self, approver: str, amount: int) -> None:
        check_text("approver", approver, 100)
        self.check_pending()
        self.check_four_eyes(approver)
        self._approved(approver, amount)

    @event("Approved")
    def _approved(self, approver: str, amount: int) -> None:
        self.status = APPROVED

    def reject(self, approver: str, reason: str) -> None:
        check_text("approver", approver, 100)
        check_text("reason", reason, 500)
        self.check_pending()
        self.check_four_eyes(approver)
        self._rejected(approver, reason)

    @event("Rejected")
    def _rejected(self, approver: str, reason: str) -> None:
        self.status = REJECTED
        self.reason = reason

    def refuse(self, approver: str, reason: str) -> None:
        """The approval a rule refused (a full day): recorded, never silently dropped, and open
        to appeal as `work_log` like a coordinator's rejection."""
        self.check_pending()
        self._refused(approver, reason)

    @event("Refused")
    def _refused(self, approver: str, reason: str) -> None:
        self.status = REFUSED
        self.reason = reason

    def reinstate(self, appeal_id: UUID, amount: int) -> None:
        """An upheld appeal against the rejection or refusal: the minutes count after all.

        Who decided, and why, is recorded on the appeal, which another person decides.
        """
        if self.status not in (REJECTED, REFUSED):
            raise WorkNotOpen(f"work log {self.id} is {self.status}, not rejected or refused")
        self._reinstated(appeal_id, amount)

    @event("Reinstated")
    def _reinstated(self, appeal_id: UUID, amount: int) -> None:
        self.status = APPROVED


class WorkDay(Aggregate):
    """The minutes approved for one wallet on one day, over every task: never past a day."""

    @staticmethod
    def create_id(city: str, wallet_id: UUID, day: dt.date | str) -> UUID:
        # str() of a date is its ISO form, the text the event holds.
        return uuid5(NAMESPACE_URL, f"civfed:{city}:work-day:{wallet_id}:{day}")

    @event("Opened")
    def __init__(self, city: str, wallet_id: UUID, day: str) -> None:
        self.city = city
        self.wallet_id = wallet_id
        self.day = dt.date.fromisoformat(day)  # ISO text in the event
        self.minutes = 0

    @property
    def room(self) -> int:
        return DAY_MINUTES - self.minutes

    def check_room(self, log_id: UUID, minutes: int) -> None:
        if minutes > self.room:
            raise WorkDayFull(
                f"work log {log_id}: {minutes} more minutes on {self.day.isoformat()} would credit this "
                f"person {self.minutes + minutes} minutes in one day, past the {DAY_MINUTES} a day holds "
                f"({self.room} left)"
            )

    def add(self, log_id: UUID, minutes: int) -> None:
        self.check_room(log_id, minutes)
        self._added(log_id, minutes)

    @event("MinutesApproved")
    def _added(self, log_id: UUID, minutes: int) -> None:
        self.minutes += minutes


class TaskBoard(Aggregate):
    """One per city: every task posted, in order, so coordinators and holders can list them."""

    @staticmethod
    def create_id(city: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"civfed:{city}:task-board")

    @event("Opened")
    def __init__(self, city: str) -> None:
        self.city = city
        self.task_ids: list[UUID] = []

    @event("TaskPinned")
    def pin(self, task_id: UUID) -> None:
        self.task_ids.append(task_id)
