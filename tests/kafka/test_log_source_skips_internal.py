"""Reading a PostgreSQL log for the read models leaves out, in the store's own query, the
events that never become public (receipts, a fund's draws): the read models come out
exactly as from every notification read and converted one by one."""

from __future__ import annotations

import pytest

from projections.integration import PUBLIC_FIELDS, integration_events, is_public
from projections.log_source import _select, catch_up_log, internal_topics, log_source
from projections.projector import Delivery, Projector
from projections.store import Store
from services.city import CityApplication
from services.privacy.retention import erase_wallet
from tests.kafka.activity import season
from tests.kafka.conftest import snapshot


def test_internal_topics_are_never_public_and_hold_the_receipts_and_draws(bologna: CityApplication) -> None:
    topics = internal_topics()
    assert "aggregates.receipt:Receipt.Recorded" in topics
    assert "aggregates.fund:Fund.Drawn" in topics
    assert not [t for t in topics if is_public(t) or t.rpartition(":")[2] in PUBLIC_FIELDS]


def test_the_read_models_are_those_of_every_notification_read(
    bologna: CityApplication, read_store: Store, fresh_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An erasure renames the wallet's rows to a random token: the same one in both builds here.
    monkeypatch.setattr("projections.erasure.secrets.token_hex", lambda n: "5e" * n)
    wallets = season(bologna, "skip", people=15, days=3)
    erase_wallet(bologna, "skip:erase", wallets[3], "holder asked")
    season(bologna, "after", people=4, days=1)
    rows = bologna.recorder.select_notifications(start=0, limit=1_000_000, inclusive_of_start=False)
    # The reference: every notification of the log, in one batch, internal ones included.
    reference = Projector(fresh_store)
    events = integration_events("bologna", rows, bologna)
    every = [Delivery(0, n.id, e, n.id) for n, e in zip(rows, events, strict=True)]
    reference.apply_batch("log:bologna", every)
    # Read in pages much smaller than the log, so pages end on skipped stretches too.
    projector = Projector(read_store)
    applied = catch_up_log(projector, bologna, "bologna", page=7)
    assert applied == sum(e is not None for e in events) > 0
    assert snapshot(read_store) == snapshot(fresh_store)
    last_public = max(n.id for n, e in zip(rows, events, strict=True) if e is not None)
    assert projector.positions(log_source("bologna"))[0] == (last_public, last_public)
    # What was left out is only what stays internal, and nothing after the position is public.
    kept = {n.id for n in _select(bologna.recorder, 0, 1_000_000)}
    assert {n.id for n, e in zip(rows, events, strict=True) if e is not None} <= kept < {n.id for n in rows}
    assert catch_up_log(projector, bologna, "bologna") == 0
