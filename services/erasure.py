"""Erasure on request, application side: a holder's own request, granted at once, or an
erasure officer's request on a published legal basis, carried out only when a second
officer approves it. Either way the wallet is closed and marked erased in one save with
the request's record, and the person's key is destroyed right after (`shred`), as the
retention job does (services/privacy/retention.py).

Staff steps are written to the wallet's access log in the same save.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from aggregates.erasure import ErasureRequest
from aggregates.errors import not_found
from aggregates.wallet import Wallet
from services.access_log import record_in
from services.commands import ApproveErasure, Command, EraseOwnWallet, RequestErasure, WithdrawErasure
from services.privacy.keystore import KeyStore
from services.unit_of_work import UnitOfWork


class CityLike(Protocol):
    key: str
    keys: KeyStore | None

    def pseudonym(self, wallet_id: UUID) -> str: ...

    def clock(self) -> dt.datetime: ...

    @property
    def repository(self) -> Any: ...


def erase_in(wallet: Wallet, reason: str, now: dt.datetime, pseudonym: str) -> None:
    """Close the wallet if needed (the balance is forfeited) and record the erasure.

    `pseudonym`: the wallet's name outside the store (services/privacy/pseudonyms.py),
    computed while its key still exists, so the public `Erased` event can name it."""
    if wallet.erased:
        return
    if not wallet.closed:
        wallet.finish("erased", now)
    wallet.mark_erased(reason, pseudonym)


def status(request: ErasureRequest) -> dict[str, Any]:
    return {
        "request_id": str(request.id),
        "wallet_id": str(request.wallet_id),
        "status": request.status,
        "legal_basis": request.legal_basis,
        "reference": request.reference,
        "requested_by": request.requested_by,
        "approved_by": request.approved_by,
        "withdrawn_by": request.withdrawn_by,
    }


def handlers(app: CityLike) -> dict[type[Command], Callable[[Any, UnitOfWork], dict[str, Any]]]:
    # Results hold ids, codes and authenticated subjects only, so their receipts are not
    # sealed with the person's key (`uow.owner = None`): a retry after the erasure still
    # replays the outcome instead of a redaction.

    def erase_own(cmd: EraseOwnWallet, uow: UnitOfWork) -> dict[str, Any]:
        uow.owner = None
        wallet = uow.get(cmd.wallet_id, Wallet, "wallet")
        now = app.clock()
        request = ErasureRequest.by_holder(app.key, wallet.id, now)
        uow.add(request)
        erase_in(wallet, "the holder asked for erasure", now, app.pseudonym(wallet.id))
        return status(request)

    def request_erasure(cmd: RequestErasure, uow: UnitOfWork) -> dict[str, Any]:
        uow.owner = None
        wallet = uow.get(cmd.wallet_id, Wallet, "wallet")
        wallet.check_not_erased()
        request = ErasureRequest.by_officer(
            app.key, wallet.id, cmd.legal_basis, cmd.reference, cmd.requested_by
        )
        uow.add(request)
        action = f"requested erasure {request.id} ({cmd.legal_basis}, {cmd.reference})"
        record_in(uow, app.key, wallet.id, cmd.requested_by, cmd.roles, action, "", app.clock(), False)
        return status(request)

    def approve_erasure(cmd: ApproveErasure, uow: UnitOfWork) -> dict[str, Any]:
        request = uow.get(cmd.request_id, ErasureRequest, "erasure request")
        uow.owner = None
        wallet = uow.get(request.wallet_id, Wallet, "wallet")
        now = app.clock()
        request.approve(cmd.approved_by, now)
        reason = f"erasure request {request.id} ({request.legal_basis})"
        erase_in(wallet, reason, now, app.pseudonym(wallet.id))
        action = f"approved erasure {request.id}; wallet erased"
        record_in(uow, app.key, wallet.id, cmd.approved_by, cmd.roles, action, "", now, False)
        return status(request)

    def withdraw_erasure(cmd: WithdrawErasure, uow: UnitOfWork) -> dict[str, Any]:
        request = uow.get(cmd.request_id, ErasureRequest, "erasure request")
        uow.owner = None
        request.withdraw(cmd.withdrawn_by, cmd.reason)
        action = f"withdrew erasure request {request.id}"
        now = app.clock()
        record_in(uow, app.key, request.wallet_id, cmd.withdrawn_by, cmd.roles, action, "", now, False)
        return status(request)

    return {
        EraseOwnWallet: erase_own,
        RequestErasure: request_erasure,
        ApproveErasure: approve_erasure,
        WithdrawErasure: withdraw_erasure,
    }


def shred(app: CityLike, result: dict[str, Any]) -> None:
    """Once an erasure is saved, destroy the person's key (again, harmlessly, on a retry)."""
    if result.get("status") == "erased" and app.keys is not None:
        app.keys.erase([UUID(result["wallet_id"])])


def erasure_request(app: CityLike, request_id: UUID) -> ErasureRequest:
    try:
        found = app.repository.get(request_id)
    except AggregateNotFoundError:
        found = None
    if not isinstance(found, ErasureRequest):
        raise not_found("erasure request", request_id)
    return found
