"""A page of the log turned into public events at once (projections/integration.py's
`integration_events`, what a rebuild and the log source read) gives exactly what one event
at a time, fully decoded, gives: the same events, the same pseudonyms, before and after an
erasure, though it leaves personal fields sealed and names wallets from a cache."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from civfed.v1 import events_pb2
from projections.integration import PUBLIC_FIELDS, integration_events, set_time, to_integration_event
from projections.log_source import catch_up_log, log_source
from projections.projector import Projector
from projections.store import Store
from services.city import CityApplication
from services.privacy.retention import erase_wallet
from services.privacy.sealing import PERSONAL_FIELDS, PUBLIC_AND_PERSONAL, SEALED_FIELDS
from tests.rights.apps import city_app, opened, personal_life


def one_by_one(app: CityApplication) -> list[events_pb2.Event | None]:
    rows = app.recorder.select_notifications(start=0, limit=1_000_000)
    return [to_integration_event("vienna", n.id, app.mapper.to_domain_event(n), app.pseudonym) for n in rows]


def paged(app: CityApplication, page: int) -> list[events_pb2.Event | None]:
    rows = app.recorder.select_notifications(start=0, limit=1_000_000)
    out: list[events_pb2.Event | None] = []
    for start in range(0, len(rows), page):
        out += integration_events("vienna", rows[start : start + page], app)
    return out


def test_no_public_field_is_personal() -> None:
    """What lets a page leave every personal field sealed."""
    assert PUBLIC_AND_PERSONAL == {}
    both = {(t, f) for t, fields in PUBLIC_FIELDS.items() for f in fields if f in PERSONAL_FIELDS.get(t, ())}
    assert both == set()


def test_a_page_gives_what_one_event_at_a_time_gives_before_and_after_an_erasure(tmp_path: Path) -> None:
    app = city_app("vienna", tmp_path)
    try:
        anna, _ = personal_life(app, "anna")
        bert, _ = personal_life(app, "bert")
        opened(app, "cleo")
        before = one_by_one(app)
        assert sum(e is not None for e in before) > 10
        assert sum(e is None for e in before) > 0  # internal events stay internal
        assert paged(app, 7) == before == paged(app, 1000)

        name = app.pseudonym(anna)
        erase_wallet(app, "erase:anna", anna, "asked")
        after = one_by_one(app)
        assert paged(app, 5) == after
        # Her earlier events keep the name her erasure recorded; nobody else's changed.
        assert after[: len(before)] == before
        erased = [e for e in after if e is not None and e.type == "Wallet.Erased"]
        assert [e.aggregate_id for e in erased] == [name]
        assert app.pseudonym(bert) in {e.aggregate_id for e in after if e is not None}
    finally:
        app.close()


def test_a_public_decode_leaves_personal_fields_out(tmp_path: Path) -> None:
    app = city_app("vienna", tmp_path)
    try:
        personal_life(app, "anna")
        rows = app.recorder.select_notifications(start=0, limit=1_000_000)
        credited = [n for n in rows if n.topic.endswith(":Wallet.Credited")]
        assert credited
        for n in credited:
            event = app.public_domain_event(n)
            assert SEALED_FIELDS not in vars(event)
            assert not {"explanation", "activity_id", "claim_id"} & set(vars(event))
            assert isinstance(event.amount, int)
            assert "explanation" in vars(app.mapper.to_domain_event(n))
    finally:
        app.close()


def test_a_cached_pseudonym_ends_with_the_key(tmp_path: Path) -> None:
    """A wallet whose key is gone with no recorded name is no longer named as before."""
    app = city_app("vienna", tmp_path)
    try:
        wallet = opened(app, "dora")
        name = app.pseudonym(wallet)
        assert app.pseudonym(wallet) == name  # from the cache
        assert app.keys is not None
        app.keys.erase([wallet])
        assert app.pseudonym(wallet) != name
        other = UUID(int=wallet.int ^ 1)
        app.prefetch_pseudonyms([wallet, other])
        assert app.pseudonym(wallet) != name
    finally:
        app.close()


def read_models(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    projector = Projector(store)
    with store.transaction() as tx:
        return {t: sorted(tx.all(f"SELECT * FROM {t}")) for m in projector.models for t in m.tables}


def test_pages_read_ahead_apply_what_one_page_applies_exactly_once(tmp_path: Path) -> None:
    app = city_app("vienna", tmp_path)
    whole, paged_store = (
        Store(f"sqlite:///{tmp_path / 'one.sqlite'}"),
        Store(f"sqlite:///{tmp_path / 'p.sqlite'}"),
    )
    try:
        for tag in ("anna", "bert", "cleo"):
            personal_life(app, tag)
        public = sum(e is not None for e in one_by_one(app))
        assert catch_up_log(Projector(whole), app, "vienna") == public
        paged_projector = Projector(paged_store)
        assert catch_up_log(paged_projector, app, "vienna", page=4) == public
        assert catch_up_log(paged_projector, app, "vienna", page=4) == 0  # nothing twice
        last = app.recorder.max_notification_id()
        assert paged_projector.positions(log_source("vienna"))[0][0] == last
        assert read_models(paged_store) == read_models(whole)
        assert not [t for t in threading.enumerate() if t.name.startswith("log-reader")]
    finally:
        whole.close()
        paged_store.close()
        app.close()


def test_a_page_that_fails_to_apply_stops_the_reader_and_keeps_the_last_good_position(tmp_path: Path) -> None:
    app = city_app("vienna", tmp_path)
    store = Store(f"sqlite:///{tmp_path / 'rm.sqlite'}")
    try:
        for tag in ("anna", "bert"):
            personal_life(app, tag)
        projector = Projector(store)
        applied = projector.apply_batch
        calls = 0

        def fail_third(source: str, deliveries: Any) -> int:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise RuntimeError("the read models' database went away")
            return applied(source, deliveries)

        projector.apply_batch = fail_third  # type: ignore[method-assign]
        with pytest.raises(RuntimeError, match="went away"):
            catch_up_log(projector, app, "vienna", page=3)
        assert not [t for t in threading.enumerate() if t.name.startswith("log-reader")]
        rows = app.recorder.select_notifications(start=0, limit=6)
        assert projector.positions(log_source("vienna"))[0][0] == rows[5].id
        projector.apply_batch = applied  # type: ignore[method-assign]
        catch_up_log(projector, app, "vienna", page=3)
        whole = Store(f"sqlite:///{tmp_path / 'one.sqlite'}")
        try:
            catch_up_log(Projector(whole), app, "vienna")
            assert read_models(store) == read_models(whole)
        finally:
            whole.close()
    finally:
        store.close()
        app.close()


@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(2026, 5, 3, 7, 15, 2, 123456, tzinfo=dt.UTC),
        dt.datetime(2026, 5, 3, 9, 15, 2, 999999, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.datetime(2026, 12, 31, 23, 59, 59),
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
    ],
)
def test_an_events_time_is_what_the_protobuf_conversion_gives(when: dt.datetime) -> None:
    ours, theirs = events_pb2.Event(), events_pb2.Event()
    set_time(ours, when)
    theirs.time.FromDatetime(when)
    assert (ours.time.seconds, ours.time.nanos) == (theirs.time.seconds, theirs.time.nanos)
