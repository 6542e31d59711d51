"""Erasure reaches every copy: the Kafka topic and the read models, not only the store.

What was found before this change: after erasing a wallet, the read models still held
its per-wallet rows and the topic still named it by wallet id, forever (unlimited
retention). The report counted six per-wallet rows and 21 messages naming one wallet in
its scenario. The scenario here (Anna: a trip, a purchase, an upheld appeal, a voucher
taken by a shop), run against the code before the change, left 11 rows under her wallet
id (her balance, her hold, her appeal and eight dashboard people rows) and 11 of the 43
messages on the topic naming her by wallet id, two of them with her trips' CO2
(`quantity`, from the distance).

Now messages and rows name a wallet only by a pseudonym derived from its own key; the
erasure destroys the key and publishes `Wallet.Erased` under the pseudonym, on which every
read model replaces it with a random token. Searched here on the real tansu broker and in
SQLite and PostgreSQL read models (fed from Kafka and from the store, and rebuilt after
the erasure): no message names her wallet id, no row carries her wallet id, pseudonym,
hold ids or appeal id, the pseudonym cannot be computed again, and every total still
counts her amounts and her as one person. Hold ids and the appeal id are random; the
messages that carry them stay on the topic until its retention ends, and link to the
wallet only through the city's own store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from kafka import KafkaConsumer, TopicPartition

from projections.kafka_source import KafkaSource
from projections.log_source import catch_up_log
from projections.projector import Projector
from projections.store import Store
from services.city import CityApplication
from services.city_totals import city_totals
from services.privacy.retention import erase_wallet
from services.relay import Relay
from tests.conftest import PG_URL, new_schema
from tests.kafka.conftest import Broker
from tests.rights.apps import city_app, opened, personal_life

TOPIC = "civfed.vienna.events"


def life_with_a_voucher(app: CityApplication, tag: str) -> tuple[UUID, list[str]]:
    """personal_life, and a voucher of one token taken by a shop; returns the wallet and its ids."""
    wallet, _ = personal_life(app, tag)
    shop = UUID(app.execute(app.register_merchant(f"{tag}:vshop", "Books", "culture", True))["merchant_id"])
    voucher = app.execute(app.issue_voucher(f"{tag}:v", wallet, 1))
    app.execute(app.redeem_voucher(f"{tag}:r", UUID(voucher["voucher_id"]), shop))
    state = app.wallet(wallet)
    appeals = [str(a) for a in state.appeals]
    holds = [str(e.hold_id) for _, e in events_of(app, wallet) if hasattr(e, "hold_id")]
    assert appeals and holds
    assert [h for h in holds if str(wallet) in h] == []  # random, never made from the wallet id
    return wallet, [str(wallet), *appeals, *holds, voucher["voucher_id"]]


def events_of(app: CityApplication, wallet: UUID) -> list[tuple[int, Any]]:
    rows = app.recorder.select_notifications(start=0, limit=1_000_000)
    return [(n.id, app.mapper.to_domain_event(n)) for n in rows if n.originator_id == wallet]


def records(bootstrap: str) -> list[tuple[bytes, bytes]]:
    """Every message on the city's topic, (key, value), from the oldest it keeps."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    parts = [TopicPartition(TOPIC, p) for p in sorted(consumer.partitions_for_topic(TOPIC) or ())]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    ends = consumer.end_offsets(parts)
    out: list[tuple[bytes, bytes]] = []
    while any(consumer.position(tp) < ends[tp] for tp in parts):
        for batch in consumer.poll(timeout_ms=2000).values():
            out += [(r.key or b"", r.value) for r in batch]
    consumer.close()
    return out


def messages(bootstrap: str) -> list[bytes]:
    return [key + b"|" + value for key, value in records(bootstrap)]


def rows(store: Store) -> list[tuple[Any, ...]]:
    """Every row of every read model (positions excluded)."""
    projector = Projector(store)
    with store.transaction() as tx:
        return [row for m in projector.models for t in m.tables for row in tx.all(f"SELECT * FROM {t}")]


