"""The federation's periodic sweep: lapsed holds released, unfinished sagas moved on.

Time is the clock the home and the acceptor were given, so a test or the fault simulation
moves a hold past its expiry by moving that clock, never by waiting.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from aggregates.errors import DomainError
from aggregates.redemption import ForeignRedemption
from services.federation.acceptor import Acceptor
from services.federation.home import HomeRedemptions
from services.federation.ledger import RedemptionLedger
from services.federation.partner import PartnerUnreachable
from services.unit_of_work import Job, UnitOfWork

log = logging.getLogger("civfed.saga")


def sweep(
    home: HomeRedemptions,
    acceptor: Acceptor,
    ledger: RedemptionLedger,
    execute: Callable[[Job], dict[str, Any]],
    settle: dt.timedelta = dt.timedelta(0),
) -> None:
    """Release lapsed holds (home side) and move unfinished sagas on (accepting side).

    A saga started less than `settle` ago may still be waiting on its shop's call, and is
    left be; a partner that cannot be reached is asked again next round.
    """
    app = home.app
    ledger.refresh(app)
    for rid in ledger.lapsed(home.clock()):
        execute(home.expire(rid))
    for saga_id in list(ledger.unfinished):
        try:
            if settle:
                saga = UnitOfWork(app).get(saga_id, ForeignRedemption, "redemption")
                # On the saga's clock; `created_on` is when its Started event was dated.
                if saga.state == "started" and acceptor.clock() - saga.created_on < settle:
                    continue
            acceptor.advance(saga_id)
        except (PartnerUnreachable, DomainError) as exc:  # a partner still down: next round
            log.info("saga %s not advanced: %s", saga_id, exc)
