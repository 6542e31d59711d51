"""The systems a city trusts to attest activities, and what each may attest.

A source (a mobility provider, a bike-share operator, the engraving desk, an event
organiser, a shop till) is registered by staff with a public key, the activity kinds it
may attest, and per-kind plausibility bounds: how much one person can plausibly do in a
day. Keys rotate and sources retire; every change is an event in the city's store and
shown to the public, so anyone can see which systems may attest what.

The daily tally keeps, per wallet, day and activity, what was already attested, so a
bound holds over the day's sum and not only per claim.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from functools import lru_cache
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import (
    InvalidInput,
    KindNotAttested,
    NotFound,
    OverBound,
    PreconditionFailed,
    SourceRetired,
    StaleClaim,
)

SOURCE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")
KEY_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True)
class Bound:
    """At most `max_per_day` of `field` (summed) per wallet and day for `activity`, counting
    only claims whose fields match `where`; with no `field`, at most that many claims."""

    activity: str
    max_per_day: int
    field: str = ""
    where: dict[str, str] = dc_field(default_factory=dict)

    @property
    def label(self) -> str:
        """The tally's key for this bound: the field and the filter, in a stable form."""
        return f"{self.field or '#claims'}|{json.dumps(self.where, sort_keys=True)}"

    def applies(self, fields: dict[str, Any]) -> bool:
        return all(str(fields.get(k)) == v for k, v in self.where.items())

    def amount(self, fields: dict[str, Any]) -> int:
        if not self.field:
            return 1
        value = fields.get(self.field)
        try:
            number = int(str(value))
        except ValueError:
            raise InvalidInput(f"fields.{self.field}", "must be a whole number") from None
        if number < 0:
            raise InvalidInput(f"fields.{self.field}", "must not be negative")
        return number

    def describe(self) -> str:
        what = self.field or "claims"
        where = "".join(f" with {k} {v}" for k, v in sorted(self.where.items()))
        return f"at most {self.max_per_day} {what} of {self.activity}{where} per person per day"

    def as_dict(self) -> dict[str, Any]:
        return {
            "activity": self.activity,
            "max_per_day": self.max_per_day,
            "field": self.field,
            "where": self.where,
        }

    @classmethod
    def of(cls, data: dict[str, Any]) -> Bound:
        where = {str(k): str(v) for k, v in dict(data.get("where") or {}).items()}
        return cls(str(data["activity"]), int(data["max_per_day"]), str(data.get("field", "")), where)


def check_bounds(kinds: list[str], bounds: list[Bound]) -> None:
    for bound in bounds:
        if bound.activity not in kinds:
            raise InvalidInput("bounds", f"a bound for {bound.activity!r}, which the source may not attest")
        if type(bound.max_per_day) is not int or bound.max_per_day <= 0:
            raise InvalidInput("bounds", "max_per_day must be a positive whole number")


@dataclass
class SourceEntry:
    """One registered source, as the registry holds it."""

    source_id: str
    name: str
    kinds: list[str]
    bounds: list[Bound]
    key_id: str
    public_key: str
    retired_keys: dict[str, str] = dc_field(default_factory=dict)
    active: bool = True

    def bounds_for(self, activity: str) -> list[Bound]:
        return [b for b in self.bounds if b.activity == activity]


