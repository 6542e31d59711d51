"""Erasure by crypto-shredding: the key goes, the events stay, nothing personal is readable.

Checked against the raw bytes of the SQLite and PostgreSQL stores, the read
models, and the messages on a real Kafka-protocol broker, with totals unchanged.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

from projections.log_source import catch_up_log
from projections.projector import Projector
from projections.store import Store
from services.city import CityApplication
from services.city_totals import city_totals
from services.event_log import read_events
from services.history import history
from services.privacy.retention import erase_wallet, run_retention
from services.privacy.sealing import REDACTED
from services.settings.cities import load_city as app_city
from services.settings.cities import load_settings
from tests.conftest import PG_URL
from tests.kafka.conftest import Broker, relay_once
from tests.rights.apps import city_app, personal_life


def raw_sqlite_bytes(data_dir: Path, city: str) -> bytes:
    """Every byte of the event store on disk, journal and WAL included."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob(f"{city}.sqlite*")))


def found(secrets: list[str], blob: bytes) -> list[str]:
    return [s for s in secrets if s.encode() in blob]


def key_bytes(app: CityApplication, wallet: UUID) -> bytes:
    assert app.keys is not None
    key = app.keys.key_for(wallet, create=False)
    assert key is not None and len(key) == 32
    return key


def conserved(app: CityApplication) -> dict[str, Any]:
    totals = city_totals(app, app.key).summary()
    wallets = [UUID(w) for w in city_totals(app, app.key).per_wallet_issued]
    assert totals["outstanding"] == sum(app.wallet(w).balance + app.wallet(w).held for w in wallets)
    return totals


def test_personal_fields_are_never_stored_in_clear(tmp_path: Path) -> None:
    app = city_app("vienna", tmp_path)
    wallet, secrets = personal_life(app, "anna")
    app.close()
    assert found(secrets, raw_sqlite_bytes(tmp_path, "vienna")) == []
    # The holder still reads every one of them through the application.
    app = city_app("vienna", tmp_path)
    shown = " ".join(f"{e.explanation} {e.fields}" for e in history(app, wallet))
    assert [s for s in secrets if s not in shown] == []
    app.close()


def test_erasure_on_sqlite_leaves_totals_and_redacts_everything(tmp_path: Path) -> None:
    app = city_app("vienna", tmp_path)
    anna, anna_secrets = personal_life(app, "anna")
    bert, bert_secrets = personal_life(app, "bert")
    out = app.execute(app.close_wallet("anna:close", anna, "moving away"))
    assert out["closed"] is False and out["final_spend_until"]  # Vienna's final spend window
    later = app.clock() + dt.timedelta(days=31)
    app.clock = lambda: later
    assert run_retention(app)["closed"] == 1  # the window ended: closed, remainder lapsed
    key = key_bytes(app, anna)
    keys_file = tmp_path / "vienna.keys.sqlite"
    with sqlite3.connect(keys_file) as conn:
        (wrapped,) = conn.execute(
            "SELECT key FROM civfed_vienna_keys WHERE owner_id = ?", (str(anna),)
        ).fetchone()
    conn.close()
    # The key is on disk only wrapped under the key-store key, never in clear.
    assert bytes(wrapped) in keys_file.read_bytes() and key not in keys_file.read_bytes()
    before = conserved(app)

    erase_wallet(app, "anna:erase", anna, "holder asked for erasure")
    assert conserved(app) == before  # totals unchanged, tokens conserved
    app.close()

    # Raw bytes: the event store never had them, and the key is gone from its file.
    assert found(anna_secrets, raw_sqlite_bytes(tmp_path, "vienna")) == []
    assert key not in keys_file.read_bytes() and bytes(wrapped) not in keys_file.read_bytes()

    # Reopened (no cache): anna's history is all there but redacted; bert's is intact.
    app = city_app("vienna", tmp_path)
    entries = history(app, anna)
    assert [e.type for e in entries][:3] == ["Wallet.Opened", "Wallet.Credited", "Wallet.Spent"]
    assert "Wallet.Erased" in [e.type for e in entries]
    credited = [e for e in entries if e.type == "Wallet.Credited"]
    assert [(e.rule_id, e.rule_version, e.fields["amount"]) for e in credited] == [
        ("mobility-co2", 1, 2),  # about 50 kg saved
        ("mobility-co2", 1, 3),  # on appeal: about 66 kg + 10 kg carried
    ]
    assert {e.explanation for e in credited} == {REDACTED}
    # The explanation's message id and parameters are as erased as its English text, so it
    # reads as erased in every language.
    assert [(e.fields["explanation_id"], e.fields["explanation_args"]) for e in credited] == [
        (REDACTED, {"redacted": REDACTED})
    ] * 2
    for language in ("de-AT", "en", "it-IT"):
        read = history(app, anna, language)
        assert {e.explanation for e in read if e.type == "Wallet.Credited"} == {REDACTED}
    in_german = [e for e in history(app, bert, "de-AT") if e.type == "Wallet.Credited"]
    assert in_german and all(
        " km mit dem Fahrrad am " in e.explanation or " km mit der Straßenbahn am " in e.explanation
        for e in in_german
    )
    assert all(isinstance(e.fields["explanation_args"]["distance_m"], int) for e in in_german)
    everything = " ".join(f"{e.explanation} {e.fields}" for e in entries)
    assert found(anna_secrets, everything.encode()) == []
    assert REDACTED in everything
    shown = " ".join(f"{e.explanation} {e.fields}" for e in history(app, bert))
    assert [s for s in bert_secrets if s not in shown] == []
    # No event at all (receipts hold award explanations in their results) reveals anna.
    every_event = " ".join(str(vars(e)) for _, e in read_events(app))
    assert found(anna_secrets, every_event.encode()) == []
    assert found(bert_secrets, every_event.encode()) == bert_secrets
    assert conserved(app) == before
    app.close()


