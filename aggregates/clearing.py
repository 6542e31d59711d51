"""Clearing between two cities: one period's redemptions between them, agreed and signed by both.

Each city counts, from its own records, the redemptions between the pair that it recorded
before the period's end and that no earlier statement of the pair cleared: its own tokens
redeemed at the partner's shops, and the partner's tokens redeemed at its shops, each in
the home city's units. Both cities must arrive at the same figures, and at the same digest
of the sorted list of (redemption id, home city, amount); each signs the figures with its
Ed25519 key, and the statement is recorded once both signatures are there. The statement's
id comes from the pair and the period, so it is recorded once. What a statement cleared is
closed: a city's open position with a partner counts only what no statement cleared.

No wallet appears in a statement or in the lines compared when figures differ: only
redemption ids, home cities, amounts and times.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from aggregates.errors import InvalidInput, OverCap, PreconditionFailed

PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
# What each city signs: the figures, prefixed so a statement's signature can never be
# taken for a voucher's, which the same key signs.
SIGNED_PREFIX = b"civfed-clearing-v1\n"


class ClearingDisagreement(PreconditionFailed):
    """The partner's figures for the period are not this city's."""


class OverExposure(OverCap):
    """A redemption that would take a partner's open position above its exposure limit."""


def period_end(period: str) -> dt.datetime:
    """The first instant (UTC) after a month given as YYYY-MM."""
    m = PERIOD.fullmatch(period)
    if m is None:
        raise InvalidInput("period", f"{period!r} is not a month (YYYY-MM)")
    year, month = int(m.group(1)), int(m.group(2))
    if month == 12:
        return dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
    return dt.datetime(year, month + 1, 1, tzinfo=dt.UTC)


def pair_of(one: str, other: str) -> tuple[str, str]:
    if one == other:
        raise InvalidInput("partner", "a city does not clear with itself")
    a, b = sorted((one, other))
    return a, b


@dataclass(frozen=True, order=True)
class Line:
    """One committed redemption between the pair: its home-side id, whose tokens, how many,
    and when this city recorded it (times differ between the cities and are not compared)."""

    redemption_id: str
    home: str
    amount: int
    at: dt.datetime | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.redemption_id, self.home, self.amount)