class SourceRegistry(Aggregate):
    """One per city: every source it ever registered, with its current and retired keys."""

    @staticmethod
    @lru_cache(maxsize=4096)  # a command asks for the same id several times
    def create_id(city: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"civfed:{city}:sources")

    @event("Created")
    def __init__(self, city: str) -> None:
        self.city = city
        self.sources: dict[str, SourceEntry] = {}

    # -- changes (staff) -------------------------------------------------------
    def register(
        self,
        source_id: str,
        name: str,
        key_id: str,
        public_key: str,
        kinds: list[str],
        bounds: list[Bound],
        by: str,
        reason: str,
    ) -> None:
        if not SOURCE_ID.match(source_id):
            raise InvalidInput("source_id", "lowercase letters, digits, '.', '_' or '-', 2 to 64 long")
        if source_id in self.sources:
            raise PreconditionFailed(f"source {source_id!r} is already registered")
        if not name.strip():
            raise InvalidInput("name", "required")
        self._check_key(key_id, public_key)
        if not kinds or len(set(kinds)) != len(kinds):
            raise InvalidInput("kinds", "at least one activity kind, each once")
        check_bounds(kinds, bounds)
        if not reason.strip():
            raise InvalidInput("reason", "say why this source may attest activities")
        as_dicts = [b.as_dict() for b in bounds]
        self._registered(source_id, name, key_id, public_key, kinds, as_dicts, by, reason)

    @event("SourceRegistered")
    def _registered(
        self,
        source_id: str,
        name: str,
        key_id: str,
        public_key: str,
        kinds: list[str],
        bounds: list[dict[str, Any]],
        by: str,
        reason: str,
    ) -> None:
        self.sources[source_id] = SourceEntry(
            source_id, name, list(kinds), [Bound.of(b) for b in bounds], key_id, public_key
        )

    def rotate_key(self, source_id: str, key_id: str, public_key: str, by: str, reason: str) -> None:
        """The new key signs from now on; claims under the old key are refused."""
        source = self.get(source_id)
        self._check_active(source)
        self._check_key(key_id, public_key)
        if key_id == source.key_id or key_id in source.retired_keys:
            raise InvalidInput("key_id", f"key id {key_id!r} was already used by this source")
        self._key_rotated(source_id, key_id, public_key, by, reason)

    @event("SourceKeyRotated")
    def _key_rotated(self, source_id: str, key_id: str, public_key: str, by: str, reason: str) -> None:
        source = self.sources[source_id]
        source.retired_keys[source.key_id] = source.public_key
        source.key_id, source.public_key = key_id, public_key

    def retire(self, source_id: str, by: str, reason: str) -> None:
        """The source attests nothing more; what it attested before stays."""
        source = self.get(source_id)
        self._check_active(source)
        self._retired(source_id, by, reason)

    @event("SourceRetired")
    def _retired(self, source_id: str, by: str, reason: str) -> None:
        source = self.sources[source_id]
        source.retired_keys[source.key_id] = source.public_key
        source.active = False

    # -- guards ---------------------------------------------------------------
    def get(self, source_id: str) -> SourceEntry:
        source = self.sources.get(source_id)
        if source is None:
            raise NotFound(f"source {source_id!r} is not registered in {self.city}")
        return source

    @staticmethod
    def _check_key(key_id: str, public_key: str) -> None:
        if not KEY_ID.match(key_id):
            raise InvalidInput("key_id", "letters, digits, '.', '_', ':' or '-', 1 to 64 long")
        if not public_key.strip():
            raise InvalidInput("public_key", "required")

    @staticmethod
    def _check_active(source: SourceEntry) -> None:
        if not source.active:
            raise SourceRetired(f"source {source.source_id!r} is retired")

    def key_for(self, source_id: str, key_id: str) -> str:
        """The public key a claim names, if it may still sign; else the refusal."""
        source = self.get(source_id)
        self._check_active(source)
        if key_id in source.retired_keys:
            raise SourceRetired(f"key {key_id!r} of source {source_id!r} is retired")
        if key_id != source.key_id:
            raise NotFound(f"source {source_id!r} has no key {key_id!r}")
        return source.public_key

    def check_attests(self, source_id: str, activity: str) -> SourceEntry:
        source = self.get(source_id)
        self._check_active(source)
        if activity not in source.kinds:
            raise KindNotAttested(f"source {source_id!r} may not attest {activity!r}")
        return source


def check_date(date: dt.date, today: dt.date, max_age_days: int) -> None:
    """Not in the future; not older than the city's window."""
    if date > today:
        raise InvalidInput("date", f"{date.isoformat()} is in the future (today is {today.isoformat()})")
    if (today - date).days > max_age_days:
        raise StaleClaim(f"{date.isoformat()} is older than the {max_age_days} days this city accepts")


class DailyTally(Aggregate):
    """What sources attested for one wallet, day and activity, per bound."""

    @staticmethod
    @lru_cache(maxsize=4096)  # a command asks for the same id several times
    def create_id(city: str, wallet_id: UUID, day: str, activity: str) -> UUID:
        """`day` in ISO form (2026-12-01)."""
        return uuid5(NAMESPACE_URL, f"civfed:{city}:tally:{wallet_id}:{day}:{activity}")

    @event("Opened")
    def __init__(self, city: str, wallet_id: UUID, day: str, activity: str) -> None:
        self.wallet_id = wallet_id
        self.day = day
        self.activity = activity
        self.sums: dict[str, int] = {}

    def check_within(self, bounds: list[Bound], fields: dict[str, Any]) -> dict[str, int]:
        """The amounts this claim adds, per bound; refused if a bound would be passed."""
        adds: dict[str, int] = {}
        for bound in bounds:
            if not bound.applies(fields):
                continue
            amount = bound.amount(fields)
            total = self.sums.get(bound.label, 0) + amount
            if total > bound.max_per_day:
                raise OverBound(f"{bound.describe()}: this claim would make {total} on {self.day}")
            adds[bound.label] = adds.get(bound.label, 0) + amount
        return adds

    def add(self, adds: dict[str, int]) -> None:
        if adds:
            self._added(adds)

    @event("Added")
    def _added(self, adds: dict[str, int]) -> None:
        for label, amount in adds.items():
            self.sums[label] = self.sums.get(label, 0) + amount
