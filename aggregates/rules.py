"""The generic rule kinds: pure functions from (activity, parameters) to an award.

Every kind yields a non-negative whole amount in the city's smallest unit plus a
plain explanation, so each award can be shown to and appealed by its holder.

`evaluate(rule, fields, context)` is the one way in. `KINDS` holds, for each kind,
the input it parses (refusing anything the rule does not need) and the evaluator
that decides the award; the context carries what an evaluator may need beyond the
rule and the input. `Rule.check_covers` says whether a wallet may earn under a rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from aggregates.errors import InvalidInput, ParticipantNotAllowed, PreconditionFailed
from aggregates.wallet import Wallet

MEASURED_QUANTITY = "measured_quantity"
FIXED_PER_ACTION = "fixed_per_action"
ONCE_PER_SUBJECT = "once_per_subject"
PERCENTAGE_OF_AMOUNT = "percentage_of_amount"
PER_APPROVED_TIME = "per_approved_time"


@dataclass(frozen=True)
class Rule:
    rule_id: str
    kind: str
    activity: str
    version: int
    params: dict[str, Any]
    conditions: dict[str, Any] = field(default_factory=dict)
    active: bool = True
    # The first activity date this version applies to (ISO); None: from the start.
    effective_from: str | None = None

    def allows(self, participant_kind: str) -> bool:
        kinds = self.conditions.get("participant_kinds")
        return kinds is None or participant_kind in kinds

    def check_covers(self, wallet: Wallet, now: dt.datetime) -> None:
        """The wallet may earn under this rule now: active, not leaving, of a kind it covers."""
        wallet.check_earning(now)
        if not self.allows(wallet.participant_kind):
            raise ParticipantNotAllowed(
                f"rule {self.rule_id} does not cover {wallet.participant_kind} wallets"
            )


class RuleInput(BaseModel):
    # Minimisation: anything a rule does not need (GPS, routes, free text) is refused.
    model_config = ConfigDict(extra="forbid", frozen=True)
    date: dt.date


class TripInput(RuleInput):
    mode: str = Field(min_length=1, max_length=32)
    distance_m: int = Field(ge=0, le=1_000_000)


class ActionInput(RuleInput):
    action: str = Field(min_length=1, max_length=64)


class SubjectInput(RuleInput):
    subject: str = Field(min_length=1, max_length=64)


class PurchaseInput(RuleInput):
    amount_cents: int = Field(gt=0, le=100_000_000)
    merchant_id: UUID


class ApprovedTimeInput(RuleInput):
    """Minutes a coordinator approved; only the workflow's approval path builds one."""

    minutes: int = Field(gt=0, le=24 * 60)
    category: str = Field(min_length=1, max_length=64)


# Explanations as message ids (the English text with `{name}` placeholders) and parameters
# (plain values: metres, grams, ISO dates, codes), so a reader's language can render them;
# services/i18n/explanations.py says how each parameter is written.
TRIP_SAVED = "{distance_m} {mode} on {date} saved {saved_g} CO2; {unit_g} = 1 token; {carried_g} carried"
ACTION_EARNS = "{action} on {date} earns {amount} points"
SUBJECT_ONCE = "{label} {subject} on {date} earns {amount} (once per {label})"
SUBJECT_ONCE_PER_WALLET = "{label} {subject} on {date} earns {amount} (once per wallet per {label})"
PURCHASE_EARNS = (
    "purchase of {amount_cents} EUR on {date} earns {bps} = {amount} (in hundredths, rounded down)"
)
WORK_EARNS = (
    "{hours} h {minutes} min of approved {category} work on {date} earns {amount} "
    "({per_hour} per hour, pro rata per minute, rounded down)"
)
MESSAGE_IDS = (TRIP_SAVED, ACTION_EARNS, SUBJECT_ONCE, SUBJECT_ONCE_PER_WALLET, PURCHASE_EARNS, WORK_EARNS)


@dataclass(frozen=True)
class Award:
    amount: int
    # The English text, as it has always been stored; `message` and `args` say the same
    # in a form any language can render.
    explanation: str
    carried_after: int | None = None
    quantity: int | None = None
    subject_key: str | None = None
    message: str = ""
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """What an evaluator may need beyond the rule and the input; the application fills it in."""

    wallet_id: UUID
    # The remainder the wallet carries for this rule (measured quantities).
    carried: int = 0
    # Purchases: refuses a merchant that may not take part, given whether the rule
    # requires a local one (for instance by loading it and asking it).
    merchant_accepts: Callable[[UUID, bool], None] | None = None
    # Set only by the workflow's approval path: approved time mints nowhere else.
    approved_work: bool = False

    @classmethod
    def of(
        cls,
        rule: Rule,
        wallet: Wallet,
        merchant_accepts: Callable[[UUID, bool], None] | None = None,
        approved_work: bool = False,
    ) -> Context:
        return cls(wallet.id, wallet.carried.get(rule.rule_id, 0), merchant_accepts, approved_work)


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
    args = {
        "distance_m": trip.distance_m,
        "mode": trip.mode,
        "date": trip.date.isoformat(),
        "saved_g": saved,
        "unit_g": unit,
        "carried_g": rest,
    }
    return Award(tokens, text, carried_after=rest, quantity=saved, message=TRIP_SAVED, args=args)


