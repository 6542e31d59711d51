"""One event-sourced application per city, built from its config and rulebook."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import Application
from eventsourcing.persistence import Mapper

from aggregates import rules
from aggregates.errors import DomainError, InvalidInput, ParticipantNotAllowed, PreconditionFailed
from aggregates.merchant import Merchant, Prize
from aggregates.receipt import SubjectClaim
from aggregates.rulebook import Rule, Rulebook
from aggregates.voucher import Voucher
from aggregates.wallet import Wallet
from services.appeals import AppealCommands
from services.balances import BalanceView, balance_view
from services.lots import new_lot
from services.privacy.keystore import KeyStore, open_keystore
from services.privacy.sealing import ShreddingMapper
from services.settings.cities import City
from services.unit_of_work import Command, IdempotentExecutor, UnitOfWork
from services.workflow import Workflow

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class StatementLine:
    kind: str  # one of PAYMENT_KINDS, or "reversal"
    reference: str
    amount: int
    at: dt.datetime


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def app_name(city: str) -> str:
    """A city application's name: it prefixes the city's tables (events and key store),
    so cities can share one PostgreSQL."""
    return f"civfed_{city}"


class CityApplication(AppealCommands, Application[UUID]):
    def __init__(self, city: City, env: dict[str, str] | None = None, clock: Clock = utcnow) -> None:
        self.city = city
        self.key = city.config.key
        self.name = app_name(self.key)
        super().__init__(env)
        self.clock = clock
        self.executor = IdempotentExecutor(self, self.key)
        cur = city.config.currency
        self.spending_terms = (cur.local_only, cur.basic_economy_only)
        self._register_award_remedies()
        self.rulebook = self._sync_rulebook()
        terms = city.config.workflow
        self.workflow = Workflow(self, terms) if terms is not None else None
        if self.workflow is not None:
            # A rejected log is appealed like an award; upheld, it mints through the same rule.
            self.appeal_remedies["work_log"] = self.workflow.remedy

    def construct_mapper(self) -> Mapper[UUID]:
        """Personal fields are sealed with their owner's key (see services/privacy/sealing.py)."""
        transcoder = self.construct_transcoder()
        self.keys: KeyStore | None = None
        if self.env.get("CIVFED_PERSONAL_ENCRYPTION", "on") == "off":  # benchmarks compare both
            return self.factory.mapper(transcoder=transcoder)
        self.keys = open_keystore(self.env, self.name)
        return ShreddingMapper(transcoder, self.keys)

    def _sync_rulebook(self) -> Rulebook:
        """Publish the rulebook file: new rules, changed versions, retirements."""
        rulebook_id = Rulebook.create_id(self.key)
        uow = UnitOfWork(self)
        book = uow.find(rulebook_id, Rulebook) or Rulebook(self.key)
        for spec in self.city.rules:
            rule = Rule(spec.id, spec.kind, spec.activity, 0, spec.params, spec.conditions)
            book.publish(rule, spec.published_by, spec.reason)
        wanted = {spec.id for spec in self.city.rules}
        for rule_id, rule in list(book.rules.items()):
            if rule.active and rule_id not in wanted:
                book.retire(rule_id, "rulebook file", "removed from the published rulebook file")
        self.save(book)
        return book

    # -- execution: commands below are built, then executed singly or grouped --
    def execute(self, cmd: Command) -> dict[str, Any]:
        return self.executor.run(cmd)

    def execute_group(self, cmds: Sequence[Command]) -> list[dict[str, Any] | DomainError]:
        """Group commit: all commands in one transaction; errors are returned per command."""
        return self.executor.run_group(cmds)

    # -- commands -------------------------------------------------------------
    def open_wallet(
        self, key: str, participant_kind: str, consent_version: str, valid_until: dt.datetime | None = None
    ) -> Command:
        cfg = self.city.config

        def handle(uow: UnitOfWork) -> dict[str, Any]:
            if participant_kind not in cfg.participant_kinds:
                raise ParticipantNotAllowed(f"{cfg.name} does not enrol {participant_kind} wallets")
            if consent_version not in cfg.consent_versions:
                raise InvalidInput(
                    "consent_version", f"unknown consent text; current: {cfg.consent_versions[-1]}"
                )
            wallet = Wallet.open(self.key, participant_kind, consent_version, valid_until)
            now = self.clock()
            if valid_until is not None and not now < valid_until <= now + dt.timedelta(
                days=cfg.tourist_max_days
            ):
                raise InvalidInput("valid_until", f"must be ahead, at most {cfg.tourist_max_days} days")
            uow.add(wallet)
            return {"wallet_id": str(wallet.id)}

        params = {"kind": participant_kind, "consent": consent_version, "until": valid_until}
        return Command("open_wallet", key, params, handle)

    def record_activity(
        self, key: str, wallet_id: UUID, activity: str, fields: dict[str, Any], activity_id: str | None = None
    ) -> Command:
        def handle(uow: UnitOfWork) -> dict[str, Any]:
            return self.credit_activity(uow, wallet_id, activity, fields, activity_id or key)

        params = {"wallet": wallet_id, "activity": activity, "fields": fields, "id": activity_id}
        return Command("record_activity", key, params, handle)

    def credit_activity(
        self, uow: UnitOfWork, wallet_id: UUID, activity: str, fields: dict[str, Any], activity_id: str
    ) -> dict[str, Any]:
        """The normal rule path: checks first, then the credit (used by appeals too)."""
        rule = self.rulebook.for_activity(activity)
        wallet = uow.get(wallet_id, Wallet, "wallet")
        now = self.clock()
        wallet.check_earning(now)
        if not rule.allows(wallet.participant_kind):
            raise ParticipantNotAllowed(
                f"rule {rule.rule_id} does not cover {wallet.participant_kind} wallets"
            )
        award = self._evaluate(uow, rule, wallet, rules.parse_input(rule.kind, fields))
        if award.subject_key is not None:
            digest = SubjectClaim.digest(award.subject_key)
            claim_id = SubjectClaim.create_id(self.key, rule.rule_id, digest)
            SubjectClaim.check_unclaimed(uow.find(claim_id, SubjectClaim), rule.rule_id)
            uow.add(SubjectClaim(self.key, rule.rule_id, digest, wallet.id))
        carry_key = rule.rule_id if award.carried_after is not None else None
        wallet.credit(
            award.amount,
            rule.rule_id,
            rule.version,
            activity_id,
            award.explanation,
            carry_key,
            award.carried_after,
            award.quantity,
            lot=new_lot(self.city.config.currency, now),
        )
        return {
            "amount": award.amount,
            "rule_id": rule.rule_id,
            "rule_version": rule.version,
            "explanation": award.explanation,
        }

    def _evaluate(self, uow: UnitOfWork, rule: Rule, wallet: Wallet, inp: rules._Input) -> rules.Award:
        if isinstance(inp, rules.TripInput):
            return rules.measured_quantity(rule.params, inp, wallet.carried.get(rule.rule_id, 0))
        if isinstance(inp, rules.ActionInput):
            return rules.fixed_per_action(rule.params, inp)
        if isinstance(inp, rules.SubjectInput):
            return rules.once_per_subject(rule.params, inp, wallet.id)
        if isinstance(inp, rules.ApprovedTimeInput):
            raise PreconditionFailed(f"rule {rule.rule_id} mints only through an approved work log")
        assert isinstance(inp, rules.PurchaseInput)
        merchant = uow.get(inp.merchant_id, Merchant, "merchant")
        merchant.check_accepts(local_only=bool(rule.params.get("requires_local_merchant")))
        return rules.percentage_of_amount(rule.params, inp)

    def register_merchant(
        self, key: str, name: str, category: str, local: bool, basic_economy: bool = False
    ) -> Command:
        def handle(uow: UnitOfWork) -> dict[str, Any]:
            merchant = Merchant.admit(
                self.key, name, category, local, basic_economy, self.city.config.merchant_categories
            )
            uow.add(merchant)
            return {"merchant_id": str(merchant.id)}

        params = {"name": name, "category": category, "local": local, "basic": basic_economy}
        return Command("register_merchant", key, params, handle)

    def spend(self, key: str, wallet_id: UUID, merchant_id: UUID, amount: int, purchase_ref: str) -> Command:
        def handle(uow: UnitOfWork) -> dict[str, Any]:
            merchant = uow.get(merchant_id, Merchant, "merchant")
            merchant.check_accepts(*self.spending_terms)
            wallet = uow.get(wallet_id, Wallet, "wallet")
            wallet.spend(amount, merchant.id, purchase_ref, self.clock(), merchant.category)
            merchant.paid(amount, "payment")
            return {"spent": amount, "available": wallet.available}

        params = {"wallet": wallet_id, "merchant": merchant_id, "amount": amount, "ref": purchase_ref}
        return Command("spend", key, params, handle)

    def offer_prize(self, key: str, merchant_id: UUID, name: str, cost: int, stock: int) -> Command:
        def handle(uow: UnitOfWork) -> dict[str, Any]:
            uow.get(merchant_id, Merchant, "merchant")
            prize = Prize.offer(self.key, merchant_id, name, cost, stock)
            uow.add(prize)
            return {"prize_id": str(prize.id)}

        params = {"merchant": merchant_id, "name": name, "cost": cost, "stock": stock}
        return Command("offer_prize", key, params, handle)

    def claim_prize(self, key: str, wallet_id: UUID, prize_id: UUID) -> Command:
        def handle(uow: UnitOfWork) -> dict[str, Any]:
            prize = uow.get(prize_id, Prize, "prize")
            prize.check_in_stock()
            wallet = uow.get(wallet_id, Wallet, "wallet")
            merchant = uow.get(prize.merchant_id, Merchant, "merchant")
            wallet.spend(
                prize.cost, merchant.id, f"prize:{prize.id}", self.clock(), merchant.category, "prize"
            )
            merchant.paid(prize.cost, "prize", str(prize.id))
            prize.claim(wallet.id)
            return {"prize_id": str(prize.id), "cost": prize.cost}

        return Command("claim_prize", key, {"wallet": wallet_id, "prize": prize_id}, handle)

    def issue_voucher(self, key: str, wallet_id: UUID, amount: int) -> Command:
        def handle(uow: UnitOfWork) -> dict[str, Any]:
            wallet = uow.get(wallet_id, Wallet, "wallet")
            now = self.clock()
            expires = now + dt.timedelta(hours=self.city.config.voucher_ttl_hours)
            hold_id = str(uuid4())
            wallet.place_hold(hold_id, amount, expires, "voucher", now)
            voucher = Voucher(self.key, wallet.id, hold_id, amount, expires)
            uow.add(voucher)
            return {
                "voucher_id": str(voucher.id),
                "qr": voucher.qr_payload,
                "amount": amount,
                "expires_at": expires.isoformat(),
            }

        return Command("issue_voucher", key, {"wallet": wallet_id, "amount": amount}, handle)

    def redeem_voucher(self, key: str, voucher_id: UUID, merchant_id: UUID) -> Command:
        def handle(uow: UnitOfWork) -> dict[str, Any]:
            merchant = uow.get(merchant_id, Merchant, "merchant")
            merchant.check_accepts(*self.spending_terms)
            voucher = uow.get(voucher_id, Voucher, "voucher")
            now = self.clock()
            wallet = uow.get(voucher.wallet_id, Wallet, "wallet")
            wallet.check_active(now)
            voucher.check_redeemable(now)
            wallet.spend_hold(voucher.hold_id, merchant.id, f"voucher:{voucher.id}", now, merchant.category)
            merchant.paid(voucher.amount, "voucher", str(voucher.id))
            voucher.redeem(merchant.id)
            return {"amount": voucher.amount, "merchant_id": str(merchant.id)}

        return Command("redeem_voucher", key, {"voucher": voucher_id, "merchant": merchant_id}, handle)

    def close_wallet(self, key: str, wallet_id: UUID, reason: str = "opted out") -> Command:
        def handle(uow: UnitOfWork) -> dict[str, Any]:
            wallet = uow.get(wallet_id, Wallet, "wallet")
            wallet.leave(self.clock(), self.city.config.final_spend_days, reason)
            closes = wallet.closes_at.isoformat() if wallet.closes_at and not wallet.closed else None
            return {"closed": wallet.closed, "balance": wallet.balance, "final_spend_until": closes}

        return Command("close_wallet", key, {"wallet": wallet_id, "reason": reason}, handle)

    def close(self) -> None:
        super().close()
        if self.keys is not None:
            self.keys.close()

    # -- queries --------------------------------------------------------------
    def wallet(self, wallet_id: UUID) -> Wallet:
        return UnitOfWork(self).get(wallet_id, Wallet, "wallet")

    def balance_view(self, wallet_id: UUID) -> BalanceView:
        """The wallet's value today, what is held, and any published depreciation schedule."""
        return balance_view(self.wallet(wallet_id), self.clock().date(), self.workflow is not None)

    def statement(self, merchant_id: UUID) -> list[StatementLine]:
        """What a shop was paid, from its own event stream: one read however long the city's
        log grows, and with no wallet in it."""
        UnitOfWork(self).get(merchant_id, Merchant, "merchant")
        lines = []
        for e in self.repository.event_store.get(merchant_id):
            if isinstance(e, Merchant.Paid):
                lines.append(StatementLine(e.kind, e.reference, e.amount, e.timestamp))
            elif isinstance(e, Merchant.PaymentReversed):
                lines.append(StatementLine("reversal", e.reference, -e.amount, e.timestamp))
        return lines
