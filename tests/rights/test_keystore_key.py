"""The key-store key: data keys are stored only wrapped, bound to their owner, and rotatable.

On real SQLite files and a real PostgreSQL server: the stored rows never hold a data
key in clear, a wrong key-store key stops start-up naming its setting, a wrapped key
copied to another wallet's row does not open, and rotation keeps every history readable
while erasure still redacts.
"""

from __future__ import annotations

import base64
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from services.city import CityApplication
from services.cli import main
from services.cli.check_config import check_config
from services.demo.local_federation import LocalFederation
from services.history import history
from services.privacy.keystore import KeyStore, KeyStoreError
from services.privacy.keystore_key import SETTING, KeyStoreKeyError
from services.privacy.retention import erase_wallet
from services.privacy.sealing import REDACTED
from services.settings.cities import load_settings
from services.settings.errors import ConfigError
from tests.conftest import PG_URL, write_kek
from tests.rights.apps import city_app, personal_life

TABLE = "civfed_vienna_keys"


class Store:
    """One backend's settings and raw access to its key rows, as an attacker would read them."""

    def __init__(self, backend: str, data_dir: Path, pg_env: dict[str, str] | None) -> None:
        self.backend, self.data_dir, self.pg = backend, data_dir, pg_env or {}

    def env(self, kek: Path | None) -> dict[str, str]:
        env = dict(self.pg)
        env.pop(SETTING, None)
        return {**env, SETTING: str(kek)} if kek else env

    def app(self, kek: Path | None) -> CityApplication:
        return city_app("vienna", self.data_dir, self.env(kek))

    def _sql(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.backend == "sqlite":
            conn = sqlite3.connect(self.data_dir / "vienna.keys.sqlite")
            try:
                with conn:
                    return conn.execute(sql.replace("%s", "?"), params).fetchall()
            finally:
                conn.close()
        with psycopg.connect(PG_URL, autocommit=True) as pg:
            cur = pg.execute(sql.replace("civfed_", f"{self.pg['POSTGRES_SCHEMA']}.civfed_", 1), params)
            return cur.fetchall() if cur.description else []

    def rows(self) -> dict[str, bytes | None]:
        got = self._sql(f"SELECT owner_id, key FROM {TABLE}")
        return {str(o): (bytes(k) if k is not None else None) for o, k in got}

    def set_key(self, owner: UUID, key: bytes) -> None:
        self._sql(f"UPDATE {TABLE} SET key = %s WHERE owner_id = %s", (key, str(owner)))

    def raw(self) -> bytes:
        """Every byte an attacker with a backup gets (files, or the rows as dumped)."""
        if self.backend == "sqlite":
            return b"".join(p.read_bytes() for p in sorted(self.data_dir.glob("vienna.keys.sqlite*")))
        return b"".join(k or b"" for k in self.rows().values())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    pg = request.getfixturevalue("pg_env") if request.param == "postgres" else None
    return Store(request.param, tmp_path / "data", pg)


@pytest.fixture
def keks(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    (tmp_path / "secrets").mkdir()
    yield write_kek(tmp_path / "secrets" / "a.key"), write_kek(tmp_path / "secrets" / "b.key")


def data_key(app: CityApplication, owner: UUID) -> bytes:
    assert app.keys is not None
    key = app.keys.key_for(owner, create=False)
    assert key is not None and len(key) == 32
    return key


def shown(app: CityApplication, owner: UUID) -> str:
    return " ".join(f"{e.explanation} {e.fields}" for e in history(app, owner))


def test_stored_keys_never_hold_a_data_key_in_clear(store: Store, keks: tuple[Path, Path]) -> None:
    app = store.app(keks[0])
    owners = [personal_life(app, tag)[0] for tag in ("anna", "bert", "carla")]
    keys = [data_key(app, o) for o in owners]
    app.close()
    raw, rows = store.raw(), store.rows()
    assert set(map(str, owners)) <= set(rows)
    assert [k for k in keys if k in raw] == []
    kek = base64.b64decode(keks[0].read_text())
    assert kek not in raw and keks[0].read_bytes().strip() not in raw
    assert {len(rows[str(o)] or b"") for o in owners} == {69}  # version, key id, nonce, key, tag


def test_the_embedded_default_makes_a_private_key_file_in_the_data_dir(tmp_path: Path) -> None:
    app = city_app("vienna", tmp_path)
    anna, secrets = personal_life(app, "anna")
    key = data_key(app, anna)
    app.close()
    made = tmp_path / "keystore.key"
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert len(base64.b64decode(made.read_text().strip(), validate=True)) == 32
    assert key not in (tmp_path / "vienna.keys.sqlite").read_bytes()
    first = made.read_bytes()
    app = city_app("vienna", tmp_path)  # reopened: the same key file, history readable
    assert made.read_bytes() == first
    assert [s for s in secrets if s not in shown(app, anna)] == []
    app.close()


def test_a_wrong_key_store_key_stops_start_up_naming_the_setting(
    store: Store, keks: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = store.app(keks[0])
    personal_life(app, "anna")
    app.close()
    before = store.rows()
    with pytest.raises(KeyStoreKeyError, match=SETTING):
        store.app(keks[1])
    # The same through the command line: a configuration error, exit code 2, no traceback.
    for name, value in {**store.env(keks[1]), "CIVFED_DATA_DIR": str(store.data_dir)}.items():
        monkeypatch.setenv(name, value)
    assert main(["retention", "run", "--city", "vienna", "--lang", "en"]) == 2
    assert f"configuration error: {SETTING}: this key-store key does not open" in capsys.readouterr().err
    assert store.rows() == before  # nothing was changed by the failed starts


def test_a_malformed_or_missing_key_file_is_named(tmp_path: Path) -> None:
    for content in ("", "too short", base64.b64encode(b"x" * 31).decode(), "!" * 44):
        bad = tmp_path / "bad.key"
        bad.write_text(content)
        with pytest.raises(ConfigError, match=f"{SETTING}: .*32 random bytes, base64-encoded"):
            load_settings({SETTING: str(bad)})
    with pytest.raises(ConfigError, match=f"{SETTING}: .*no such file"):
        load_settings({SETTING: str(tmp_path / "nowhere.key")})


def test_postgresql_without_a_key_store_key_does_not_start(pg_env: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in pg_env.items() if k != SETTING}
    with pytest.raises(KeyStoreKeyError, match=f"{SETTING}: must be set when PERSISTENCE_MODULE"):
        city_app("vienna", tmp_path, env)
    for role in ("node", "relay"):
        problems = check_config(role, ["vienna"], env).problems
        assert f"invalid {role} settings: {SETTING}: required for the {role} on eventsourcing.postgres" in (
            problems
        )
    # The projector and dashboard read Kafka and the read models only: they need no key.
    for role in ("projector", "dashboard"):
        assert not [p for p in check_config(role, ["vienna"], env).problems if SETTING in p]


def test_a_node_on_postgresql_without_the_key_does_not_start(
    pg_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = {k: v for k, v in pg_env.items() if k != SETTING}
    fed = LocalFederation(tmp_path, ["vienna"], city_env={"vienna": store})
    monkeypatch.delenv(SETTING, raising=False)
    for name, value in fed.environment("vienna").items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--city", "vienna", "--lang", "en"]) == 2
    err = capsys.readouterr().err
    assert f"configuration error: {SETTING}: must be set when PERSISTENCE_MODULE is eventsourcing." in err


def test_a_wrapped_key_copied_to_another_wallet_does_not_open(store: Store, keks: tuple[Path, Path]) -> None:
    app = store.app(keks[0])
    anna, anna_secrets = personal_life(app, "anna")
    bert, _ = personal_life(app, "bert")
    app.close()
    rows = store.rows()
    anna_wrapped = rows[str(anna)]
    assert anna_wrapped is not None
    store.set_key(bert, anna_wrapped)
    app = store.app(keks[0])  # a fresh process: no cached keys
    with pytest.raises(KeyStoreError, match=f"stored key of {bert} does not open: .*copied from another"):
        history(app, bert)
    assert [s for s in anna_secrets if s not in shown(app, anna)] == []  # anna's own row still opens
    app.close()


def rotate(store: Store, new: Path, old: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    for name, value in {**store.env(old), "CIVFED_DATA_DIR": str(store.data_dir)}.items():
        monkeypatch.setenv(name, value)
    return main(["keys", "rotate", "--city", "vienna", "--new-key-file", str(new)])


def test_rotation_rewraps_every_key_and_keeps_every_history_readable(
    store: Store, keks: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = keks
    app = store.app(old)
    lives = {tag: personal_life(app, tag) for tag in ("anna", "bert", "carla")}
    carla = lives["carla"][0]
    erase_wallet(app, "carla:erase", carla, "holder asked for erasure")
    keys = {tag: data_key(app, owner) for tag, (owner, _) in lives.items() if tag != "carla"}
    app.close()
    before = store.rows()

    assert rotate(store, new, old, monkeypatch) == 0
    assert '"rewrapped": 2' in capsys.readouterr().out  # anna and bert; carla's key is gone

    after = store.rows()
    assert after[str(carla)] is None
    for tag, (owner, _) in lives.items():
        if tag != "carla":
            assert after[str(owner)] != before[str(owner)]
    assert [k for k in keys.values() if k in store.raw()] == []
    with pytest.raises(KeyStoreKeyError, match=SETTING):
        store.app(old)  # the old key no longer opens the store

    app = store.app(new)
    for tag, (owner, secrets) in lives.items():
        if tag != "carla":
            assert [s for s in secrets if s not in shown(app, owner)] == [], tag
            assert data_key(app, owner) == keys[tag]  # same data key, new wrapping
    carla_seen = shown(app, carla)
    assert REDACTED in carla_seen and [s for s in lives["carla"][1] if s in carla_seen] == []
    # After the rotation new wallets get keys, and erasure still redacts.
    dora, dora_secrets = personal_life(app, "dora")
    erase_wallet(app, "anna:erase", lives["anna"][0], "holder asked for erasure")
    app.close()
    app = store.app(new)
    assert [s for s in dora_secrets if s not in shown(app, dora)] == []
    anna_seen = shown(app, lives["anna"][0])
    assert REDACTED in anna_seen and [s for s in lives["anna"][1] if s in anna_seen] == []
    app.close()


def test_rotation_is_all_or_nothing(
    store: Store, keks: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = keks
    app = store.app(old)
    owners = [personal_life(app, tag)[0] for tag in ("anna", "bert", "carla")]
    app.close()
    # One row that does not open (copied from another wallet) stops the whole rotation.
    rows = store.rows()
    store.set_key(owners[1], rows[str(owners[0])] or b"")
    before = store.rows()
    with pytest.raises(KeyStoreError, match="copied from another"):
        rotate(store, new, old, monkeypatch)
    assert store.rows() == before  # not one row rewrapped
    app = store.app(old)  # still opens under the old key
    assert data_key(app, owners[2])
    app.close()
    with pytest.raises(KeyStoreKeyError, match=SETTING):
        store.app(new)


def test_a_process_left_on_the_old_key_adds_no_keys_after_a_rotation(
    tmp_path: Path, keks: tuple[Path, Path]
) -> None:
    old, new = (base64.b64decode(k.read_text()) for k in keks)
    path = str(tmp_path / "k.sqlite")
    stale, rotator = KeyStore.sqlite(path, TABLE, old), KeyStore.sqlite(path, TABLE, old)
    first = UUID(int=1)
    key = stale.key_for(first, create=True)
    assert rotator.rotate(new) == 1
    with pytest.raises(KeyStoreKeyError, match=f"{SETTING}: this key-store key does not open"):
        stale.key_for(UUID(int=2), create=True)
    assert rotator.key_for(UUID(int=2), create=False) is None  # nothing was added under the old key
    assert rotator.key_for(first, create=False) == key
    stale.close()
    rotator.close()


def test_keys_stored_in_clear_by_an_older_version_are_wrapped_on_open(
    tmp_path: Path, keks: tuple[Path, Path]
) -> None:
    path = tmp_path / "k.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE {TABLE} (owner_id TEXT PRIMARY KEY, key BLOB, erased_at TEXT)")
    clear = bytes(range(32))
    conn.execute(f"INSERT INTO {TABLE} VALUES (?, ?, NULL)", (str(UUID(int=7)), clear))
    conn.commit()
    conn.close()
    keys = KeyStore.sqlite(str(path), TABLE, base64.b64decode(keks[0].read_text()))
    assert keys.key_for(UUID(int=7), create=False) == clear
    keys.close()
    assert clear not in path.read_bytes()