def test_projections_hold_only_pseudonyms_and_forget_an_erased_one(tmp_path: Path) -> None:
    app = city_app("vienna", tmp_path)
    anna, secrets = personal_life(app, "anna")
    bert, _ = personal_life(app, "bert")
    anna_name, bert_name = app.pseudonym(anna), app.pseudonym(bert)
    erase_wallet(app, "anna:erase", anna, "holder asked for erasure")
    store = Store(f"sqlite:///{tmp_path / 'rm.sqlite'}")
    projector = Projector(store)
    assert catch_up_log(projector, app, "vienna") > 0
    with store.transaction() as tx:
        rows = [row for m in projector.models for t in m.tables for row in tx.all(f"SELECT * FROM {t}")]
    store.close()
    app.close()
    text = " ".join(map(str, rows))
    assert bert_name in text and str(bert) not in text  # a wallet goes by its pseudonym only
    assert anna_name not in text and str(anna) not in text  # an erased one by nothing at all
    assert found(secrets, text.encode()) == []
    assert found(secrets, (tmp_path / "rm.sqlite").read_bytes()) == []


def test_erasure_on_postgresql_raw_rows(pg_env: dict[str, str], tmp_path: Path) -> None:
    app = city_app("vienna", tmp_path, pg_env)
    anna, secrets = personal_life(app, "anna")
    key = key_bytes(app, anna)
    before = conserved(app)
    erase_wallet(app, "anna:erase", anna, "holder asked for erasure")
    after = conserved(app)
    # Erasing an open wallet closes it: the remainder lapses; nothing else moves.
    assert {k: v for k, v in after.items() if k not in ("lapsed", "outstanding", "closed_wallets")} == {
        k: v for k, v in before.items() if k not in ("lapsed", "outstanding", "closed_wallets")
    }
    assert after["lapsed"] == before["outstanding"] and after["outstanding"] == 0
    app.close()
    schema = pg_env["POSTGRES_SCHEMA"]
    with psycopg.connect(PG_URL) as conn:
        states = conn.execute(f"SELECT state FROM {schema}.civfed_vienna_events").fetchall()
        keys = conn.execute(f"SELECT owner_id, key, erased_at FROM {schema}.civfed_vienna_keys").fetchall()
    blob = b"".join(bytes(s) for (s,) in states)
    assert len(states) > 10 and found(secrets, blob) == []
    assert [(k, e is not None) for o, k, e in keys if o == str(anna)] == [(None, True)]
    assert all(bytes(k) != key for _, k, _ in keys if k is not None)
    app = city_app("vienna", tmp_path, pg_env)
    assert {e.explanation for e in history(app, anna) if e.type == "Wallet.Credited"} == {REDACTED}
    app.close()


def test_kafka_messages_carry_no_personal_data(broker: Broker, tmp_path: Path) -> None:
    app = city_app("vienna", tmp_path)
    anna, secrets = personal_life(app, "anna")
    name = app.pseudonym(anna)
    erase_wallet(app, "anna:erase", anna, "holder asked for erasure")
    store = Store(f"sqlite:///{tmp_path / 'relay.sqlite'}")
    published, records = relay_once(app, "vienna", broker.bootstrap, store)
    raw = [r.value + (r.key or b"") for r in records]
    store.close()
    app.close()
    assert published > 5
    assert found(secrets, b"".join(raw)) == []
    assert not any(str(anna).encode() in m for m in raw)  # never the wallet id
    assert any(name.encode() in m for m in raw)  # its pseudonym, which nobody can compute again


def snapshotting_app(data_dir: Path) -> CityApplication:
    env = load_settings({"CIVFED_DATA_DIR": str(data_dir)}).eventsourcing_env("vienna")
    return CityApplication(app_city("vienna"), {**env, "IS_SNAPSHOTTING_ENABLED": "y"})


def test_snapshots_hold_no_readable_personal_data(tmp_path: Path) -> None:
    app = snapshotting_app(tmp_path)
    anna, secrets = personal_life(app, "anna")
    appeal_id = app.wallet(anna).appeals[0]
    app.take_snapshot(appeal_id)
    app.take_snapshot(anna)
    assert app.snapshots is not None
    assert len(list(app.snapshots.get(appeal_id))) == 1
    app.close()
    raw = raw_sqlite_bytes(tmp_path, "vienna")
    assert b'aggregates.appeal:Appeal"' in raw  # the snapshot (its state's topic) is on disk
    assert found(secrets, raw) == []

    app = snapshotting_app(tmp_path)
    assert app.appeal(appeal_id).reason.startswith("my commute anna")  # read back from the snapshot
    erase_wallet(app, "anna:erase", anna, "holder asked for erasure")
    app.close()
    app = snapshotting_app(tmp_path)
    appeal = app.appeal(appeal_id)
    assert (appeal.status, appeal.reason, appeal.subject_ref, appeal.decision_reason) == (
        "upheld",
        REDACTED,
        REDACTED,
        REDACTED,
    )
    assert app.wallet(anna).erased
    app.close()
