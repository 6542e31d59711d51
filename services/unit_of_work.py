"""Idempotent command execution with one atomic save, singly or in groups.

A group commit runs many commands against aggregates held in memory and saves
them all in one transaction; that is what lifts throughput from one round trip
per command to one per batch, without the domain knowing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from aggregates.errors import DomainError, InvalidInput, NotFound, PreconditionFailed, not_found, refusal
from aggregates.receipt import Receipt, params_hash
from services import batch_reads, commands

A = TypeVar("A", bound=Aggregate)
C = TypeVar("C", bound=commands.Command)


class ConcurrentUpdate(PreconditionFailed):
    """Another writer kept winning; the command changed nothing and may be retried."""


class StepRefused(Exception):
    """A saga step refused part-way: nothing of the unit of work it ran in may be saved.

    Not a DomainError, so a group commit does not save the group around it but runs its
    commands one by one, where the step's refusal reaches its caller alone, unsaved."""

    def __init__(self, refusal: DomainError) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


class _Replayed(Exception):
    """Carries a stored result out of a handler that must not run again."""

    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result


class Store(Protocol):
    """Where a unit of work reads aggregates from: an application's repository."""

    @property
    def repository(self) -> Any: ...


class UnitOfWork:
    """The aggregates one command (or one group of commands) reads and changes."""

    def __init__(self, app: Store, for_reading: bool = False) -> None:
        self.app = app
        # A query that only reads may take the repository's cached aggregate itself: a deep
        # copy of a wallet costs more than the rest of a balance call. Never for a command.
        self.copies = not for_reading
        self.seen: dict[UUID, Aggregate | None] = {}
        # The wallet the current command is about; its receipt is that person's data.
        self.owner: UUID | None = None
        # How many of an aggregate's pending events a step after each command has seen
        # (the city's funds: services/funds.py).
        self.marks: dict[UUID, int] = {}
        # The aggregates handed out or added since that step last looked: only these can
        # have changed, so it never walks everything a group commit holds (which made a
        # group's cost grow with the square of its size).
        self.touched: dict[UUID, None] = {}

    def find(self, aggregate_id: UUID, cls: type[A]) -> A | None:
        if aggregate_id not in self.seen:
            try:
                self.seen[aggregate_id] = self.app.repository.get(
                    aggregate_id, deepcopy_from_cache=self.copies
                )
            except AggregateNotFoundError:
                self.seen[aggregate_id] = None
        found = self.seen[aggregate_id]
        self.touched[aggregate_id] = None
        if found is not None and not isinstance(found, cls):
            return None
        return found

    def get(self, aggregate_id: UUID, cls: type[A], what: str) -> A:
        found = self.find(aggregate_id, cls)
        if found is None:
            raise not_found(what, aggregate_id)
        return found

    def add(self, aggregate: Aggregate) -> None:
        self.seen[aggregate.id] = aggregate
        self.touched[aggregate.id] = None

    def changed(self) -> list[Aggregate]:
        return [a for a in self.seen.values() if a is not None and a.pending_events]

    def take_touched(self, keep: Callable[[Aggregate], bool]) -> list[Aggregate]:
        """The aggregates handed out or added since the last call that `keep` keeps, in the
        order they were first seen; forgets them all."""
        touched, self.touched = self.touched, {}
        kept = {i for i in touched if (a := self.seen.get(i)) is not None and keep(a)}
        if len(kept) <= 1:
            return [a for i in kept if (a := self.seen[i]) is not None]
        return [a for i, a in self.seen.items() if a is not None and i in kept]


