"""Clearing a period with a partner city: counted from this node's own event store, signed
with its Ed25519 key, countersigned by the partner, recorded by both (aggregates/clearing.py).

The node that runs the clearing proposes its figures and signature; the partner counts its
own, and countersigns and records if they are the same. If they differ, the proposer sends
its list of lines (redemption ids, home cities, amounts, times) and the partner names the
first redemption counted differently; nothing is recorded. The partner is reached through
the `ClearingPartner` port (over gRPC: services/grpc/clearing_client.py).
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aggregates.clearing import (
    ClearingDisagreement,
    ClearingStatement,
    Figures,
    Line,
    PartnerExposure,
    check_clearable,
    check_lines,
    describe_difference,
    pair_of,
    period_end,
    reconcile,
)
from aggregates.errors import InvalidInput, NoAgreement
from aggregates.redemption import ForeignRedemption, Redemption
from services.city import CityApplication
from services.event_log import event_type, follow, read_events, topics_of
from services.unit_of_work import Job, UnitOfWork

REDEMPTIONS = topics_of(Redemption, ForeignRedemption)
STATEMENTS = topics_of(ClearingStatement)
# The most lines a partner may send to compare: far above any month's redemptions between
# two pilots, and a bound on what one call may make this node hold.
MAX_LINES = 1_000_000


@dataclass(frozen=True)
class Answer:
    """The partner's answer to a proposal."""

    agreed: bool
    countersignature: bytes = b""
    differing_figures: tuple[str, ...] = ()
    # (redemption id, the proposer's amount or None, the receiver's amount or None)
    difference: tuple[str, int | None, int | None] | None = None
    # The period was recorded already, with other figures than proposed: the statement, the
    # proposer's own signature on it, and the redemptions it cleared.
    recorded: tuple[Figures, bytes, tuple[str, ...]] | None = None


class ClearingPartner(Protocol):
    def propose(self, figures: Figures, signature: bytes, lines: Sequence[Line]) -> Answer: ...


@dataclass
class Records:
    """What this city's store holds about the redemptions with one partner: those no
    statement has cleared yet, and the last period the pair's statements cleared."""

    lines: list[Line] = field(default_factory=list)
    last_period: str | None = None

    @property
    def open(self) -> list[Line]:
        return self.lines


def records(app: CityApplication, partner: str) -> Records:
    """Every committed redemption between this city and `partner`, read from the event store
    (never from a read model, which may lag), and what the pair's statements cleared."""
    return all_records(app).get(partner) or Records()


def all_records(app: CityApplication) -> dict[str, Records]:
    """`records` for every partner, in one read of the whole store (ClearingBook follows it)."""
    return ClearingBook().refresh(app)


# A saga's events before it ends; any other but Committed ends it without a redemption.
SAGA_GOING_ON = (
    "ForeignRedemption.Started",
    "ForeignRedemption.Reserved",
    "ForeignRedemption.MerchantCredited",
)


