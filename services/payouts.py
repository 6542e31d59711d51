"""Shop payouts on a node: a finance officer runs a city's payouts for a period; every shop
with tokens still to be paid out is paid their euro value at the city's published rate
(aggregates/payout.py), in the same atomic save as the run, and the run's SEPA credit
transfer file (pain.001) is built from the shops' registered accounts.

Four eyes: one finance officer proposes the run for a period, another runs (approves) it; only
the run pays. A run is recorded once per city and period: a second run for the same period
finds the first, moves nothing and says so. A city whose tokens have no euro value (`[payouts]
none = ...`) refuses every run with its reason.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.utils import get_topic

from aggregates.errors import InvalidInput, PreconditionFailed
from aggregates.merchant import Merchant
from aggregates.payout import (
    PayoutLine,
    PayoutRun,
    check_after_last_paid,
    euro_cents,
    parse_rate,
    period_end,
)
from services import commands as c
from services.event_log import read_events
from services.payout_files import (
    Transfer,
    check_account_holder,
    check_bic,
    check_iban,
    credit_transfer_file,
    valid_iban,
    writable_name,
)
from services.settings.cities import City, PayoutTerms
from services.unit_of_work import UnitOfWork

Handler = Callable[[Any, UnitOfWork], dict[str, Any]]

MERCHANTS = (get_topic(vars(Merchant)["Registered"]),)
RUNS = (get_topic(vars(PayoutRun)["Proposed"]),)


class CityLike(Protocol):
    key: str
    city: City

    def clock(self) -> dt.datetime: ...


def terms_of(city: City) -> PayoutTerms:
    """The city's payout terms, or the refusal of a city that makes no payouts."""
    terms = city.config.payouts
    if terms is None or terms.none is not None:
        why = terms.none if terms is not None and terms.none else "it publishes no euro value for its tokens"
        raise PreconditionFailed(f"{city.config.name} makes no payouts: {why}")
    return terms