@dataclass(frozen=True)
class Job:
    """A command ready to run: the receipt's name and key, the parameters the key is
    bound to, and the handler that applies it to a unit of work.

    `Job.of(command, handle)` builds one from a command (services/commands.py): its
    fingerprint is then taken from all of the command's fields, and the handler is
    given the command and nothing else. `Job(name, key, params, handler)`, with the
    parameters written out by hand, remains for jobs built by hand (tests).
    """

    name: str
    key: str
    params: dict[str, Any]
    handler: Callable[[UnitOfWork], dict[str, Any]]
    command: commands.Command | None = None
    # False for a step of a saga: guarded by the state it expects, so running it again
    # changes nothing, and it needs neither a key nor a receipt.
    receipt: bool = True
    # Aggregates its handler will read beyond those its command names, read with the
    # group's (a hint, as `Command.reads` is).
    reads: tuple[UUID, ...] = ()

    @classmethod
    def step(
        cls, name: str, handle: Callable[[UnitOfWork], dict[str, Any]], reads: tuple[UUID, ...] = ()
    ) -> Job:
        """A change that checks the state it applies to, saved like a command (and with
        others in a group commit), without an idempotency key or receipt."""
        return cls(name, "", {}, handle, receipt=False, reads=reads)

    @classmethod
    def of(cls, command: C, handle: Callable[[C, UnitOfWork], dict[str, Any]]) -> Job:
        return cls(
            command.name, command.idempotency_key, command.parameters(), partial(handle, command), command
        )

    @property
    def fingerprint(self) -> str:
        # A command's parameters were taken once, when the job was made (`Job.of`).
        return params_hash(self.name, self.params)

    @property
    def owner(self) -> UUID | None:
        """The wallet the command is about: its receipt is that person's data."""
        if self.command is not None:
            return self.command.owner
        wallet = self.params.get("wallet")
        return wallet if isinstance(wallet, UUID) else None


# The old name of a hand-built job; every builder in services/ now makes a command.
Command = Job


