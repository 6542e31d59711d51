"""Idempotent command execution with one atomic save, singly or in groups.

A group commit runs many commands against aggregates held in memory and saves
them all in one transaction; that is what lifts throughput from one round trip
per command to one per batch, without the domain knowing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from aggregates.errors import DomainError, InvalidInput, NotFound, PreconditionFailed, refusal
from aggregates.receipt import Receipt, params_hash

A = TypeVar("A", bound=Aggregate)


class ConcurrentUpdate(PreconditionFailed):
    """Another writer kept winning; the command changed nothing and may be retried."""


class UnitOfWork:
    """The aggregates one command (or one group of commands) reads and changes."""

    def __init__(self, app: Application[UUID]) -> None:
        self.app = app
        self.seen: dict[UUID, Aggregate | None] = {}

    def find(self, aggregate_id: UUID, cls: type[A]) -> A | None:
        if aggregate_id not in self.seen:
            try:
                self.seen[aggregate_id] = self.app.repository.get(aggregate_id)
            except AggregateNotFoundError:
                self.seen[aggregate_id] = None
        found = self.seen[aggregate_id]
        if found is not None and not isinstance(found, cls):
            return None
        return found  # type: ignore[return-value]

    def get(self, aggregate_id: UUID, cls: type[A], what: str) -> A:
        found = self.find(aggregate_id, cls)
        if found is None:
            raise NotFound(f"{what} {aggregate_id} not found")
        return found

    def add(self, aggregate: Aggregate) -> None:
        self.seen[aggregate.id] = aggregate

    def changed(self) -> list[Aggregate]:
        return [a for a in self.seen.values() if a is not None and a.pending_events]


@dataclass(frozen=True)
class Command:
    name: str
    key: str
    params: dict[str, Any]
    handler: Callable[[UnitOfWork], dict[str, Any]]


class IdempotentExecutor:
    def __init__(self, app: Application[UUID], city: str) -> None:
        self.app = app
        self.city = city

    def _apply(self, uow: UnitOfWork, cmd: Command) -> dict[str, Any]:
        if not cmd.key:
            raise InvalidInput("idempotency_key", "required on every command")
        receipt_id = Receipt.create_id(self.city, cmd.key)
        digest = params_hash(cmd.name, cmd.params)
        receipt = uow.find(receipt_id, Receipt)
        if receipt is not None:
            return receipt.replay(cmd.name, digest)
        try:
            result = cmd.handler(uow)
        except (PreconditionFailed, NotFound) as exc:
            # Handlers run every check before they change anything, so only the
            # refusal itself is recorded here.
            uow.add(Receipt(self.city, cmd.key, cmd.name, digest, refusal(exc)))
            raise
        uow.add(Receipt(self.city, cmd.key, cmd.name, digest, result))
        return result

    def run(self, cmd: Command, attempts: int = 5) -> dict[str, Any]:
        for _ in range(attempts):
            uow = UnitOfWork(self.app)
            try:
                result = self._apply(uow, cmd)
            except DomainError as exc:
                refused: DomainError | None = exc
            else:
                refused = None
            try:
                self.app.save(*uow.changed())
            except IntegrityError:
                # Lost a race: the receipt (if the twin committed) or fresh state decides.
                continue
            if refused is not None:
                raise refused
            return result
        raise ConcurrentUpdate("too many concurrent updates; retry with the same key")

    def run_group(self, cmds: Sequence[Command]) -> list[dict[str, Any] | DomainError]:
        uow = UnitOfWork(self.app)
        results: list[dict[str, Any] | DomainError] = []
        for cmd in cmds:
            try:
                results.append(self._apply(uow, cmd))
            except DomainError as exc:
                results.append(exc)
        try:
            self.app.save(*uow.changed())
        except IntegrityError:
            return [self._run_caught(cmd) for cmd in cmds]
        return results

    def _run_caught(self, cmd: Command) -> dict[str, Any] | DomainError:
        try:
            return self.run(cmd)
        except DomainError as exc:
            return exc
