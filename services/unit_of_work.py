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
from services import commands

A = TypeVar("A", bound=Aggregate)
C = TypeVar("C", bound=commands.Command)


class ConcurrentUpdate(PreconditionFailed):
    """Another writer kept winning; the command changed nothing and may be retried."""


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

    def find(self, aggregate_id: UUID, cls: type[A]) -> A | None:
        if aggregate_id not in self.seen:
            try:
                self.seen[aggregate_id] = self.app.repository.get(
                    aggregate_id, deepcopy_from_cache=self.copies
                )
            except AggregateNotFoundError:
                self.seen[aggregate_id] = None
        found = self.seen[aggregate_id]
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

    def changed(self) -> list[Aggregate]:
        return [a for a in self.seen.values() if a is not None and a.pending_events]


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

    @classmethod
    def of(cls, command: C, handle: Callable[[C, UnitOfWork], dict[str, Any]]) -> Job:
        return cls(
            command.name, command.idempotency_key, command.parameters(), partial(handle, command), command
        )

    @property
    def fingerprint(self) -> str:
        if self.command is not None:
            return self.command.fingerprint()
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

    def _apply(self, uow: UnitOfWork, cmd: Job, look_first: bool) -> dict[str, Any]:
        """Run one command into `uow`, adding its receipt.

        With `look_first` false the receipt is not read beforehand: a retried key
        then collides with its stored receipt at save time, which rolls the whole
        save back, and the caller looks again. That saves a read per command.
        """
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
                # refusal itself is recorded here.
                uow.add(Receipt(self.city, cmd.key, cmd.name, digest, refusal(exc), uow.owner))
            raise
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
        return results

    def _run_caught(self, cmd: Job) -> dict[str, Any] | DomainError:
        try:
            return self.run(cmd)
        except DomainError as exc:
            return exc