def handlers(app: CityLike, store: Application[UUID]) -> dict[type[c.Command], Handler]:
    def set_bank_account(cmd: c.SetBankAccount, uow: UnitOfWork) -> dict[str, Any]:
        merchant = uow.get(cmd.merchant_id, Merchant, "merchant")
        iban = check_iban(cmd.iban)
        bic = check_bic(cmd.bic) if cmd.bic else ""
        holder = check_account_holder(cmd.account_holder)
        outcome = merchant.set_bank_account(iban, bic, holder, cmd.sole_trader, cmd.changed_by)
        # The account itself is not repeated: receipts keep results, and it may be personal.
        return {
            "merchant_id": str(merchant.id),
            "bank_account_set": outcome != "awaiting_second_entry",
            "awaiting_second_entry": outcome == "awaiting_second_entry",
        }

    def open_period(period: str, uow: UnitOfWork) -> PayoutTerms:
        """The city's terms, once the period is a well-formed one that has ended, after the
        last period paid."""
        terms = terms_of(app.city)
        end = period_end(period, terms.period)
        if end >= app.clock().date():
            raise PreconditionFailed(f"period {period} is not over yet: it ends on {end.isoformat()}")
        done = uow.find(PayoutRun.create_id(app.key, period), PayoutRun)
        if done is None or not done.paid:  # a period paid is answered as such
            check_after_last_paid(period, end, last_paid(uow, terms.period))
        return terms

    def propose(cmd: c.ProposePayoutRun, uow: UnitOfWork) -> dict[str, Any]:
        terms = open_period(cmd.period, uow)
        run_id = PayoutRun.create_id(app.key, cmd.period)
        done = uow.find(run_id, PayoutRun)
        if done is not None:
            return run_result(done, already_run=True)
        proposal = PayoutRun(app.key, cmd.period, cmd.proposed_by)
        # What the approver will pay, and no more: each shop's tokens now, to its account now
        # (the euros at today's rate, shown to the approver; the run pays at its own).
        rate = parse_rate(terms.euro_cents_per_token_unit or "")
        plan = []
        for merchant_id in merchant_ids(store):
            shop = uow.get(merchant_id, Merchant, "merchant")
            if shop.to_pay_out > 0 and valid_iban(shop.iban) and writable_name(shop.account_holder):
                cents, _ = euro_cents(shop.to_pay_out, rate, Fraction(shop.payout_carry))
                plan.append(
                    {
                        "merchant_id": str(shop.id),
                        "tokens": shop.to_pay_out,
                        "cents": cents,
                        "carry": "",
                        "account": shop.account_version,
                    }
                )
        proposal.plan(plan)
        uow.add(proposal)
        return run_result(proposal, already_run=False)

    def run(cmd: c.RunPayouts, uow: UnitOfWork) -> dict[str, Any]:
        terms = open_period(cmd.period, uow)
        run_id = PayoutRun.create_id(app.key, cmd.period)
        proposal = uow.find(run_id, PayoutRun)
        if proposal is None:
            raise PreconditionFailed(
                f"no payout run for {cmd.period} was proposed: one finance officer proposes it "
                "(civfed payouts propose), another runs it"
            )
        if proposal.paid:
            return run_result(proposal, already_run=True)
        proposal.check_approver(cmd.run_by)
        today = app.clock().date()
        rate = parse_rate(terms.euro_cents_per_token_unit or "")
        lines: list[PayoutLine] = []
        skipped: list[str] = []
        transfers: list[Transfer] = []
        for merchant_id in merchant_ids(store):
            shop = uow.get(merchant_id, Merchant, "merchant")
            if shop.to_pay_out <= 0:
                continue
            tokens = proposal.approved_share(shop.id, shop.to_pay_out, shop.account_version)
            if tokens <= 0 or not valid_iban(shop.iban) or not writable_name(shop.account_holder):
                # No account (or an erased one, or one whose holder a transfer cannot name), or
                # none the proposal put up (the account changed since, or the tokens came
                # after): its tokens wait for the next run.
                skipped.append(str(shop.id))
                continue
            cents, carry = euro_cents(tokens, rate, Fraction(shop.payout_carry))
            line = PayoutLine(shop.id, tokens, cents, str(carry), shop.account_version)
            shop.paid_out(run_id, cmd.period, line.tokens, line.cents, line.carry)
            lines.append(line)
            if cents > 0:
                transfers.append(transfer(shop, line, cmd.period, app.city.config.name, Account.of(shop)))
        # Built now so a file the schema refuses stops the run before anything is saved.
        build_file(terms, today, transfers, proposal.message_id(), app.clock())
        proposal.record(str(rate), today.isoformat(), cmd.run_by, [x.as_dict() for x in lines])
        return run_result(proposal, already_run=False, skipped=skipped)

    def last_paid(uow: UnitOfWork, every: str) -> tuple[str, dt.date] | None:
        """The latest period paid, and its last day."""
        ends = []
        for run_id in {event.originator_id for _, event in read_events(store, topics=RUNS)}:
            found = uow.get(run_id, PayoutRun, "payout run")
            if found.paid:
                with contextlib.suppress(InvalidInput):  # a period of another kind of terms
                    ends.append((period_end(found.period, every), found.period))
        return (max(ends)[1], max(ends)[0]) if ends else None

    return {c.SetBankAccount: set_bank_account, c.ProposePayoutRun: propose, c.RunPayouts: run}


def merchant_ids(store: Application[UUID]) -> list[UUID]:
    return [event.originator_id for _, event in read_events(store, topics=MERCHANTS)]


@dataclass(frozen=True)
class Account:
    iban: str
    bic: str
    holder: str

    @classmethod
    def of(cls, shop: Merchant) -> Account:
        return cls(shop.iban, shop.bic, shop.account_holder)


def transfer(shop: Merchant, line: PayoutLine, period: str, city_name: str, account: Account) -> Transfer:
    return Transfer(
        name=account.holder,
        iban=account.iban,
        bic=account.bic,
        cents=line.cents,
        description=f"{city_name} token payout {period}",
        end_to_end_id=f"{period}-{str(shop.id)[:24]}",
    )


