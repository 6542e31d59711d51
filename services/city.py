"""One event-sourced application per city, built from its config and rulebook."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import ApplicationRecorder, JSONTranscoder, Mapper, Recording
from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import get_topic

from aggregates import rules
from aggregates.errors import DomainError, InvalidInput, NotFound, ParticipantNotAllowed
from aggregates.fund import Fund
from aggregates.merchant import Merchant, Prize
from aggregates.receipt import SubjectClaim
from aggregates.rulebook import Rulebook
from aggregates.voucher import Voucher
from aggregates.wallet import Wallet
from services import access_log, erasure, payouts, prizes
from services import commands as c
from services.appeals import AppealCommands
from services.balances import BalanceView, balance_view
from services.cashback import handlers as cashback_handlers
from services.claims import ClaimCommands, desk_check
from services.clock import Clock as Clock
from services.clock import utcnow as utcnow
from services.commands import Command
from services.funds import FundCommands, fund_ids
from services.identity.credentials import CredentialCommands
from services.lots import new_lot
from services.pg_events import ArraysApplicationRecorder
from services.privacy.keystore import KeyStore, open_keystore
from services.privacy.pseudonyms import Pseudonyms
from services.privacy.sealing import ShreddingMapper
from services.rule_changes import RuleChangeCommands, check_limits, sync_rulebook_file
from services.settings.cities import City
from services.shop_statement import StatementLine, StatementPage, statement_page
from services.transcodings import LotAsDict
from services.unit_of_work import IdempotentExecutor, Job, UnitOfWork
from services.workflow import Workflow

SNAPSHOT_SETTING = "CIVFED_SNAPSHOT_INTERVAL"


def app_name(city: str) -> str:
    """A city application's name: it prefixes the city's tables (events and key store),
    so cities can share one PostgreSQL."""
    return f"civfed_{city}"


class CityApplication(
    AppealCommands, CredentialCommands, RuleChangeCommands, ClaimCommands, FundCommands, Application[UUID]
):
    def __init__(self, city: City, env: dict[str, str] | None = None, clock: Clock = utcnow) -> None:
        self.city = city
        self.key = city.config.key
        self.name = app_name(self.key)
        # Told of every batch of events once it is stored (metrics count saga outcomes here).
        self.saved_listeners: list[Callable[[Sequence[Any]], None]] = []
        # Wallets, funds and shops live for years: a snapshot every CIVFED_SNAPSHOT_INTERVAL
        # of their events bounds what reading one that is not cached replays (sealed: sealing.py).
        every = int((env or {}).get(SNAPSHOT_SETTING) or 0)
        if every > 0:
            # Read from the instance when saving; a setting, so set here, not on the class.
            self.snapshotting_intervals = {Wallet: every, Fund: every, Merchant: every}  # type: ignore[misc]
            env = {**(env or {}), "IS_SNAPSHOTTING_ENABLED": "y"}
        super().__init__(env)
        self.clock = clock
        self.executor = IdempotentExecutor(self, self.key)
        self.pseudonym = Pseudonyms(self.key, self.keys, self._recorded_pseudonym)
        cur = city.config.currency
        self.spending_terms = (cur.local_only, cur.basic_economy_only)
        self._register_award_remedies()
        self.rulebook = self._sync_rulebook()
        terms = city.config.workflow
        self.workflow = Workflow(self, terms) if terms is not None else None
        if self.workflow is not None:
            # A rejected log is appealed like an award; upheld, it mints through the same rule.
            self.appeal_remedies["work_log"] = self.workflow.remedy
        self.handlers = self._command_handlers()
        self.payouts = payouts.Payouts(self, self)
        # Funds and budgets (services/funds.py).
        self.declare_funds()
        self.executor.after_each = self.settle_funds
        self.executor.group_reads = fund_ids(city)

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        """After a save has committed: only stored events reach the listeners."""
        if self.saved_listeners:
            events = [r.domain_event for r in recordings]
            for listener in self.saved_listeners:
                listener(events)

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """eventsourcing's save, taking a group's aggregates without asking of each, twice,
        whether it is an event (a runtime protocol check, slow on Python 3.11: a group saves a
        thousand aggregates). Anything but aggregates goes to eventsourcing's own."""
        if not all(isinstance(obj, BaseAggregate) for obj in objs):
            return super().save(*objs, **kwargs)
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        for aggregate in objs:
            processing.events.extend(aggregate.collect_events())
            processing.aggregates[aggregate.id] = aggregate
        processing.saved_kwargs.update(kwargs)
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        self.notify(processing.events)
        return recordings

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(LotAsDict())  # lots are in a depreciating wallet's snapshots

    def construct_mapper(self) -> Mapper[UUID]:
        """Personal fields are sealed with their owner's key (see services/privacy/sealing.py)."""
        transcoder = self.construct_transcoder()
        self.keys: KeyStore | None = None
        if self.env.get("CIVFED_PERSONAL_ENCRYPTION", "on") == "off":  # benchmarks compare both
            return self.factory.mapper(transcoder=transcoder)
        self.keys = open_keystore(self.env, self.name)
        return ShreddingMapper(transcoder, self.keys)

    def construct_recorder(self) -> ApplicationRecorder:
        """On PostgreSQL, events are written as plain arrays (services/pg_events.py), unless
        the environment names another recorder."""
        topic = self.factory.APPLICATION_RECORDER_TOPIC
        if isinstance(self.factory, PostgresFactory) and not self.factory.env.get(topic):
            self.factory.env[topic] = get_topic(ArraysApplicationRecorder)
        return super().construct_recorder()

    def _sync_rulebook(self) -> Rulebook:
        """The rulebook file at start: the founding version of a new city; afterwards an
        edited file only proposes its changes (services/rule_changes.py)."""
        book = sync_rulebook_file(self, self.city, self.clock())
        self.save(book)
        return book

    def refresh_rulebook(self) -> Rulebook:
        """The rulebook as stored, after an approved change (here or at another process of
        the city); kept as it is when nothing changed."""
        stored = UnitOfWork(self).get(Rulebook.create_id(self.key), Rulebook, "rulebook")
        if stored.version != self.rulebook.version:
            self.rulebook = stored
        return self.rulebook

    # -- execution: a command (services/commands.py) runs by its handler below ----
    def job(self, command: Command | Job) -> Job:
        """The command paired with this city's handler for it, ready to run."""
        if isinstance(command, Job):
            return command
        handle = self.handlers.get(type(command))
        if handle is None:
            raise NotFound(f"{self.city.config.name} runs no {command.name} commands")
        return Job.of(command, handle)

    def execute(self, cmd: Command | Job) -> dict[str, Any]:
        return self.executor.run(self.job(cmd))

    def execute_group(self, cmds: Sequence[Command | Job]) -> list[dict[str, Any] | DomainError]:
        """Group commit: all commands in one transaction; errors are returned per command."""
        return self.executor.run_group([self.job(cmd) for cmd in cmds])

    def _command_handlers(self) -> dict[type[Command], Callable[[Any, UnitOfWork], dict[str, Any]]]:
        handlers: dict[type[Command], Callable[[Any, UnitOfWork], dict[str, Any]]] = {
            c.OpenWallet: self._open_wallet,
            c.RecordActivity: self._record_activity,
            c.RecordDeskActivity: self._record_desk_activity,
            c.RegisterMerchant: self._register_merchant,
            c.Spend: self._spend,
            c.OfferPrize: self._offer_prize,
            c.ClaimPrize: self._claim_prize,
            c.IssueVoucher: self._issue_voucher,
            c.RedeemVoucher: self._redeem_voucher,
            c.CloseWallet: self._close_wallet,
            c.FinishClosing: self._finish_closing,
            c.ExpireWallet: self._expire_wallet,
            c.EraseWallet: self._erase_wallet,
            c.FileAppeal: self._file_appeal,
            c.DecideAppeal: self._decide_appeal,
            c.IssueCredential: self._issue_credential,
            c.RevokeCredential: self._revoke_credential,
            c.RotateCredential: self._rotate_credential,
            c.RequestRecovery: self._request_recovery,
            c.ApproveRecovery: self._approve_recovery,
            c.IssueTillCredential: self._issue_till_credential,
        }
        handlers.update(self.claim_handlers())
        handlers.update(cashback_handlers(self))
        if self.workflow is not None:
            handlers.update(self.workflow.handlers())
        handlers.update(self.rule_change_handlers())
        handlers.update(access_log.handlers(self))
        handlers.update(erasure.handlers(self))
        handlers.update(prizes.handlers(self))
        handlers.update(payouts.handlers(self, self))
        handlers.update(self.fund_handlers())
        return handlers

    def add_handlers(
        self, handlers: dict[type[Command], Callable[[Any, UnitOfWork], dict[str, Any]]]
    ) -> None:
        """Handlers of commands run by a part built on this application (cross-city
        redemption: services/federation), so `execute` runs those commands like its own."""
        self.handlers.update(handlers)

    # -- commands: builders (the public API) ------------------------------------
    def open_wallet(
        self, key: str, participant_kind: str, consent_version: str, valid_until: dt.datetime | None = None
    ) -> Job:
        return self.job(c.OpenWallet(key, participant_kind, consent_version, valid_until))

    def record_activity(
        self,
        key: str,
        wallet_id: UUID,
        activity: str,
        fields: dict[str, Any],
        activity_id: str | None = None,
        recorded_by: str | None = None,
    ) -> Job:
        """With `recorded_by` (a staff member, as authenticated): the desk path."""
        if recorded_by is not None:
            return self.job(c.RecordDeskActivity(key, wallet_id, activity, fields, activity_id, recorded_by))
        return self.job(c.RecordActivity(key, wallet_id, activity, fields, activity_id))

    def register_merchant(
        self, key: str, name: str, category: str, local: bool, basic_economy: bool = False
    ) -> Job:
        return self.job(c.RegisterMerchant(key, name, category, local, basic_economy))

    def spend(self, key: str, wallet_id: UUID, merchant_id: UUID, amount: int, purchase_ref: str) -> Job:
        return self.job(c.Spend(key, wallet_id, merchant_id, amount, purchase_ref))

    def offer_prize(self, key: str, merchant_id: UUID, name: str, cost: int, stock: int) -> Job:
        return self.job(c.OfferPrize(key, merchant_id, name, cost, stock))

    def claim_prize(self, key: str, wallet_id: UUID, prize_id: UUID) -> Job:
        return self.job(c.ClaimPrize(key, wallet_id, prize_id))

    def issue_voucher(self, key: str, wallet_id: UUID, amount: int) -> Job:
        return self.job(c.IssueVoucher(key, wallet_id, amount))

    def redeem_voucher(self, key: str, voucher_id: UUID, merchant_id: UUID) -> Job:
        return self.job(c.RedeemVoucher(key, voucher_id, merchant_id))

    def close_wallet(self, key: str, wallet_id: UUID, reason: str = "opted out") -> Job:
        return self.job(c.CloseWallet(key, wallet_id, reason))

    # -- commands: handlers (each reads its command and nothing else) ------------
    def _open_wallet(self, cmd: c.OpenWallet, uow: UnitOfWork) -> dict[str, Any]:
        cfg = self.city.config
        if cmd.participant_kind not in cfg.participant_kinds:
            raise ParticipantNotAllowed(f"{cfg.name} does not enrol {cmd.participant_kind} wallets")
        if cmd.consent_version not in cfg.consent_versions:
            raise InvalidInput(
                "consent_version", f"unknown consent text; current: {cfg.consent_versions[-1]}"
            )
        wallet = Wallet.open(
            self.key, cmd.participant_kind, cmd.consent_version, cmd.valid_until, cfg.final_spend_days
        )
        now = self.clock()
        valid_until = cmd.valid_until
        if valid_until is not None and not now < valid_until <= now + dt.timedelta(days=cfg.tourist_max_days):
            raise InvalidInput("valid_until", f"must be ahead, at most {cfg.tourist_max_days} days")
        uow.add(wallet)
        return {"wallet_id": str(wallet.id)}

    def _record_activity(self, cmd: c.RecordActivity, uow: UnitOfWork) -> dict[str, Any]:
        activity_id = cmd.activity_id or cmd.idempotency_key
        return self.credit_activity(uow, cmd.wallet_id, cmd.activity, cmd.fields, activity_id)

    def _record_desk_activity(self, cmd: c.RecordDeskActivity, uow: UnitOfWork) -> dict[str, Any]:
        """Staff at a desk: only the city's desk activities, and the award names them."""
        desk_check(self.city, cmd.activity)
        activity_id = cmd.activity_id or cmd.idempotency_key
        fields, by = cmd.fields, cmd.recorded_by
        return self.credit_activity(uow, cmd.wallet_id, cmd.activity, fields, activity_id, source=by)

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
    ) -> dict[str, Any]:
        """The normal rule path: checks first, then the credit (used by appeals too).
        `waive_limits`: an upheld appeal against a cap or date refusal credits past it.
        `source` and `claim_id` say where the award came from: a registered source and its
        claim id, or the staff member who recorded it at a desk."""
        # The version in force on the activity's own date decides.
        on = rules.parse_input(self.rulebook.kind_of(activity), fields).date
        rule = self.rulebook.for_activity(activity, on)
        wallet = uow.get(wallet_id, Wallet, "wallet")
        now = self.clock()
        rule.check_covers(wallet, now)

        def merchant_accepts(merchant_id: UUID, local_only: bool) -> None:
            uow.get(merchant_id, Merchant, "merchant").check_accepts(local_only=local_only)

        award = rules.evaluate(rule, fields, rules.Context.of(rule, wallet, merchant_accepts))
        claim = None
        if award.subject_key is not None:
            digest = SubjectClaim.digest(award.subject_key)
            marker_id = SubjectClaim.create_id(self.key, rule.rule_id, digest)
            SubjectClaim.check_unclaimed(uow.find(marker_id, SubjectClaim), rule.rule_id)
            claim = SubjectClaim(self.key, rule.rule_id, digest, wallet.id)
        if not waive_limits:
            check_limits(wallet, rule, on, award.amount, activity_id)
        fund = self.draw_for(uow, wallet, rule, award.amount, activity_id, on, appealed=waive_limits)
        if claim is not None:
            uow.add(claim)
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
            on=on,
            source=source,
            claim_id=claim_id,
            fund=fund,
            explanation_id=award.message,
            explanation_args=award.args,
        )
        return {
            "amount": award.amount,
            "rule_id": rule.rule_id,
            "rule_version": rule.version,
            "explanation": award.explanation,
            # The same in any language: services/i18n/explanations.py renders it.
            "explanation_id": award.message,
            "explanation_args": award.args,
        }

    def _register_merchant(self, cmd: c.RegisterMerchant, uow: UnitOfWork) -> dict[str, Any]:
        categories = self.city.config.merchant_categories
        merchant = Merchant.admit(
            self.key, cmd.merchant_name, cmd.category, cmd.local, cmd.basic_economy, categories
        )
        uow.add(merchant)
        return {"merchant_id": str(merchant.id)}

    def _spend(self, cmd: c.Spend, uow: UnitOfWork) -> dict[str, Any]:
        merchant = uow.get(cmd.merchant_id, Merchant, "merchant")
        merchant.check_accepts(*self.spending_terms)
        wallet = uow.get(cmd.wallet_id, Wallet, "wallet")
        wallet.spend(cmd.amount, merchant.id, cmd.purchase_ref, self.clock(), merchant.category)
        merchant.paid(cmd.amount, "payment")
        return {"spent": cmd.amount, "available": wallet.available}

    def _offer_prize(self, cmd: c.OfferPrize, uow: UnitOfWork) -> dict[str, Any]:
        uow.get(cmd.merchant_id, Merchant, "merchant")
        prize = Prize.offer(self.key, cmd.merchant_id, cmd.prize_name, cmd.cost, cmd.stock)
        uow.add(prize)
        return {"prize_id": str(prize.id)}

    def _claim_prize(self, cmd: c.ClaimPrize, uow: UnitOfWork) -> dict[str, Any]:
        prize = uow.get(cmd.prize_id, Prize, "prize")
        prize.check_in_stock()
        wallet = uow.get(cmd.wallet_id, Wallet, "wallet")
        merchant = uow.get(prize.merchant_id, Merchant, "merchant")
        wallet.spend(prize.cost, merchant.id, f"prize:{prize.id}", self.clock(), merchant.category, "prize")
        merchant.paid(prize.cost, "prize", str(prize.id))
        prize.claim(wallet.id)
        return {"prize_id": str(prize.id), "cost": prize.cost}

    def _issue_voucher(self, cmd: c.IssueVoucher, uow: UnitOfWork) -> dict[str, Any]:
        wallet = uow.get(cmd.wallet_id, Wallet, "wallet")
        now = self.clock()
        expires = now + dt.timedelta(hours=self.city.config.voucher_ttl_hours)
        hold_id = str(uuid4())
        wallet.place_hold(hold_id, cmd.amount, expires, "voucher", now)
        voucher = Voucher(self.key, wallet.id, hold_id, cmd.amount, expires)
        uow.add(voucher)
        return {
            "voucher_id": str(voucher.id),
            "qr": voucher.qr_payload,
            "amount": cmd.amount,
            "expires_at": expires.isoformat(),
        }

    def _redeem_voucher(self, cmd: c.RedeemVoucher, uow: UnitOfWork) -> dict[str, Any]:
        merchant = uow.get(cmd.merchant_id, Merchant, "merchant")
        merchant.check_accepts(*self.spending_terms)
        voucher = uow.get(cmd.voucher_id, Voucher, "voucher")
        now = self.clock()
        wallet = uow.get(voucher.wallet_id, Wallet, "wallet")
        wallet.check_active(now)
        voucher.check_redeemable(now)
        wallet.spend_hold(voucher.hold_id, merchant.id, f"voucher:{voucher.id}", now, merchant.category)
        merchant.paid(voucher.amount, "voucher", str(voucher.id))
        voucher.redeem(merchant.id)
        return {"amount": voucher.amount, "merchant_id": str(merchant.id)}

    def _close_wallet(self, cmd: c.CloseWallet, uow: UnitOfWork) -> dict[str, Any]:
        wallet = uow.get(cmd.wallet_id, Wallet, "wallet")
        wallet.leave(self.clock(), self.city.config.final_spend_days, cmd.reason)
        closes = wallet.closes_at.isoformat() if wallet.closes_at and not wallet.closed else None
        return {"closed": wallet.closed, "balance": wallet.balance, "final_spend_until": closes}

    def _finish_closing(self, cmd: c.FinishClosing, uow: UnitOfWork) -> dict[str, Any]:
        wallet = uow.get(cmd.wallet_id, Wallet, "wallet")
        now = self.clock()
        lapsed = wallet.balance
        if wallet.closes_at is None and wallet.expired(now):
            wallet.expire(now)  # a validity end not yet recorded: recorded first
            if wallet.closed:
                return {"closed": True, "lapsed": lapsed}
        wallet.check_closing_due(now)
        wallet.finish("final spend window ended", now)
        return {"closed": True, "lapsed": lapsed}

    def _expire_wallet(self, cmd: c.ExpireWallet, uow: UnitOfWork) -> dict[str, Any]:
        wallet = uow.get(cmd.wallet_id, Wallet, "wallet")
        wallet.expire(self.clock())
        closes = wallet.closes_at.isoformat() if wallet.closes_at and not wallet.closed else None
        return {"closed": wallet.closed, "balance": wallet.balance, "final_spend_until": closes}

    def _erase_wallet(self, cmd: c.EraseWallet, uow: UnitOfWork) -> dict[str, Any]:
        wallet = uow.get(cmd.wallet_id, Wallet, "wallet")
        erasure.erase_in(wallet, cmd.reason, self.clock(), self.pseudonym(wallet.id))
        return {"erased": True}

    def close(self) -> None:
        super().close()
        if self.keys is not None:
            self.keys.close()

    def owner_pseudonym(self, aggregate_id: UUID) -> str | None:
        """The pseudonym of the wallet owning another aggregate (an appeal), if any."""
        return self.pseudonym.of_owner(aggregate_id)

    def prefetch_pseudonyms(self, wallet_ids: Iterable[UUID]) -> None:
        """Read the keys of many wallets in as few queries as can be, before naming them."""
        self.pseudonym.prefetch(wallet_ids)

    def public_domain_event(self, stored: Any) -> Any:
        """A stored event decoded for publishing: personal fields no public event carries
        stay sealed (services/privacy/sealing.py)."""
        if isinstance(self.mapper, ShreddingMapper):
            return self.mapper.to_public_domain_event(stored)
        return self.mapper.to_domain_event(stored)

    def _recorded_pseudonym(self, wallet_id: UUID) -> str | None:
        """The pseudonym the wallet's erasure recorded (its key is gone)."""
        try:
            found = self.repository.get(wallet_id)
        except AggregateNotFoundError:
            return None
        return str(found.pseudonym) if isinstance(found, Wallet) and found.pseudonym else None

    # -- queries --------------------------------------------------------------
    def wallet(self, wallet_id: UUID) -> Wallet:
        return UnitOfWork(self).get(wallet_id, Wallet, "wallet")

    def balance_view(self, wallet_id: UUID) -> BalanceView:
        """The wallet's value today, what is held, and any published depreciation schedule."""
        wallet = UnitOfWork(self, for_reading=True).get(wallet_id, Wallet, "wallet")
        return balance_view(wallet, self.clock().date(), self.workflow is not None)

    def statement(self, merchant_id: UUID) -> list[StatementLine]:
        """What a shop was paid, from its own event stream: one read however long the city's
        log grows, and with no wallet in it."""
        UnitOfWork(self, for_reading=True).get(merchant_id, Merchant, "merchant")
        lines = []
        for e in self.repository.event_store.get(merchant_id):
            if isinstance(e, Merchant.Paid):
                lines.append(StatementLine(e.kind, e.reference, e.amount, e.timestamp))
            elif isinstance(e, Merchant.PaymentReversed):
                lines.append(StatementLine("reversal", e.reference, -e.amount, e.timestamp))
        return lines

    def statement_page(
        self, merchant_id: UUID, size: int, token: str = "", newest_first: bool = False
    ) -> StatementPage:
        """One page of a shop's statement with its running totals: the shop comes from its
        latest snapshot, and only the page's events are read."""
        shop = UnitOfWork(self, for_reading=True).get(merchant_id, Merchant, "merchant")
        return statement_page(shop, self.repository.event_store, size, token, newest_first)
