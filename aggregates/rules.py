"""The generic rule kinds: pure functions from (activity, parameters) to an award.

Every kind yields a non-negative whole amount in the city's smallest unit plus a
plain explanation, so each award can be shown to and appealed by its holder.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from aggregates.errors import InvalidInput

MEASURED_QUANTITY = "measured_quantity"
FIXED_PER_ACTION = "fixed_per_action"
ONCE_PER_SUBJECT = "once_per_subject"
PERCENTAGE_OF_AMOUNT = "percentage_of_amount"
PER_APPROVED_TIME = "per_approved_time"
RULE_KINDS = (MEASURED_QUANTITY, FIXED_PER_ACTION, ONCE_PER_SUBJECT, PERCENTAGE_OF_AMOUNT, PER_APPROVED_TIME)


class _Input(BaseModel):
    # Minimisation: anything a rule does not need (GPS, routes, free text) is refused.
    model_config = ConfigDict(extra="forbid", frozen=True)
    date: dt.date


class TripInput(_Input):
    mode: str = Field(min_length=1, max_length=32)
    distance_m: int = Field(ge=0, le=1_000_000)


class ActionInput(_Input):
    action: str = Field(min_length=1, max_length=64)


class SubjectInput(_Input):
    subject: str = Field(min_length=1, max_length=64)


class PurchaseInput(_Input):
    amount_cents: int = Field(gt=0, le=100_000_000)
    merchant_id: UUID


class ApprovedTimeInput(_Input):
    """Minutes a coordinator approved; only the workflow's approval path builds one."""

    minutes: int = Field(gt=0, le=24 * 60)
    category: str = Field(min_length=1, max_length=64)


INPUT_MODELS: dict[str, type[_Input]] = {
    MEASURED_QUANTITY: TripInput,
    FIXED_PER_ACTION: ActionInput,
    ONCE_PER_SUBJECT: SubjectInput,
    PERCENTAGE_OF_AMOUNT: PurchaseInput,
    PER_APPROVED_TIME: ApprovedTimeInput,
}


@dataclass(frozen=True)
class Award:
    amount: int
    explanation: str
    carried_after: int | None = None
    quantity: int | None = None
    subject_key: str | None = None


def parse_input(kind: str, fields: dict[str, Any]) -> _Input:
    from pydantic import ValidationError

    try:
        return INPUT_MODELS[kind].model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "activity"
        problem = (
            "not accepted: this rule needs only " + ", ".join(INPUT_MODELS[kind].model_fields)
            if err["type"] == "extra_forbidden"
            else err["msg"]
        )
        raise InvalidInput(field, problem) from None


def kg(grams: int) -> str:
    """Grams as kilograms with one decimal, truncated (display only)."""
    return f"{grams // 1000}.{grams % 1000 // 100} kg"


def _day(d: dt.date) -> str:
    return f"{d.day} {d.strftime('%B')} {d.year}"


def measured_quantity(params: dict[str, Any], trip: TripInput, carried: int) -> Award:
    factors: dict[str, int] = params["factors_g_per_km"]
    baseline = factors[params["baseline_mode"]]
    if trip.mode not in factors:
        raise InvalidInput("mode", f"unknown mode {trip.mode!r}; known: {sorted(factors)}")
    # Floor to whole grams: the citizen never gets credit for a fraction not travelled.
    saved = (baseline - factors[trip.mode]) * trip.distance_m // 1000
    unit = int(params["unit_grams"])
    tokens, rest = divmod(carried + saved, unit)
    text = (
        f"{trip.distance_m / 1000:.1f} km by {trip.mode} on {_day(trip.date)} saved "
        f"{kg(saved)} CO2; {kg(unit)} = 1 token; {kg(rest)} carried"
    )
    return Award(tokens, text, carried_after=rest, quantity=saved)


def fixed_per_action(params: dict[str, Any], action: ActionInput) -> Award:
    points: dict[str, int] = params["points"]
    if action.action not in points:
        raise InvalidInput("action", f"unknown action {action.action!r}; known: {sorted(points)}")
    amount = points[action.action]
    return Award(amount, f"{action.action} on {_day(action.date)} earns {amount} points")


def once_per_subject(params: dict[str, Any], subj: SubjectInput, wallet_id: UUID) -> Award:
    scope = params.get("scope", "city")
    key = subj.subject if scope == "city" else f"{subj.subject}|{wallet_id}"
    amount = int(params["award"])
    label = params.get("subject_label", "subject")
    once = "once per " + label if scope == "city" else f"once per person per {label}"
    return Award(
        amount,
        f"{label} {subj.subject} on {_day(subj.date)} earns {amount} ({once})",
        subject_key=key,
    )


def percentage_of_amount(params: dict[str, Any], buy: PurchaseInput) -> Award:
    bps = int(params["basis_points"])
    # Rounding is stated in the rulebook; only rounding down is offered, so
    # no award is ever larger than the published percentage.
    amount = buy.amount_cents * bps // 10_000
    return Award(
        amount,
        f"purchase of {buy.amount_cents / 100:.2f} EUR on {_day(buy.date)} earns "
        f"{bps / 100:.2f}% = {amount} (in hundredths, rounded down)",
    )


def per_approved_time(params: dict[str, Any], work: ApprovedTimeInput) -> Award:
    per_hour = int(params["units_per_hour"])
    # Pro rata in whole minutes, rounded down to the smallest unit of the currency.
    amount = work.minutes * per_hour // 60
    hours, minutes = divmod(work.minutes, 60)
    return Award(
        amount,
        f"{hours} h {minutes:02d} min of approved {work.category} work on {_day(work.date)} earns "
        f"{amount} ({per_hour} per hour, pro rata per minute, rounded down)",
    )
