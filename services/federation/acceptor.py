"""Accepting side of cross-city redemption: the saga a shop's voucher starts.

Started → (home reserves) Reserved → MerchantCredited → (home commits) Committed.
A refusal ends it as Refused; a commit the home refuses (its hold lapsed)
reverses the credit. Every step is an event; each step first checks the state it
expects, so repeating a call, or resuming after a crash, moves the saga on
without doing any step twice. The saga's id comes from the voucher, so one
voucher is one saga.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eventsourcing.persistence import IntegrityError

from aggregates.errors import DomainError, NoAgreement, PreconditionFailed, VoucherAlreadyRedeemed
from aggregates.merchant import Merchant
from aggregates.redemption import DailyAllowance, ForeignRedemption, check_buys_something
from civfed.v1 import federation_pb2
from services.city import CityApplication
from services.federation.vouchers import peek_home, verify
from services.grpc.client import PartnerClient
from services.grpc.errors import PartnerRefused
from services.unit_of_work import Command, ConcurrentUpdate, UnitOfWork

ACCEPTED = federation_pb2.DECISION_ACCEPTED


@dataclass(frozen=True)
class Partner:
    public_key: Ed25519PublicKey
    client: PartnerClient


class Acceptor:
    def __init__(
        self,
        app: CityApplication,
        partners: Mapping[str, Partner],
        lock: threading.Lock,
        execute: Callable[[Command], dict[str, Any]],
    ) -> None:
        self.app = app
        self.key = app.key
        self.partners = partners
        self.lock = lock
        self.execute = execute

    def _step(self, fn: Callable[[UnitOfWork], Any]) -> Any:
        """One local step, saved atomically; a concurrent writer means read and try again."""
        for _ in range(5):
            uow = UnitOfWork(self.app)
            with self.lock:
                result = fn(uow)
                try:
                    self.app.save(*uow.changed())
                except IntegrityError:
                    continue
            return result
        raise ConcurrentUpdate("too many concurrent updates; retry with the same key")

    def start(self, key: str, merchant_id: UUID, token: str) -> Command:
        """Check the voucher and the terms, count it against the daily cap, open the saga."""
        home = peek_home(token)
        terms = self.app.city.config.federation.accepts.get(home)
        partner = self.partners.get(home)
        if terms is None or partner is None:
            raise NoAgreement(f"{self.app.city.config.name} does not accept tokens from {home}")
        voucher = verify(token, partner.public_key)

        def handle(uow: UnitOfWork) -> dict[str, Any]:
            merchant = uow.get(merchant_id, Merchant, "merchant")
            saga_id = ForeignRedemption.create_id(self.key, home, voucher.voucher_id)
            if uow.find(saga_id, ForeignRedemption) is not None:
                # The same sale retried with its own key replays its receipt before this
                # point; any other sale, at this shop or another, is a second presentation.
                raise VoucherAlreadyRedeemed("voucher was already presented")
            now = self.app.clock()
            voucher.check_unexpired(now)
            # Refused before anything is held: a credit of nothing would burn the holder's tokens.
            credit = check_buys_something(
                voucher.amount, terms.rate_numerator, terms.rate_denominator, self.app.city.config.name
            )
            day = now.date().isoformat()
            allowance_id = DailyAllowance.create_id(self.key, home, day)
            allowance = uow.find(allowance_id, DailyAllowance) or DailyAllowance(self.key, home, day)
            allowance.check_room(voucher.amount, terms.per_redemption_cap, terms.daily_cap)
            allowance.use(voucher.amount)
            uow.add(allowance)
            uow.add(
                ForeignRedemption(
                    self.key,
                    home,
                    voucher.voucher_id,
                    merchant.id,
                    voucher.amount,
                    credit,
                    terms.rate_numerator,
                    terms.rate_denominator,
                    now.date().isoformat(),
                )
            )
            return {"saga_id": str(saga_id)}

        return Command("accept_foreign_voucher", key, {"merchant": merchant_id, "token": token}, handle)

    def advance(self, saga_id: UUID, token: str | None = None) -> ForeignRedemption:
        """Move the saga on until it is finished, or a partner cannot be reached."""
        while True:
            saga = UnitOfWork(self.app).get(saga_id, ForeignRedemption, "redemption")
            partner = self.partners[saga.home]
            if saga.state == "started":
                if token is None:
                    # Only a shop holds the token; without it, the home hold simply lapses.
                    self._refuse(saga_id, "started", "voucher not presented again")
                    continue
                try:
                    answer = partner.client.reserve(f"reserve:{saga_id}", token)
                except DomainError as exc:
                    self._refuse(saga_id, "started", str(exc))
                    continue
                if answer.decision == ACCEPTED:
                    # Reserved and credited in one save: the hold's time goes to the commit.
                    rid = UUID(answer.redemption_id)
                    self._transition(saga_id, "started", self._reserved_and_credited(rid))
                else:
                    self._refuse(saga_id, "started", "refused by the home city")
            elif saga.state == "reserved":
                self._transition(saga_id, "reserved", self._credit)
            elif saga.state == "credited":
                try:
                    done = partner.client.commit(f"commit:{saga_id}", str(saga.home_redemption_id))
                    accepted = done.decision == ACCEPTED
                except PartnerRefused:
                    accepted = False
                if accepted:
                    self._transition(saga_id, "credited", self._commit)
                else:
                    self._transition(saga_id, "credited", self._reverse)
            else:
                return saga

    def _reserved_and_credited(self, rid: UUID) -> Callable[[ForeignRedemption, UnitOfWork], None]:
        def change(saga: ForeignRedemption, uow: UnitOfWork) -> None:
            saga.reserved(rid)
            self._credit(saga, uow)

        return change

    def _commit(self, saga: ForeignRedemption, uow: UnitOfWork) -> None:
        saga.committed(saga.home, saga.home_amount, saga.credit)

    def _credit(self, saga: ForeignRedemption, uow: UnitOfWork) -> None:
        merchant = uow.get(saga.merchant_id, Merchant, "merchant")
        saga.credit_merchant(merchant.id, saga.credit)
        merchant.paid(saga.credit, "redemption", str(saga.id))

    def _reverse(self, saga: ForeignRedemption, uow: UnitOfWork) -> None:
        saga.reverse(saga.merchant_id, saga.credit, "the home city did not commit in time")
        uow.get(saga.merchant_id, Merchant, "merchant").payment_reversed(
            saga.credit, "redemption", str(saga.id)
        )
        self._give_back(saga, uow)

    def _refuse(self, saga_id: UUID, expected: str, reason: str) -> None:
        def refuse(saga: ForeignRedemption, uow: UnitOfWork) -> None:
            saga.refused(reason)
            self._give_back(saga, uow)

        self._transition(saga_id, expected, refuse)

    def _give_back(self, saga: ForeignRedemption, uow: UnitOfWork) -> None:
        allowance_id = DailyAllowance.create_id(self.key, saga.home, saga.day)
        allowance = uow.get(allowance_id, DailyAllowance, "allowance")
        allowance.give_back(saga.home_amount)

    def _transition(
        self, saga_id: UUID, expected: str, change: Callable[[ForeignRedemption, UnitOfWork], None]
    ) -> None:
        def step(uow: UnitOfWork) -> None:
            saga = uow.get(saga_id, ForeignRedemption, "redemption")
            if saga.state == expected:  # someone else may have moved it on already
                change(saga, uow)

        self._step(step)

    def accept(self, key: str, merchant_id: UUID, token: str) -> dict[str, Any]:
        started = self.execute(self.start(key, merchant_id, token))
        saga = self.advance(UUID(started["saga_id"]), token)
        if saga.state != "committed":
            raise PreconditionFailed(f"redemption {saga.state}: the home city did not accept it")
        return {
            "credited": saga.credit,
            "home_city": saga.home,
            "home_amount": saga.home_amount,
            "home_currency": self.partners[saga.home].client.published_terms().currency,
            "redemption_id": str(saga.id),
        }
