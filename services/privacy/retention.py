"""Leaving and erasure: final spend windows that end, crypto-shredding, retention.

Erasure is two steps: an `Erased` event saved with the wallet closed (one atomic
save, idempotent like every command), then the owner's key is destroyed. If the
second step is interrupted, running the erasure again finishes it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from aggregates.errors import PreconditionFailed
from services.city import CityApplication
from services.commands import EraseWallet, ExpireWallet, FinishClosing
from services.event_log import event_type, read_events
from services.unit_of_work import Job


def finish_closing(app: CityApplication, key: str, wallet_id: UUID) -> Job:
    """Close a wallet whose final spend window has ended; what is left lapses."""
    return app.job(FinishClosing(key, wallet_id))


def erase_wallet(app: CityApplication, key: str, wallet_id: UUID, reason: str) -> dict[str, Any]:
    """Close the wallet if needed, record the erasure, then destroy the person's key."""
    out = app.execute(EraseWallet(key, wallet_id, reason))
    if app.keys is not None:
        app.keys.erase([wallet_id])
    return out


def wallet_ids(app: CityApplication) -> list[UUID]:
    return [UUID(str(e.originator_id)) for _, e in read_events(app) if event_type(e) == "Wallet.Opened"]


def run_retention(app: CityApplication) -> dict[str, Any]:
    """Record the expiry of wallets past their validity end; close wallets whose final spend
    window ended; erase a closed tourist wallet `tourist_erase_after_days` after its window
    ended; erase all once the retention period is over."""
    now = app.clock()
    cfg = app.city.config
    policy = cfg.retention
    due = policy is not None and now.date() >= policy.pilot_ends + dt.timedelta(days=policy.erase_after_days)
    keep_tourists = dt.timedelta(days=cfg.tourist_erase_after_days)
    closed = erased = expired = 0
    for wallet_id in wallet_ids(app):
        wallet = app.wallet(wallet_id)
        if wallet.erased:
            continue
        if due:
            erase_wallet(app, f"retention:erase:{wallet_id}", wallet_id, "retention period after the pilot")
            erased += 1
            continue
        if not wallet.closed and wallet.closes_at is None and wallet.expired(now):
            try:
                app.execute(app.job(ExpireWallet(f"retention:expire:{wallet_id}", wallet_id)))
                expired += 1
            except PreconditionFailed:
                pass  # recorded meanwhile by another run
            wallet = app.wallet(wallet_id)
        ends = wallet.spend_until
        if not wallet.closed and wallet.closes_at is not None and ends is not None and now >= ends:
            try:
                app.execute(finish_closing(app, f"retention:close:{wallet_id}", wallet_id))
                closed += 1
            except PreconditionFailed:
                pass  # closed meanwhile by another run
            wallet = app.wallet(wallet_id)
        stay_over = wallet.valid_until is not None and ends is not None and now >= ends + keep_tourists
        if wallet.closed and stay_over:
            reason = "tourist wallet closed after its stay"
            erase_wallet(app, f"retention:erase:{wallet_id}", wallet_id, reason)
            erased += 1
    report: dict[str, Any] = {"city": app.key, "retention_due": due, "closed": closed, "erased": erased}
    if expired:
        report["expired"] = expired
    return report
