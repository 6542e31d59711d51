"""Caps and campaign dates: conditions a rule may carry beside `participant_kinds`.

    [rules.conditions]
    valid_from = 2026-05-01          # the first day an activity earns under the rule
    valid_until = 2026-06-30         # the last day (inclusive)
    per_wallet_per_day = 20          # at most this much per wallet per day, in the smallest unit
    per_wallet_per_month = 200       # ... and per calendar month

The activity's own date decides (the date it took place, never the wall clock). An award
that would take a wallet past a cap is refused whole, and the refusal is recorded on the
wallet naming the cap; a rule outside its dates awards nothing, and that refusal names the
dates. Both can be appealed (services/appeals.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aggregates.errors import RuleRejected

VALID_FROM, VALID_UNTIL = "valid_from", "valid_until"
PER_DAY, PER_MONTH = "per_wallet_per_day", "per_wallet_per_month"
CAPS = (PER_DAY, PER_MONTH)
LIMITS = (VALID_FROM, VALID_UNTIL, *CAPS)


def _date(rule_id: str, name: str, value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise RuleRejected(rule_id, f"{name} must be a date (YYYY-MM-DD), not {value!r}")


def check_limits(rule_id: str, conditions: dict[str, Any]) -> None:
    """Publish-time validation of a rule's caps and dates."""
    for name in CAPS:
        if name in conditions:
            cap = conditions[name]
            if type(cap) is not int or cap <= 0:
                raise RuleRejected(rule_id, f"{name} must be a positive whole number, not {cap!r}")
    if PER_DAY in conditions and PER_MONTH in conditions and conditions[PER_DAY] > conditions[PER_MONTH]:
        raise RuleRejected(rule_id, f"{PER_DAY} is above {PER_MONTH}")
    start = _date(rule_id, VALID_FROM, conditions[VALID_FROM]) if VALID_FROM in conditions else None
    end = _date(rule_id, VALID_UNTIL, conditions[VALID_UNTIL]) if VALID_UNTIL in conditions else None
    if start is not None and end is not None and end < start:
        raise RuleRejected(rule_id, f"{VALID_UNTIL} {end} is before {VALID_FROM} {start}")


def dates_refusal(rule_id: str, conditions: dict[str, Any], on: dt.date) -> tuple[str, str] | None:
    """The date an activity on `on` falls outside of under the rule's dates, with the
    reason; or None."""
    start, end = conditions.get(VALID_FROM), conditions.get(VALID_UNTIL)
    if start is not None and on < _date(rule_id, VALID_FROM, start):
        return VALID_FROM, f"rule {rule_id} is valid from {start}; the activity was on {on.isoformat()}"
    if end is not None and on > _date(rule_id, VALID_UNTIL, end):
        return VALID_UNTIL, f"rule {rule_id} was valid until {end}; the activity was on {on.isoformat()}"
    return None


def limit_refusal(
    rule_id: str, conditions: dict[str, Any], on: dt.date, amount: int, day: int, month: int
) -> tuple[str, str] | None:
    """The date or cap that refuses an award, with the reason; or None."""
    return dates_refusal(rule_id, conditions, on) or cap_refusal(rule_id, conditions, on, amount, day, month)


def cap_refusal(
    rule_id: str, conditions: dict[str, Any], on: dt.date, amount: int, day: int, month: int
) -> tuple[str, str] | None:
    """The cap an award of `amount` on `on` would exceed, given what the wallet already
    earned under the rule that day and that month, with the reason; or None."""
    for name, earned, period in ((PER_DAY, day, on.isoformat()), (PER_MONTH, month, on.strftime("%Y-%m"))):
        cap = conditions.get(name)
        if cap is not None and amount > 0 and earned + amount > cap:
            return name, (
                f"rule {rule_id} caps awards at {cap} {name.replace('_', ' ')}; "
                f"{earned} already earned on {period}, this award of {amount} would exceed it"
            )
    return None


# A refusal's reason as a message id and parameters (services/i18n/explanations.py), read in
# the holder's language; the English text above is what the refusal has always stored.
BEFORE_START = "rule {rule_id} is valid from {start_date}; the activity was on {date}"
AFTER_END = "rule {rule_id} was valid until {end_date}; the activity was on {date}"
DAY_CAP = (
    "rule {rule_id} caps awards at {cap} per wallet per day; {earned} already earned on {date}, "
    "this award of {amount} would exceed it"
)
MONTH_CAP = (
    "rule {rule_id} caps awards at {cap} per wallet per month; {earned} already earned in {month}, "
    "this award of {amount} would exceed it"
)
MESSAGE_IDS = (BEFORE_START, AFTER_END, DAY_CAP, MONTH_CAP)


def refusal_message(
    limit: str, rule_id: str, conditions: dict[str, Any], on: dt.date, amount: int, day: int, month: int
) -> tuple[str, dict[str, Any]]:
    """The reason `limit` refused an award (see `limit_refusal`), as a message id and parameters."""
    args: dict[str, Any] = {"rule_id": rule_id, "date": on.isoformat()}
    if limit == VALID_FROM:
        return BEFORE_START, {**args, "start_date": _date(rule_id, limit, conditions[limit]).isoformat()}
    if limit == VALID_UNTIL:
        return AFTER_END, {**args, "end_date": _date(rule_id, limit, conditions[limit]).isoformat()}
    caps = {"cap": conditions[limit], "amount": amount}
    if limit == PER_DAY:
        return DAY_CAP, {**args, **caps, "earned": day}
    return MONTH_CAP, {"rule_id": rule_id, **caps, "earned": month, "month": on.strftime("%Y-%m")}


def stored(conditions: dict[str, Any]) -> dict[str, Any]:
    """Conditions as events store them: dates as ISO text."""
    return {
        k: v.isoformat() if isinstance(v, dt.date) and k in (VALID_FROM, VALID_UNTIL) else v
        for k, v in conditions.items()
    }