class IdempotentExecutor:
    def __init__(self, app: Application[UUID], city: str) -> None:
        self.app = app
        self.city = city
        # What the group commits saved, kept for the next group (services/batch_reads.py).
        self.hot = batch_reads.HotAggregates()
        # Run after each command that succeeded, into its unit of work (the city's funds).
        self.after_each: Callable[[UnitOfWork], None] | None = None
        # Aggregates every group reads (the city's funds): read ahead with the rest.
        self.group_reads: list[UUID] = []

    def _apply(self, uow: UnitOfWork, cmd: Job, look_first: bool) -> dict[str, Any]:
        """Run one command into `uow`, adding its receipt.

        With `look_first` false the receipt is not read beforehand: a retried key
        then collides with its stored receipt at save time, which rolls the whole
        save back, and the caller looks again. That saves a read per command.
        """
        if not cmd.receipt:
            uow.owner = None
            try:
                out = cmd.handler(uow)
            except DomainError as exc:
                # It may have changed aggregates before refusing; unlike a command's
                # refusal, nothing is recorded for it, so nothing of it is saved.
                raise StepRefused(exc) from exc
            if self.after_each is not None:
                self.after_each(uow)
            return out
        if not cmd.key:
            raise InvalidInput("idempotency_key", "required on every command")
        digest = cmd.fingerprint
        # A key repeated inside one group is seen in memory, not at save time.
        if look_first or Receipt.create_id(self.city, cmd.key) in uow.seen:
            self._replay_if_recorded(uow, cmd, digest)
        uow.owner = cmd.owner
        try:
            result = cmd.handler(uow)
        except DomainError as exc:
            if not look_first:
                # A key already answered gets that answer, or a conflict if the parameters
                # differ, never a refusal decided now (invalid input included: a consent
                # text or a validity end that was fine when the command first ran).
                self._replay_if_recorded(uow, cmd, digest)
            if isinstance(exc, PreconditionFailed | NotFound):
                # Handlers run every check before they change anything, so only the
                # refusal itself is recorded here (and whatever a refusal records, which
                # the step after each command sees like any change).
                uow.add(Receipt(self.city, cmd.key, cmd.name, digest, refusal(exc), uow.owner))
                if self.after_each is not None:
                    self.after_each(uow)
            raise
        if self.after_each is not None:
            self.after_each(uow)
        uow.add(Receipt(self.city, cmd.key, cmd.name, digest, result, uow.owner))
        return result

    def _replay_if_recorded(self, uow: UnitOfWork, cmd: Job, digest: str) -> None:
        receipt = uow.find(Receipt.create_id(self.city, cmd.key), Receipt)
        if receipt is not None:
            raise _Replayed(receipt.replay(cmd.name, digest))

    def run(self, cmd: Job, attempts: int = 5) -> dict[str, Any]:
        for attempt in range(attempts):
            uow = UnitOfWork(self.app)
            refused: DomainError | None = None
            try:
                result = self._apply(uow, cmd, look_first=attempt > 0)
            except _Replayed as replay:
                return replay.result
            except StepRefused as step:
                raise step.refusal from None
            except DomainError as exc:
                refused = exc
            try:
                self.app.save(*uow.changed())
            except IntegrityError:
                # A stored receipt (a retry) or a concurrent writer: look again.
                continue
            if refused is not None:
                raise refused
            return result
        raise ConcurrentUpdate("too many concurrent updates; retry with the same key")

    def run_group(self, cmds: Sequence[Job], look_first: bool = False) -> list[dict[str, Any] | DomainError]:
        uow = UnitOfWork(self.app)
        self._read_ahead(uow, cmds)
        results: list[dict[str, Any] | DomainError] = []
        for cmd in cmds:
            try:
                results.append(self._apply(uow, cmd, look_first))
            except _Replayed as replay:
                results.append(replay.result)
            except DomainError as exc:
                results.append(exc)
        try:
            self.app.save(*uow.changed())
        except IntegrityError:
            if not look_first:
                return self.run_group(cmds, look_first=True)
            return [self._run_caught(cmd) for cmd in cmds]
        self.hot.give_back(uow.seen.values())
        return results

    def _read_ahead(self, uow: UnitOfWork, cmds: Sequence[Job]) -> None:
        """Everything the group will read, in one round trip: each command's receipt (so a
        retried key is answered from memory, without a failed save) and the aggregates
        its command names; and the keys of the wallets concerned, in one query more."""
        ids: list[UUID] = list(self.group_reads)
        owners: list[UUID] = []
        for cmd in cmds:
            if cmd.key:
                ids.append(Receipt.create_id(self.city, cmd.key))
            if cmd.command is not None:
                ids.extend(cmd.command.reads(self.city))
            ids.extend(cmd.reads)
            if cmd.owner is not None:
                owners.append(cmd.owner)
        # What held aggregates name is read in the same query: a redemption's wallet never
        # changes, so the one held names it as well as the stored one would.
        held = {i: a for i in ids if (a := self.hot.peek(i)) is not None}
        for cmd in cmds:
            if cmd.command is not None and held:
                ids.extend(cmd.command.reads_after(self.city, held))
        keys = getattr(self.app, "keys", None)
        if keys is not None and owners:
            # Before the events are read: opening their sealed fields needs the keys. An
            # erasure (made by another process, too) drops what the writer held of that
            # person, so it is rebuilt from the store with the fields redacted.
            for erased in keys.prefetch(owners):
                self.hot.forget(erased)
        uow.seen.update(batch_reads.read_many(self.app, ids, self.hot))
        # What those aggregates name (a redemption's wallet) and was not read yet, in one
        # query more.
        follow = [
            aggregate_id
            for cmd in cmds
            if cmd.command is not None
            for aggregate_id in cmd.command.reads_after(self.city, uow.seen)
            if aggregate_id not in uow.seen
        ]
        if follow:
            uow.seen.update(batch_reads.read_many(self.app, follow, self.hot))

    def _run_caught(self, cmd: Job) -> dict[str, Any] | DomainError:
        try:
            return self.run(cmd)
        except DomainError as exc:
            return exc