def build_file(
    terms: PayoutTerms, execution_date: dt.date, transfers: list[Transfer], message_id: str, at: dt.datetime
) -> bytes:
    return credit_transfer_file(
        terms.debtor_name or "",
        check_iban(terms.debtor_iban or ""),
        check_bic(terms.debtor_bic) if terms.debtor_bic else "",
        execution_date,
        transfers,
        message_id,
        at,
    )


def run_result(run: PayoutRun, already_run: bool, skipped: list[str] | None = None) -> dict[str, Any]:
    """A run as paid, or as proposed: then its lines are what the proposal put up."""
    lines = run.lines if run.paid else (run.planned or [])
    return {
        "run_id": str(run.id),
        "period": run.period,
        "state": "paid" if run.paid else "proposed",
        "proposed_by": run.proposed_by,
        "already_run": already_run,
        "rate": run.rate,
        "execution_date": run.execution_date,
        "recorded_by": run.recorded_by,
        "lines": lines,
        "tokens": sum(int(line["tokens"]) for line in lines),
        "cents": sum(int(line["cents"]) for line in lines),
        "skipped": skipped or [],
    }


class Payouts:
    """Reads for the payout service: the file of a run, the runs, a shop's payouts."""

    def __init__(self, app: CityLike, store: Application[UUID]) -> None:
        self.app, self.store = app, store

    def file(self, run_id: UUID) -> bytes:
        """The run's credit transfer file, from the run and the accounts it paid (each as
        the shop's own record of it has it, opened with its key), even if a shop's account
        changed since: the same bytes every time, its message id the run's."""
        uow = UnitOfWork(self.store, for_reading=True)
        run = uow.get(run_id, PayoutRun, "payout run")
        transfers = []
        for line in run.payout_lines:
            if line.cents > 0:
                shop = uow.get(line.merchant_id, Merchant, "merchant")
                # Runs recorded before lines named the account paid: the shop's account now.
                paid = self.account(shop.id, line.account) if line.account else Account.of(shop)
                transfers.append(transfer(shop, line, run.period, self.app.city.config.name, paid))
        on = dt.date.fromisoformat(run.execution_date)
        return build_file(terms_of(self.app.city), on, transfers, run.message_id(), run.modified_on)

    def account(self, merchant_id: UUID, version: int) -> Account:
        """The shop's account as the `version`-th setting of it recorded it."""
        found = [
            Account(e.iban, e.bic, e.account_holder)
            for e in self.store.repository.event_store.get(merchant_id)
            if isinstance(e, Merchant.BankAccountSet)
        ]
        if not 0 < version <= len(found):
            raise PreconditionFailed(f"shop {merchant_id} has no bank account number {version}")
        return found[version - 1]

    def runs(self) -> list[PayoutRun]:
        uow = UnitOfWork(self.store, for_reading=True)
        ids = [event.originator_id for _, event in read_events(self.store, topics=RUNS)]
        return [uow.get(run_id, PayoutRun, "payout run") for run_id in ids]


FLOWS = tuple(get_topic(kind) for kind in (Merchant.Paid, Merchant.PaymentReversed, Merchant.PaidOut))


@dataclass(frozen=True)
class ShopTotals:
    """Conservation for shops: received - paid_out == balances (what is still to be paid out)."""

    received: int
    paid_out: int
    balances: int

    @property
    def conserved(self) -> bool:
        return self.received - self.paid_out == self.balances


def shop_totals(store: Application[UUID]) -> ShopTotals:
    """From the log: every token shops received (net of reversals) and every token paid out;
    from the shops themselves: what each still has to be paid out."""
    received = paid_out = 0
    for _, e in read_events(store, topics=FLOWS):
        if isinstance(e, Merchant.Paid):
            received += e.amount
        elif isinstance(e, Merchant.PaymentReversed):
            received -= e.amount
        elif isinstance(e, Merchant.PaidOut):
            paid_out += e.amount
    uow = UnitOfWork(store, for_reading=True)
    balances = sum(uow.get(m, Merchant, "merchant").to_pay_out for m in merchant_ids(store))
    return ShopTotals(received, paid_out, balances)
