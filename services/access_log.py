"""The access log, application side: staff reads of a person's data and staff actions on
their wallet, written to the wallet's own log (aggregates/access.py) and read back by the
person (or an auditor, whose read is itself logged).

Reads are logged before the data is returned: a read the log cannot record is refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from aggregates.access import AccessLog
from aggregates.wallet import Wallet
from services.commands import Command, RecordAccess
from services.unit_of_work import UnitOfWork


class CityLike(Protocol):
    key: str

    def clock(self) -> dt.datetime: ...

    @property
    def events(self) -> Any: ...


@dataclass(frozen=True)
class AccessEntry:
    at: str
    subject: str
    roles: tuple[str, ...]
    action: str
    purpose: str


def record_in(
    uow: UnitOfWork,
    city: str,
    wallet_id: UUID,
    subject: str,
    roles: tuple[str, ...],
    action: str,
    purpose: str,
    at: dt.datetime,
    read: bool,
) -> None:
    """Append to the wallet's access log inside `uow` (opened on first use)."""
    log_id = AccessLog.create_id(city, wallet_id)
    log = uow.find(log_id, AccessLog)
    if log is None:
        log = AccessLog(city, wallet_id)
        uow.add(log)
    log.record(subject, list(roles), action, purpose, at, read)


def handlers(app: CityLike) -> dict[type[Command], Callable[[Any, UnitOfWork], dict[str, Any]]]:
    def record_access(cmd: RecordAccess, uow: UnitOfWork) -> dict[str, Any]:
        uow.get(cmd.wallet_id, Wallet, "wallet")
        now = app.clock()
        record_in(uow, app.key, cmd.wallet_id, cmd.subject, cmd.roles, cmd.action, cmd.purpose, now, cmd.read)
        return {"recorded": True}

    return {RecordAccess: record_access}


def access_log(app: CityLike, wallet_id: UUID) -> list[AccessEntry]:
    """Every entry of the wallet's access log, oldest first (none if nobody ever looked)."""
    entries = []
    for e in app.events.get(AccessLog.create_id(app.key, wallet_id)):
        if type(e).__qualname__ != "AccessLog.Recorded":
            continue
        fields = vars(e)
        entries.append(
            AccessEntry(
                at=fields["at"].isoformat(),
                subject=fields["subject"],
                roles=tuple(fields["roles"]),
                action=fields["action"],
                purpose=str(fields["purpose"]),
            )
        )
    return entries
