"""Accepting side of cross-city redemption: the saga a shop's voucher starts.

Started → (home reserves) Reserved → MerchantCredited → (home commits) Committed.
A refusal ends it as Refused; a commit the home refuses (its hold lapsed)
reverses the credit. A commit whose answer is unknown (no reply, or the call
itself refused) leaves the credit in place and is asked again: an earlier
attempt may have burned the tokens. The home city is reached only through the
Partner port (services/federation/partner.py). Every step is an event; each step first checks the state it
expects, so repeating a call, or resuming after a crash, moves the saga on
without doing any step twice. The saga's id comes from the voucher, so one
voucher is one saga.

With `submit`, the shop is answered as soon as the home accepted the commit, and the
saga's last step is queued to be saved with the node's next batch. Nothing the answer
says can be lost with it: the shop's credit was saved before the commit was asked,
and the home's burn before it accepted. A crash before the queued step is saved leaves
the saga credited, and the sweep asks the home again, which answers accepted as before.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from aggregates.clearing import PartnerExposure
from aggregates.errors import InvalidInput, NoAgreement, PreconditionFailed, VoucherAlreadyRedeemed
from aggregates.merchant import Merchant
from aggregates.redemption import DailyAllowance, ForeignRedemption, check_buys_something
from services import commands as c
from services.city import CityApplication
from services.federation.partner import Partner, PartnerRefusedCall, PartnerUnreachable
from services.federation.vouchers import peek, peek_home, verify
from services.unit_of_work import Job, UnitOfWork

log = logging.getLogger("civfed.saga")


class Acceptor:
    def __init__(
        self,
        app: CityApplication,
        partners: Mapping[str, Partner],
        keys: Mapping[str, Ed25519PublicKey],
        execute: Callable[[Job], dict[str, Any]],
        clock: Callable[[], dt.datetime] | None = None,
        submit: Callable[[Job], object] | None = None,
    ) -> None:
        """`partners` are the port to each partner city, `keys` the keys its vouchers are
        signed with; `clock` is the time sagas are dated by (by default the application's).
        `submit` queues a step to be saved without waiting for it (the node's writer)."""
        self.app = app
        self.key = app.key
        self.partners = partners
        self.keys = keys
        self.execute = execute
        self.clock = clock or app.clock
        self.submit = submit
        app.add_handlers({c.AcceptForeignVoucher: self._start})

    def start(self, key: str, merchant_id: UUID, token: str) -> Job:
        """Check the voucher and the terms, count it against the daily cap, open the saga."""
        job = Job.of(c.AcceptForeignVoucher(key, merchant_id, token), self._start)
        return dataclasses.replace(job, reads=self._start_reads(merchant_id, token))

    def _start_reads(self, merchant_id: UUID, token: str) -> tuple[UUID, ...]:
        """What `_start` reads, read with the rest of its group: the shop, the saga (none
        yet, unless the voucher was presented before) and the day's allowance."""
        try:
            voucher = peek(token)
        except InvalidInput:
            return (merchant_id,)  # `_start` refuses it
        day = self.clock().date().isoformat()
        return (
            merchant_id,
            ForeignRedemption.create_id(self.key, voucher.home, voucher.voucher_id),
            DailyAllowance.create_id(self.key, voucher.home, day),
        )

    def _start(self, cmd: c.AcceptForeignVoucher, uow: UnitOfWork) -> dict[str, Any]:
        home = peek_home(cmd.token)
        terms = self.app.city.config.federation.accepts.get(home)
        public_key = self.keys.get(home)
        if terms is None or public_key is None or home not in self.partners:
            raise NoAgreement(f"{self.app.city.config.name} does not accept tokens from {home}")
        voucher = verify(cmd.token, public_key)
        home = voucher.home
        merchant = uow.get(cmd.merchant_id, Merchant, "merchant")
        saga_id = ForeignRedemption.create_id(self.key, home, voucher.voucher_id)
        if uow.find(saga_id, ForeignRedemption) is not None:
            # The same sale retried with its own key replays its receipt before this
            # point; any other sale, at this shop or another, is a second presentation.
            raise VoucherAlreadyRedeemed("voucher was already presented")
        now = self.clock()
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
        self._expose(home, voucher.amount, terms.exposure_limit, uow)
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
                day,
            )
        )
        return {"saga_id": str(saga_id)}

    def advance(self, saga_id: UUID, token: str | None = None) -> ForeignRedemption:
        """Move the saga on until it is finished, or its outcome waits on a partner.

        Raises `PartnerUnreachable` when the home city's answer is not known yet; the
        saga stays where it is, and the next `advance` (a retry, or the sweep) asks again.
        """
        return self._advance(saga_id, token, None)[0]

    def _advance(
        self,
        saga_id: UUID,
        token: str | None,
        submit: Callable[[Job], object] | None,
        known: ForeignRedemption | None = None,
    ) -> tuple[ForeignRedemption, bool]:
        """`advance`, and whether the home committed. With `submit`, a commit the home
        accepted is queued to be saved, and the saga is given back still credited.
        `known` is the saga as this call's own start just saved it."""
        # The saga as a step just saved it; read from the store only when no step ran or
        # another writer moved it first.
        while True:
            saga = known or UnitOfWork(self.app).get(saga_id, ForeignRedemption, "redemption")
            known = None
            partner = self.partners[saga.home]
            if saga.state == "started":
                known = self._reserve(saga, partner, token)
            elif saga.state == "reserved":
                known = self._transition(saga, "reserved", self._credit)
            elif saga.state == "credited":
                assert saga.home_redemption_id is not None
                try:
                    outcome = partner.commit(f"commit:{saga_id}", saga.home_redemption_id)
                except PartnerRefusedCall as exc:
                    # Refusing the call decides nothing: an earlier attempt may have burned
                    # the tokens. Only the home's decision may reverse the shop's credit.
                    raise PartnerUnreachable(f"{saga.home} did not confirm the commit ({exc})") from None
                if outcome.decision.accepted and submit is not None:
                    # The credit and the home's burn are both saved: this step only records
                    # what is decided, and the sweep repeats it if a crash loses it.
                    submit(self._step(saga, "credited", self._commit))
                    return saga, True
                if outcome.decision.accepted:
                    known = self._transition(saga, "credited", self._commit)
                else:
                    known = self._transition(saga, "credited", self._reverse)
            else:
                return saga, saga.state == "committed"

    def _reserve(
        self, saga: ForeignRedemption, partner: Partner, token: str | None
    ) -> ForeignRedemption | None:
        """Ask the home for the hold; the saga as saved after, or None if another writer moved it."""
        saga_id = saga.id
        if token is None:
            # Only a shop holds the token; without it, the home hold simply lapses.
            return self._refuse(saga, "started", "voucher not presented again")
        try:
            answer = partner.reserve(f"reserve:{saga_id}", token)
        except PartnerRefusedCall as exc:
            return self._refuse(saga, "started", str(exc))
        if not answer.decision.accepted:
            return self._refuse(saga, "started", answer.decision.reason or "refused by the home city")
        assert answer.redemption_id is not None
        # Reserved and credited in one save: the hold's time goes to the commit.
        moved = self._transition(saga, "started", self._reserved_and_credited(answer.redemption_id))
        if moved is None:
            # The saga ended meanwhile (the sweep gave up on it): give the hold back now
            # rather than when it lapses.
            try:
                partner.cancel(f"cancel:{saga_id}", answer.redemption_id, "sale abandoned")
            except (PartnerUnreachable, PartnerRefusedCall) as exc:
                log.info("hold of saga %s left to lapse: %s", saga_id, exc)
        return moved

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

    def _refuse(self, saga: ForeignRedemption, expected: str, reason: str) -> ForeignRedemption | None:
        def refuse(saga: ForeignRedemption, uow: UnitOfWork) -> None:
            saga.refused(reason)
            self._give_back(saga, uow)

        return self._transition(saga, expected, refuse)

    def _give_back(self, saga: ForeignRedemption, uow: UnitOfWork) -> None:
        allowance_id = DailyAllowance.create_id(self.key, saga.home, saga.day)
        allowance = uow.get(allowance_id, DailyAllowance, "allowance")
        allowance.give_back(saga.home_amount)
        terms = self.app.city.config.federation.accepts.get(saga.home)
        if terms is not None and terms.exposure_limit is not None:  # counted only under a limit
            exposure = uow.find(PartnerExposure.create_id(self.key, saga.home), PartnerExposure)
            if exposure is not None:
                exposure.give_back(saga.home_amount)

    def _expose(self, home: str, amount: int, limit: int | None, uow: UnitOfWork) -> None:
        """With an exposure limit, what `home` would owe this city uncleared, this redemption
        included, must stay within it (refused before the home is asked to reserve)."""
        if limit is None:
            return
        exposure_id = PartnerExposure.create_id(self.key, home)
        exposure = uow.find(exposure_id, PartnerExposure) or PartnerExposure(self.key, home)
        exposure.check_room(amount, limit)
        exposure.use(amount)
        uow.add(exposure)

    def _transition(
        self, saga: ForeignRedemption, expected: str, change: Callable[[ForeignRedemption, UnitOfWork], None]
    ) -> ForeignRedemption | None:
        """Apply `change` if the saga is still in `expected`: the saga as saved, or None if
        it was not (another writer moved it on)."""
        # Saved with whatever else waits for the node's writer (group commit).
        moved: ForeignRedemption | None = self.execute(self._step(saga, expected, change))["saga"]
        return moved

    def _step(
        self, saga: ForeignRedemption, expected: str, change: Callable[[ForeignRedemption, UnitOfWork], None]
    ) -> Job:
        """The step applying `change` to the saga as stored, if it is still in `expected`."""
        saga_id = saga.id

        def step(uow: UnitOfWork) -> dict[str, Any]:
            saga = uow.get(saga_id, ForeignRedemption, "redemption")
            if saga.state != expected:  # someone else may have moved it on already
                return {"saga": None}
            change(saga, uow)
            # A step has no receipt, so its result may carry the aggregate itself.
            return {"saga": saga}

        # Read with the rest of the group: the saga and whatever a step of it may touch.
        allowance = DailyAllowance.create_id(self.key, saga.home, saga.day)
        return Job.step(f"saga:{expected}", step, reads=(saga_id, saga.merchant_id, allowance))

    def accept(self, key: str, merchant_id: UUID, token: str) -> dict[str, Any]:
        job = self.start(key, merchant_id, token)
        # The saga this call's start opened, as saved: no need to read it back. Known only
        # when the result is the one that run gave, not a retried key's stored result.
        ran: list[tuple[dict[str, Any], ForeignRedemption]] = []

        def start(uow: UnitOfWork) -> dict[str, Any]:
            result = job.handler(uow)
            ran.append((result, uow.get(UUID(result["saga_id"]), ForeignRedemption, "redemption")))
            return result

        started = self.execute(dataclasses.replace(job, handler=start))
        opened = ran[-1][1] if ran and ran[-1][0] is started else None
        saga, committed = self._advance(UUID(started["saga_id"]), token, self.submit, opened)
        if not committed:
            raise PreconditionFailed(f"redemption {saga.state}: the home city did not accept it")
        return {
            "credited": saga.credit,
            "home_city": saga.home,
            "home_amount": saga.home_amount,
            "home_currency": self.partners[saga.home].published_terms().currency,
            "redemption_id": str(saga.id),
        }