class ClearingBook:
    """The open redemptions and the statements with each partner, followed from the store.

    Each call reads only what was recorded since the last, so a partner's proposals cost
    what happened since, not the city's whole history; a statement's lines leave the book
    once it is recorded, so it holds the open months only, and of the statements only each
    partner's last period (a statement, with its cleared redemptions, is read from the store
    when asked for). Redemption ids are not personal data, and the book keeps no wallet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._position = 0
        self._home_ids: dict[UUID, UUID] = {}  # accepting side: open saga -> the home's redemption id
        self._open: dict[str, dict[str, Line]] = {}
        self._last: dict[str, str] = {}  # partner -> the last period a statement cleared

    def refresh(self, app: CityApplication) -> dict[str, Records]:
        with self._lock:
            upto, events = follow(app, self._position, REDEMPTIONS + STATEMENTS)
            for _, e in events:
                self._apply(app, e)
            self._position = upto
            partners = set(self._open) | set(self._last)
            return {
                partner: Records(
                    lines=sorted(self._open.get(partner, {}).values()), last_period=self._last.get(partner)
                )
                for partner in partners
            }

    def _apply(self, app: CityApplication, e: Any) -> None:
        kind = event_type(e)
        if kind == "Redemption.Committed":
            line = Line(str(e.originator_id), app.key, e.amount, e.timestamp)
            self._open.setdefault(e.acceptor, {})[line.redemption_id] = line
        elif kind == "ForeignRedemption.Reserved":
            self._home_ids[e.originator_id] = e.home_redemption_id
        elif kind == "ForeignRedemption.Committed":
            home_id = self._home_ids.pop(e.originator_id, None)
            if home_id is None:  # reserved before a restart of this book's reading: ask the saga
                saga = app.repository.get(e.originator_id)
                home_id = saga.home_redemption_id
            rid = str(home_id)
            line = Line(rid, e.home_city, e.home_amount, e.timestamp)
            self._open.setdefault(e.home_city, {})[rid] = line
        elif kind.startswith("ForeignRedemption.") and kind not in SAGA_GOING_ON:
            self._home_ids.pop(e.originator_id, None)  # ended without a commit
        elif kind.startswith("ClearingStatement."):
            statement = app.repository.get(e.originator_id)
            assert isinstance(statement, ClearingStatement)
            partner = statement.city_b if statement.city_a == app.key else statement.city_a
            self._last[partner] = max(self._last.get(partner, statement.period), statement.period)
            # A statement clears only redemptions recorded here before it (it was drawn from them).
            lines = self._open.get(partner, {})
            for rid in statement.redemption_ids:
                lines.pop(rid, None)


def sign(figures: Figures, key: Ed25519PrivateKey) -> bytes:
    return key.sign(figures.payload())


def check_signature(figures: Figures, signature: bytes, key: Ed25519PublicKey, city: str) -> None:
    try:
        key.verify(signature, figures.payload())
    except InvalidSignature:
        raise InvalidInput("signature", f"the clearing statement is not signed by {city}") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def signature_bytes(text: str) -> bytes:
    return base64.b64decode(text)


class Clearing:
    def __init__(
        self,
        app: CityApplication,
        signing_key: Ed25519PrivateKey,
        keys: Mapping[str, Ed25519PublicKey],
        partners: Mapping[str, ClearingPartner],
        execute: Callable[[Job], dict[str, Any]],
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        """`keys`: each partner's public key (the one its vouchers are signed with);
        `partners`: the port to each partner's clearing service."""
        self.app = app
        self.key = app.key
        self.signing_key = signing_key
        self.keys = keys
        self.partners = partners
        self.execute = execute
        self.clock = clock or app.clock
        self.book = ClearingBook()

    def _partner_key(self, partner: str) -> Ed25519PublicKey:
        key = self.keys.get(partner)
        if key is None:
            raise NoAgreement(f"{self.app.city.config.name} has no clearing agreement with {partner}")
        return key

    def draft(self, partner: str, period: str) -> tuple[Figures, list[Line], Records]:
        """This city's figures for `period` with `partner`: every redemption between them it
        recorded before the period's end that no earlier statement cleared."""
        found = self.book.refresh(self.app).get(partner) or Records()
        end = check_clearable(period, self.clock(), found.last_period)
        lines = [line for line in found.open if line.at is None or line.at < end]
        a, b = pair_of(self.key, partner)
        return Figures.of(a, b, period, lines), lines, found

    def recorded(self, partner: str, period: str) -> ClearingStatement | None:
        statement_id = ClearingStatement.create_id(self.key, partner, period)
        return UnitOfWork(self.app).find(statement_id, ClearingStatement)

    def run(self, partner: str, period: str) -> ClearingStatement:
        """Clear `period` with `partner`; the recorded statement (the same one again if it
        was cleared before). Raises ClearingDisagreement naming the first differing redemption."""
        partner_key = self._partner_key(partner)
        port = self.partners.get(partner)
        if port is None:
            raise NoAgreement(f"{self.app.city.config.name} has no clearing agreement with {partner}")
        done = self.recorded(partner, period)
        if done is not None:
            return done
        figures, lines, found = self.draft(partner, period)
        signature = sign(figures, self.signing_key)
        answer = port.propose(figures, signature, [])
        if answer.recorded is not None:
            return self._adopt(partner, answer, found)
        # Lines recorded here after the period's end that the partner recorded before it: the
        # partner names them one at a time, and they belong to this period for both.
        late = {line.redemption_id: line for line in found.open if line not in lines}
        with_lines = False
        while not answer.agreed:
            diff = answer.difference
            if diff is None:
                if with_lines:
                    raise ClearingDisagreement(
                        f"{partner} disagrees with the clearing statement for {period} "
                        f"({', '.join(answer.differing_figures) or 'figures differ'})"
                    )
                with_lines = True  # the digests differ: now the list
            elif diff[1] is None and diff[0] in late and late[diff[0]].amount == diff[2]:
                lines = sorted([*lines, late.pop(diff[0])])
                figures = Figures.of(figures.city_a, figures.city_b, period, lines)
                signature = sign(figures, self.signing_key)
            else:
                raise ClearingDisagreement(describe_difference(period, self.key, partner, diff))
            answer = port.propose(figures, signature, lines)
        check_signature(figures, answer.countersignature, partner_key, partner)
        return self._record(partner, figures, {self.key: signature, partner: answer.countersignature}, lines)

    def _adopt(self, partner: str, answer: Answer, found: Records) -> ClearingStatement:
        """The partner recorded the period with this city before, and this city did not (it
        stopped between the partner's answer and its own save): record the same statement,
        once both signatures and this city's own records bear it out."""
        assert answer.recorded is not None
        figures, own, ids = answer.recorded
        check_signature(figures, own, self.signing_key.public_key(), self.key)
        check_signature(figures, answer.countersignature, self._partner_key(partner), partner)
        wanted = set(ids)
        lines = [line for line in found.open if line.redemption_id in wanted]
        if (
            len(lines) != len(wanted)
            or Figures.of(figures.city_a, figures.city_b, figures.period, lines) != figures
        ):
            raise ClearingDisagreement(
                f"{partner} recorded a statement for {figures.period} that this city's records "
                "do not bear out"
            )
        return self._record(partner, figures, {self.key: own, partner: answer.countersignature}, lines)

    def receive(self, partner: str, figures: Figures, signature: bytes, theirs: Sequence[Line]) -> Answer:
        """A partner's proposal: countersigned and recorded if this city counts the same."""
        partner_key = self._partner_key(partner)
        if {figures.city_a, figures.city_b} != {self.key, partner} or figures.city_a > figures.city_b:
            raise InvalidInput("figures", f"a clearing statement between {partner} and {self.key} names them")
        check_signature(figures, signature, partner_key, partner)
        if len(theirs) > MAX_LINES:
            raise InvalidInput("lines", f"at most {MAX_LINES} lines")
        check_lines(theirs)
        if theirs and Figures.of(figures.city_a, figures.city_b, figures.period, theirs) != figures:
            raise InvalidInput("lines", "the lines do not add up to the signed figures")
        done = self.recorded(partner, figures.period)
        if done is not None:
            return self._as_recorded(partner, done, figures)
        ours, lines, found = self.draft(partner, figures.period)
        # Lines sent (an empty list is sent as a statement of no redemptions): compared one by one.
        if theirs or figures.redemptions == 0:
            diff = reconcile(theirs, found.open, period_end(figures.period))
            if diff is not None:
                return Answer(False, differing_figures=tuple(ours.differences(figures)), difference=diff)
            lines = list(theirs)
        elif ours != figures:
            return Answer(False, differing_figures=tuple(ours.differences(figures)))
        countersignature = sign(figures, self.signing_key)
        recorded = self._record(partner, figures, {self.key: countersignature, partner: signature}, lines)
        # Another proposal for the period may have been recorded since the check above (two
        # sent at once): that statement stands, and this one's countersignature is not given out.
        return self._as_recorded(partner, recorded, figures)

    def _as_recorded(self, partner: str, done: ClearingStatement, figures: Figures) -> Answer:
        """The answer to a proposal of `figures` once `done` is the period's statement."""
        countersignature = signature_bytes(done.signature_of(self.key))
        if done.figures == figures:
            return Answer(True, countersignature)
        proposer = signature_bytes(done.signature_of(partner))
        return Answer(False, countersignature, recorded=(done.figures, proposer, tuple(done.redemption_ids)))

    def _record(
        self, partner: str, figures: Figures, signatures: Mapping[str, bytes], lines: Sequence[Line]
    ) -> ClearingStatement:
        """Save the statement with both signatures; a partner's tokens it settles leave the
        partner's open exposure here. Saved once: a second record finds it and changes nothing."""
        statement_id = ClearingStatement.create_id(figures.city_a, figures.city_b, figures.period)

        def step(uow: UnitOfWork) -> dict[str, Any]:
            found = uow.find(statement_id, ClearingStatement)
            if found is not None:
                return {"statement": found}
            statement = ClearingStatement(
                figures.city_a,
                figures.city_b,
                figures.period,
                figures.owed_by_a,
                figures.owed_by_b,
                figures.redemptions,
                figures.digest,
                _b64(signatures[figures.city_a]),
                _b64(signatures[figures.city_b]),
                sorted(line.redemption_id for line in lines),
            )
            uow.add(statement)
            exposure = uow.find(PartnerExposure.create_id(self.key, partner), PartnerExposure)
            if exposure is not None:
                exposure.cleared(figures.owed_by(partner), figures.period)
                uow.add(exposure)
            return {"statement": statement}

        statement: ClearingStatement = self.execute(Job.step("clearing:record", step))["statement"]
        return statement

    def statements(self) -> list[ClearingStatement]:
        out: list[ClearingStatement] = []
        for _, e in read_events(self.app, topics=STATEMENTS):
            statement = self.app.repository.get(e.originator_id)
            assert isinstance(statement, ClearingStatement)
            out.append(statement)
        return sorted(out, key=lambda s: (s.city_a, s.city_b, s.period))

    def open_positions(self) -> dict[str, tuple[int, int, int]]:
        """partner -> (owed by this city, owed by the partner, redemptions), uncleared."""
        out: dict[str, tuple[int, int, int]] = {}
        found = self.book.refresh(self.app)
        for partner in sorted(self.keys):
            lines = found[partner].open if partner in found else []
            ours = sum(line.amount for line in lines if line.home == self.key)
            out[partner] = (ours, sum(line.amount for line in lines) - ours, len(lines))
        return out