def totals(store: Store, city: str = "vienna") -> dict[str, Any]:
    """What the read models count: every cell, the people behind it, appeals and filers, balances."""
    with store.transaction() as tx:
        cells = tx.all("SELECT day, metric, key, value FROM rm_cells WHERE city = ?", (city,))
        people = tx.all(
            "SELECT day, metric, key, COUNT(*) FROM rm_cell_people WHERE city = ? GROUP BY day, metric, key",
            (city,),
        )
        appeals = tx.one("SELECT COUNT(*), COUNT(DISTINCT wallet_id) FROM rm_appeals WHERE city = ?", (city,))
        held = tx.one("SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM rm_holds WHERE city = ?", (city,))
        balance = tx.one("SELECT COALESCE(SUM(balance), 0) FROM rm_balances WHERE city = ?", (city,))
    return {
        "cells": sorted(map(tuple, cells)),
        "people": sorted(map(tuple, people)),
        "appeals": tuple(appeals or ()),
        "holds": tuple(held or ()),
        "balance": int((balance or (0,))[0]),
    }


def linked(found_in: list[Any], identifiers: list[str]) -> list[str]:
    text = "\n".join(map(str, found_in))
    return [i for i in identifiers if i in text]


def test_after_an_erasure_no_message_or_row_links_to_the_wallet_and_every_total_still_counts_it(
    broker: Broker, tmp_path: Path, pg_schemas: list[str]
) -> None:
    app = city_app("vienna", tmp_path)
    anna, anna_ids = life_with_a_voucher(app, "anna")
    others = [life_with_a_voucher(app, tag)[0] for tag in ("bert", "cleo")] + [opened(app, "dora")]
    name = app.pseudonym(anna)
    sqlite_models = Store(f"sqlite:///{tmp_path / 'read_models.sqlite'}")
    pg_models = Store(PG_URL, new_schema(pg_schemas))
    relay = Relay(
        app, "vienna", broker.bootstrap, Store(f"sqlite:///{tmp_path / 'relay.sqlite'}"), partitions=3
    )
    assert relay.publish_once(limit=100_000) > 0
    kafka = KafkaSource(broker.bootstrap, ["vienna"], Projector(sqlite_models))
    try:
        assert kafka.catch_up() > 0
        catch_up_log(Projector(pg_models), app, "vienna")
        # Before: she is there, by pseudonym only, and the raw topic never names her wallet id.
        assert linked(rows(sqlite_models), [name]) == [name] == linked(rows(pg_models), [name])
        assert any(name.encode() in m for m in messages(broker.bootstrap))
        # Her appeal's messages share her partition: a read model sees them before her erasure.
        appeal = anna_ids[1].encode()
        appeal_keys = {k for k, v in records(broker.bootstrap) if b"Appeal." in v and appeal in v}
        assert appeal_keys == {name.encode()}
        before = totals(sqlite_models)
        assert before == totals(pg_models) and before["appeals"] == (3, 3)

        erase_wallet(app, "anna:erase", anna, "the holder asked for erasure")
        assert relay.publish_once(limit=100_000) > 0
        assert kafka.catch_up() > 0
        assert catch_up_log(Projector(pg_models), app, "vienna") > 0
        rebuilt = Store(PG_URL, new_schema(pg_schemas))
        catch_up_log(Projector(rebuilt), app, "vienna")  # a rebuild after the key is gone

        on_topic = messages(broker.bootstrap)
        assert len(on_topic) > 40
        erased = [m for m in on_topic if b"Wallet.Erased" in m]
        assert len(erased) == 1 and name.encode() in erased[0]  # the erasure, by pseudonym
        assert linked([m.decode("latin-1") for m in on_topic], [str(anna), *map(str, others)]) == []
        for store in (sqlite_models, pg_models, rebuilt):
            assert linked(rows(store), [name, *anna_ids]) == []
            # The others are still there, by pseudonym.
            assert linked(rows(store), [app.pseudonym(w) for w in others[:2]]) == [
                app.pseudonym(w) for w in others[:2]
            ]
        # Nobody can compute her pseudonym again: her key is gone.
        assert app.keys is not None and app.keys.key_for(anna, create=True) is None
        # Every total still counts her amounts, and her as one person.
        after = totals(sqlite_models)
        assert after == totals(pg_models) == totals(rebuilt)
        assert {k: after[k] for k in ("cells", "people", "appeals", "holds")} == {
            k: before[k] for k in ("cells", "people", "appeals", "holds")
        }
        # Her remainder lapsed when the erasure closed the wallet: the balances sum to what
        # the store says is outstanding.
        assert after["balance"] == city_totals(app, "vienna").summary()["outstanding"]
        rebuilt.close()
    finally:
        kafka.close()
        relay.close()
        sqlite_models.close()
        pg_models.close()
        app.close()