def digest(lines: Iterable[Line]) -> str:
    keys = sorted(line.key for line in lines)
    return hashlib.sha256(json.dumps(keys, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Figures:
    """What both cities sign: the pair (in name order), the period, what each owes the other
    in its own units, how many redemptions, and the digest of their list."""

    city_a: str
    city_b: str
    period: str
    owed_by_a: int
    owed_by_b: int
    redemptions: int
    digest: str

    @classmethod
    def of(cls, city_a: str, city_b: str, period: str, lines: Sequence[Line]) -> Figures:
        return cls(
            city_a,
            city_b,
            period,
            sum(line.amount for line in lines if line.home == city_a),
            sum(line.amount for line in lines if line.home == city_b),
            len(lines),
            digest(lines),
        )

    def payload(self) -> bytes:
        body = {
            "a": self.city_a,
            "b": self.city_b,
            "period": self.period,
            "owed_by_a": self.owed_by_a,
            "owed_by_b": self.owed_by_b,
            "redemptions": self.redemptions,
            "digest": self.digest,
        }
        return SIGNED_PREFIX + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def owed_by(self, city: str) -> int:
        return self.owed_by_a if city == self.city_a else self.owed_by_b

    def differences(self, other: Figures) -> list[str]:
        """The names of the figures that differ (empty: the same statement)."""
        names = ("city_a", "city_b", "period", "owed_by_a", "owed_by_b", "redemptions", "digest")
        return [n for n in names if getattr(self, n) != getattr(other, n)]


Difference = tuple[str, int | None, int | None]


def first_difference(ours: Sequence[Line], theirs: Sequence[Line]) -> Difference | None:
    """The first redemption, in id order, that one side counts and the other does not, or
    counts differently: (its id, our amount or None, their amount or None)."""
    mine = {line.redemption_id: line for line in ours}
    other = {line.redemption_id: line for line in theirs}
    for rid in sorted({*mine, *other}):
        a, b = mine.get(rid), other.get(rid)
        if a is None or b is None or a.key != b.key:
            return rid, a.amount if a else None, b.amount if b else None
    return None


def check_lines(lines: Sequence[Line]) -> None:
    """A partner's list counts each redemption once: a redemption listed twice would add
    to the signed figures twice while matching this city's one record of it."""
    seen: set[str] = set()
    for line in lines:
        if line.redemption_id in seen:
            raise InvalidInput("lines", f"redemption {line.redemption_id} is listed more than once")
        seen.add(line.redemption_id)


def reconcile(proposed: Sequence[Line], ours: Sequence[Line], end: dt.datetime) -> Difference | None:
    """Whether a partner's proposed lines are a statement this city can sign: every line one
    this city recorded too (at any time: a redemption committed at the period's end may be
    recorded by one city just before it and by the other just after), and every line this
    city recorded before the end among them. `ours`: this city's uncleared lines. The first
    difference in id order, as (id, the proposer's amount or None, ours or None), or None."""
    theirs = {line.redemption_id: line for line in proposed}
    mine = {line.redemption_id: line for line in ours}
    due = {rid for rid, line in mine.items() if line.at is None or line.at < end}
    for rid in sorted({*theirs, *due}):
        a, b = theirs.get(rid), mine.get(rid)
        if a is None or b is None or a.key != b.key:
            return rid, a.amount if a else None, b.amount if b else None
    return None


def describe_difference(period: str, us: str, them: str, diff: Difference) -> str:
    rid, ours, theirs = diff

    def counted(city: str, amount: int | None) -> str:
        return f"{city} does not count it" if amount is None else f"{city} counts {amount}"

    return (
        f"{them} disagrees with the clearing statement for {period}: first differing redemption "
        f"{rid}: {counted(us, ours)}, {counted(them, theirs)}"
    )


class ClearingStatement(Aggregate):
    """One period's clearing between two cities, signed by both."""

    @staticmethod
    def create_id(city_a: str, city_b: str, period: str) -> UUID:
        a, b = pair_of(city_a, city_b)  # either order
        return uuid5(NAMESPACE_URL, f"civfed:clearing:{a}:{b}:{period}")

    @event("Recorded")
    def __init__(
        self,
        city_a: str,
        city_b: str,
        period: str,
        owed_by_a: int,
        owed_by_b: int,
        redemptions: int,
        digest: str,
        signature_a: str,
        signature_b: str,
        redemption_ids: list[str],
    ) -> None:
        self.city_a = city_a
        self.city_b = city_b
        self.period = period
        self.owed_by_a = owed_by_a
        self.owed_by_b = owed_by_b
        self.redemptions = redemptions
        self.digest = digest
        # Base64 Ed25519 signatures of `Figures.payload()`, by city_a's and city_b's keys.
        self.signature_a = signature_a
        self.signature_b = signature_b
        self.redemption_ids = redemption_ids

    @property
    def figures(self) -> Figures:
        return Figures(
            self.city_a,
            self.city_b,
            self.period,
            self.owed_by_a,
            self.owed_by_b,
            self.redemptions,
            self.digest,
        )

    def signature_of(self, city: str) -> str:
        return self.signature_a if city == self.city_a else self.signature_b


class PartnerExposure(Aggregate):
    """How much of one partner's tokens this city's shops took and the partner has not yet
    cleared: redemptions under way or committed, less what clearing statements settled."""

    @staticmethod
    def create_id(acceptor: str, home: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"civfed:{acceptor}:exposure:{home}")

    @event("Opened")
    def __init__(self, acceptor: str, home: str) -> None:
        self.acceptor = acceptor
        self.home = home
        self.open = 0

    def check_room(self, amount: int, limit: int) -> None:
        if self.open + amount > limit:
            raise OverExposure(
                f"exposure limit reached: {self.home} would owe {self.acceptor} {self.open + amount} "
                f"of its tokens not yet cleared, above the limit of {limit} (open now: {self.open})"
            )

    @event("Used")
    def use(self, amount: int) -> None:
        self.open += amount

    def give_back(self, amount: int) -> None:
        """A redemption that did not go through; never below zero (the limit may have been
        set after the redemption started)."""
        if self.open > 0:
            self._returned(min(amount, self.open))

    @event("Returned")
    def _returned(self, amount: int) -> None:
        self.open -= amount

    def cleared(self, amount: int, period: str) -> None:
        """A clearing statement settled `amount`; what was counted before the limit was set
        is settled too, so never below zero."""
        if self.open > 0 and amount > 0:
            self._cleared(min(amount, self.open), period)

    @event("Cleared")
    def _cleared(self, amount: int, period: str) -> None:
        self.open -= amount


def check_clearable(period: str, now: dt.datetime, last_cleared: str | None) -> dt.datetime:
    """A period is cleared once it is over, and after the last period cleared; its end."""
    end = period_end(period)
    if now < end:
        raise PreconditionFailed(f"the period {period} is not over yet (it ends {end.isoformat()})")
    if last_cleared is not None and period < last_cleared:
        raise PreconditionFailed(f"the period {period} is before {last_cleared}, already cleared")
    return end
