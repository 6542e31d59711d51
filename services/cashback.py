"""Cashback reported by a shop's till: a purchase, credited through the city's cashback rule.

The till authenticates with its own till credential (`Till(merchant)`, issued by a merchant
administrator): for a till that credential is what a source's signature is for a claim
(services/claims.py), and the award names it the same way, `source` = `till:<merchant>` and
the shop's receipt id as the claim id (sealed with the holder's key, like a claim id).

A purchase is identified by its shop and the shop's receipt id. The command's idempotency key
is derived from the two (`receipt_key`), never from the key the till sent, so the same receipt
reported again, from any till of the shop and under any key, replays the stored result and
credits nothing more; another purchase under a receipt id already used is refused. Only a
shop registered as local earns its customers cashback; any other shop's receipt is refused
with a reason, and that refusal is kept for the receipt too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any, Protocol
from uuid import UUID

from aggregates import rules
from aggregates.errors import DomainError, IdempotencyConflict, InvalidInput, PreconditionFailed
from aggregates.merchant import Merchant
from aggregates.rulebook import Rulebook
from aggregates.source import check_date
from services import commands as c
from services.settings.cities import City
from services.unit_of_work import UnitOfWork


class ReceiptReused(PreconditionFailed):
    """A shop's receipt id already reported for a different purchase."""

    reason = "receipt_reused"


class NotLocalShop(PreconditionFailed):
    """A shop not registered as local: its receipts earn no cashback."""

    reason = "not_local_shop"


class NoCashbackRule(PreconditionFailed):
    """A city whose rulebook has no cashback rule in force."""

    reason = "no_cashback_rule"


class CityLike(Protocol):
    city: City
    key: str
    rulebook: Rulebook

    def clock(self) -> dt.datetime: ...

    def credit_activity(
        self,
        uow: UnitOfWork,
        wallet_id: UUID,
        activity: str,
        fields: dict[str, Any],
        activity_id: str,
        waive_limits: bool = False,
        source: str = "",
        claim_id: str = "",
    ) -> dict[str, Any]: ...


def receipt_key(merchant_id: UUID, receipt_id: str) -> str:
    """The purchase's idempotency key: its shop and a digest of the receipt id. The key is
    stored in the clear with its result, so the receipt id itself is kept only in sealed
    fields, erased with the holder."""
    digest = hashlib.sha256(receipt_id.encode()).hexdigest()[:40]
    return f"till-receipt:{merchant_id}:{digest}"


def report_purchase(
    merchant_id: UUID, receipt_id: str, wallet_id: UUID, amount_cents: int, date: dt.date
) -> c.ReportPurchase:
    """The command for one reported purchase, keyed by its shop and receipt id."""
    key = receipt_key(merchant_id, receipt_id)
    return c.ReportPurchase(key, merchant_id, receipt_id, wallet_id, amount_cents, date.isoformat())


def cashback_activity(book: Rulebook, city_name: str, on: dt.date) -> str:
    """The activity the city's cashback rule (kind `percentage_of_amount`) rewards on `on`."""
    for rule_id, rule in book.rules.items():
        if rule.kind != rules.PERCENTAGE_OF_AMOUNT:
            continue
        found = book.in_force(rule_id, on)
        if found is not None and found.active:
            return found.activity
    raise NoCashbackRule(f"{city_name} has no cashback rule in force on {on.isoformat()}")


def check_not_purchase(book: Rulebook, activity: str, field: str) -> None:
    """Purchases reach the ledger only from the shop's own till, keyed by its receipt id: a
    source's claim about one would be keyed by the source's claim id, and could credit the
    same receipt a second time."""
    if any(r.activity == activity and r.kind == rules.PERCENTAGE_OF_AMOUNT for r in book.rules.values()):
        raise InvalidInput(
            field,
            f"{activity!r} is reported by the shop's own till (CashbackService.ReportPurchase), "
            "once per receipt, not attested by a source",
        )


def till_source(merchant_id: UUID) -> str:
    """How an award credited on a till's report names where it came from."""
    return f"till:{merchant_id}"


def handlers(app: CityLike) -> dict[type[c.Command], Callable[[Any, UnitOfWork], dict[str, Any]]]:
    def report(cmd: c.ReportPurchase, uow: UnitOfWork) -> dict[str, Any]:
        shop = uow.get(cmd.merchant_id, Merchant, "merchant")
        name = app.city.config.name
        if not shop.local:
            raise NotLocalShop(
                f"{shop.name} is not a local shop; {name} cashback is earned only at local shops"
            )
        try:
            on = dt.date.fromisoformat(cmd.date)
        except ValueError:
            raise InvalidInput("date", "a calendar date, e.g. 2026-12-01") from None
        check_date(on, app.clock().date(), app.city.config.claims.max_age_days)
        activity = cashback_activity(app.rulebook, name, on)
        fields = {"amount_cents": cmd.amount_cents, "merchant_id": str(cmd.merchant_id), "date": cmd.date}
        award = app.credit_activity(
            uow,
            cmd.wallet_id,
            activity,
            fields,
            cmd.idempotency_key,
            source=till_source(cmd.merchant_id),
            claim_id=cmd.receipt_id,
        )
        return {**award, "merchant_id": str(cmd.merchant_id), "receipt_id": cmd.receipt_id}

    return {c.ReportPurchase: report}


def refused_report(exc: BaseException) -> DomainError | BaseException:
    """A receipt id already used for another purchase reads as such, not as a reused key."""
    if isinstance(exc, IdempotencyConflict):
        return ReceiptReused("this shop already reported this receipt id for a different purchase")
    return exc