def fixed_per_action(params: dict[str, Any], action: ActionInput) -> Award:
    points: dict[str, int] = params["points"]
    if action.action not in points:
        raise InvalidInput("action", f"unknown action {action.action!r}; known: {sorted(points)}")
    amount = points[action.action]
    args = {"action": action.action, "date": action.date.isoformat(), "amount": amount}
    return Award(
        amount,
        f"{action.action} on {_day(action.date)} earns {amount} points",
        message=ACTION_EARNS,
        args=args,
    )


# What `once_per_subject` can honestly promise. "city": once per subject whoever brings it (a
# bike frame is one bike, so one reward per bike). "wallet": once per subject and wallet. A
# node holds no identity that could tell two wallets are one person, so "once per person" is
# not offered: a rule published before the rename with scope "person" is read as "wallet" (the
# same claim key, so nothing already awarded can be awarded again) and explained as such.
SUBJECT_SCOPES = ("city", "wallet")
FORMER_SCOPES = {"person": "wallet"}


def subject_scope(params: dict[str, Any]) -> str:
    scope = str(params.get("scope", "city"))
    return FORMER_SCOPES.get(scope, scope)


def once_per_subject(params: dict[str, Any], subj: SubjectInput, wallet_id: UUID) -> Award:
    scope = subject_scope(params)
    key = subj.subject if scope == "city" else f"{subj.subject}|{wallet_id}"
    amount = int(params["award"])
    label = params.get("subject_label", "subject")
    once = "once per " + label if scope == "city" else f"once per wallet per {label}"
    return Award(
        amount,
        f"{label} {subj.subject} on {_day(subj.date)} earns {amount} ({once})",
        subject_key=key,
        message=SUBJECT_ONCE if scope == "city" else SUBJECT_ONCE_PER_WALLET,
        args={"label": label, "subject": subj.subject, "date": subj.date.isoformat(), "amount": amount},
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
        message=PURCHASE_EARNS,
        args={"amount_cents": buy.amount_cents, "date": buy.date.isoformat(), "bps": bps, "amount": amount},
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
        message=WORK_EARNS,
        args={
            "hours": hours,
            "minutes": minutes,
            "category": work.category,
            "date": work.date.isoformat(),
            "amount": amount,
            "per_hour": per_hour,
        },
    )


I = TypeVar("I", bound=RuleInput)  # noqa: E741


@dataclass(frozen=True)
class Kind(Generic[I]):
    """One rule kind: the input it reads and how it turns that input into an award."""

    model: type[I]
    evaluator: Callable[[Rule, I, Context], Award]

    def parse(self, fields: dict[str, Any]) -> I:
        from pydantic import ValidationError

        try:
            return self.model.model_validate(fields)
        except ValidationError as exc:
            err = exc.errors()[0]
            name = ".".join(str(p) for p in err["loc"]) or "activity"
            problem = (
                "not accepted: this rule needs only " + ", ".join(self.model.model_fields)
                if err["type"] == "extra_forbidden"
                else err["msg"]
            )
            raise InvalidInput(name, problem) from None


def _purchase(rule: Rule, buy: PurchaseInput, context: Context) -> Award:
    if context.merchant_accepts is None:
        raise PreconditionFailed(f"rule {rule.rule_id} rewards purchases, and no merchant was checked")
    context.merchant_accepts(buy.merchant_id, bool(rule.params.get("requires_local_merchant")))
    return percentage_of_amount(rule.params, buy)


def _approved_time(rule: Rule, work: ApprovedTimeInput, context: Context) -> Award:
    if not context.approved_work:
        raise PreconditionFailed(f"rule {rule.rule_id} mints only through an approved work log")
    return per_approved_time(rule.params, work)


KINDS: dict[str, Kind[Any]] = {
    MEASURED_QUANTITY: Kind(
        TripInput, lambda rule, trip, ctx: measured_quantity(rule.params, trip, ctx.carried)
    ),
    FIXED_PER_ACTION: Kind(ActionInput, lambda rule, action, ctx: fixed_per_action(rule.params, action)),
    ONCE_PER_SUBJECT: Kind(
        SubjectInput, lambda rule, subj, ctx: once_per_subject(rule.params, subj, ctx.wallet_id)
    ),
    PERCENTAGE_OF_AMOUNT: Kind(PurchaseInput, _purchase),
    PER_APPROVED_TIME: Kind(ApprovedTimeInput, _approved_time),
}
RULE_KINDS = tuple(KINDS)
INPUT_MODELS: dict[str, type[RuleInput]] = {name: kind.model for name, kind in KINDS.items()}


def parse_input(kind: str, fields: dict[str, Any]) -> RuleInput:
    """The input a kind reads; anything it does not need is refused, naming the field."""
    parsed: RuleInput = KINDS[kind].parse(fields)
    return parsed


def evaluate(rule: Rule, fields: dict[str, Any], context: Context) -> Award:
    """The award for an activity under `rule`: its kind parses the fields, then decides."""
    kind = KINDS[rule.kind]
    award: Award = kind.evaluator(rule, kind.parse(fields), context)
    return award
