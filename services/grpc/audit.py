"""Staff reads of a person's data and staff actions on a wallet, written to that wallet's
access log by the servicers before they answer (services/access_log.py keeps the log).

A staff read needs a purpose: the request's `purpose` field or the call metadata
`civfed-purpose`; without one it is refused with INVALID_ARGUMENT and nothing is read.
Holders reading their own data are not logged: the log is about staff.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any
from uuid import UUID, uuid4

import grpc

from aggregates.access import check_purpose
from aggregates.errors import IdempotencyConflict
from services.commands import RecordAccess
from services.identity.policy import POLICY
from services.identity.principals import Principal, Staff

PURPOSE_HEADER = "civfed-purpose"


def acting_roles(method: str, staff: Staff) -> tuple[str, ...]:
    """The roles the policy admitted this staff member under, for this call."""
    allowed = POLICY.get(method)
    roles = staff.roles & allowed.who if allowed is not None else staff.roles
    return tuple(sorted(roles))


def purpose_of(context: grpc.ServicerContext, given: str) -> str:
    if given.strip():
        return given
    for key, value in context.invocation_metadata() or ():
        if key == PURPOSE_HEADER and isinstance(value, str):
            return value
    return ""


class Audit:
    """Writes access-log entries through the node's writer (so they commit like any command)."""

    def __init__(self, node: Any) -> None:
        self.node = node

    def read(
        self,
        context: grpc.ServicerContext,
        who: Principal,
        method: str,
        wallet_id: UUID,
        action: str,
        given_purpose: str = "",
    ) -> None:
        """Log a staff read of `wallet_id`'s data before it is returned; a holder's own read
        is not logged. Refuses a staff read that gives no purpose."""
        if not isinstance(who, Staff):
            return
        purpose = purpose_of(context, given_purpose)
        check_purpose(purpose)
        cmd = RecordAccess(
            f"access:read:{uuid4()}", wallet_id, who.ref, acting_roles(method, who), action, purpose, True
        )
        self.node.execute(self.node.app.job(cmd))

    def action(
        self,
        context: grpc.ServicerContext,
        who: Principal,
        method: str,
        wallet_id: UUID,
        action: str,
        key: str,
    ) -> None:
        """Log a staff action on `wallet_id` (done under idempotency key `key`: a retry logs
        nothing new). The purpose is recorded if the call gave one."""
        if not isinstance(who, Staff):
            return
        purpose = purpose_of(context, "")[:500]
        cmd = RecordAccess(
            f"access:action:{key}", wallet_id, who.ref, acting_roles(method, who), action, purpose, False
        )
        # A retry giving another purpose: the action was logged when it was done.
        with suppress(IdempotencyConflict):
            self.node.execute(self.node.app.job(cmd))
