"""Backups cannot resurrect: restoring an older store and key store does not undo an erasure.

The attack: copy the data directory (or dump the store and the key store: the nightly
backup), erase a person, restore the older copy. Before the erasure journal, the
restored key store held the person's key again and their history read "12.3 km by bike
on 4 May ..." again, with nothing to tell the operator; on PostgreSQL the keys sat in the
events' own database and were dumped and restored with them.

Now every erasure (the holder's own, two officers', the retention job's) is written to the
erasure journal, kept apart from both stores; `civfed erasures reapply` (the real command
line, here as a subprocess) destroys the keys again, and a node started before it refuses
to serve, naming the command.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

import pytest

from aggregates.wallet import Wallet
from services.city import CityApplication
from services.commands import ApproveErasure, EraseOwnWallet, RequestErasure
from services.demo.local_federation import LocalFederation
from services.erasure import shred
from services.history import history
from services.privacy.journal import open_journal
from services.privacy.retention import erase_wallet
from services.privacy.sealing import REDACTED
from services.settings.errors import ConfigError
from tests.conftest import PG_URL, new_schema
from tests.rights.apps import city_app, opened, personal_life

ROOT = Path(__file__).resolve().parents[2]
PG = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]


def civfed(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real command line, as an operator runs it (in English: the messages checked here)."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        env={**os.environ, "CIVFED_LANG": "en", **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def shown(app: CityApplication, wallet: UUID) -> str:
    return " ".join(f"{e.explanation} {e.fields}" for e in history(app, wallet))


def readable(app: CityApplication, wallet: UUID, secrets: list[str]) -> list[str]:
    text = shown(app, wallet)
    return [s for s in secrets if s in text]


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> LocalFederation:
    """Only for a valid node environment (certificates, keys, identity provider)."""
    return LocalFederation(tmp_path_factory.mktemp("node-files"), ["vienna"])


def node_refuses(fed: LocalFederation, env: dict[str, str]) -> str:
    result = civfed("serve", "--city", "vienna", env={**fed.environment("vienna"), **env})
    assert result.returncode != 0, result.stderr
    return result.stderr.strip().splitlines()[-1]


def node_serves(fed: LocalFederation, env: dict[str, str], folder: Path) -> None:
    """`civfed serve` starts and writes its ports; then it is stopped."""
    ports = folder / "vienna.ports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", "--city", "vienna", "--port-file", str(ports)],
        cwd=ROOT,
        env={**os.environ, **fed.environment("vienna"), **env, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ports.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ports.exists(), proc.stderr.read() if proc.poll() is not None and proc.stderr else "timeout"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def reapply(env: dict[str, str]) -> dict[str, int]:
    result = civfed("erasures", "reapply", "--city", "vienna", env=env)
    assert result.returncode == 0, result.stderr
    (report,) = json.loads(result.stdout)
    return dict(report)


def expected_refusal() -> str:
    return (
        "civfed: configuration error: the key store of vienna holds the keys of 1 wallet(s) that "
        "the erasure journal says were erased (a key store restored from an older backup?); "
        "run `civfed erasures reapply --city vienna` before serving"
    )


def test_every_kind_of_erasure_is_journalled(tmp_path: Path) -> None:
    app = city_app("vienna", tmp_path / "data")
    own, officers, retained = opened(app, "own"), opened(app, "officers"), opened(app, "retained")
    shred(app, app.execute(EraseOwnWallet("own:erase", own)))
    roles = ("erasure_officer",)
    basis = "art17_1e_legal_obligation"
    asked = app.execute(RequestErasure("officers:ask", officers, basis, "ref-1", "staff:a", roles))
    shred(app, app.execute(ApproveErasure("officers:ok", UUID(asked["request_id"]), "staff:b", roles)))
    erase_wallet(app, "retained:erase", retained, "retention period after the pilot")
    app.close()
    # Apart from the data directory: a copy of that folder does not hold it.
    assert [p.name for p in (tmp_path / "data").glob("*erasures*")] == []
    journal = open_journal({"SQLITE_DBNAME": str(tmp_path / "data" / "vienna.sqlite")}, "civfed_vienna")
    try:
        entries = journal.entries()
    finally:
        journal.close()
    assert sorted(w for w, _ in entries) == sorted([own, officers, retained])
    # Wallet ids and dates, nothing else.
    assert all(len(day) == 10 and day[4] == "-" for _, day in entries)


def test_restoring_a_copied_data_directory_does_not_bring_an_erased_person_back(
    tmp_path: Path, fed: LocalFederation
) -> None:
    data, backup = tmp_path / "data", tmp_path / "backup"
    env = {"CIVFED_DATA_DIR": str(data)}
    app = city_app("vienna", data)
    anna, secrets = personal_life(app, "anna")
    app.close()
    shutil.copytree(data, backup)  # the nightly backup: the whole data directory

    app = city_app("vienna", data)
    erase_wallet(app, "anna:erase", anna, "the holder asked for erasure")
    assert readable(app, anna, secrets) == [] and REDACTED in shown(app, anna)
    app.close()

    shutil.rmtree(data)
    shutil.copytree(backup, data)  # restored: store and key store from before the erasure
    app = city_app("vienna", data)
    # The attack as it worked before: the restored key store opens the history again.
    assert readable(app, anna, secrets) == secrets
    app.close()

    assert node_refuses(fed, env) == expected_refusal()

    first = reapply(env)
    assert first == {"city": "vienna", "journalled": 1, "keys_destroyed": 1, "erasures_recorded": 1}
    again = reapply(env)
    assert again == {"city": "vienna", "journalled": 1, "keys_destroyed": 0, "erasures_recorded": 0}

    app = city_app("vienna", data)
    assert readable(app, anna, secrets) == [] and REDACTED in shown(app, anna)
    assert app.wallet(anna).erased and app.wallet(anna).closed
    app.close()
    node_serves(fed, env, tmp_path)


def test_a_wallet_opened_after_the_backup_stays_erased_after_the_restore(tmp_path: Path) -> None:
    """The backup has no key for it: the reapply leaves an erased row, so none is ever made."""
    data, backup = tmp_path / "data", tmp_path / "backup"
    app = city_app("vienna", data)
    app.close()
    shutil.copytree(data, backup)
    app = city_app("vienna", data)
    late, _ = personal_life(app, "late")
    erase_wallet(app, "late:erase", late, "the holder asked for erasure")
    app.close()
    shutil.rmtree(data)
    shutil.copytree(backup, data)
    assert reapply({"CIVFED_DATA_DIR": str(data)})["keys_destroyed"] == 1
    app = city_app("vienna", data)
    assert app.keys is not None and app.keys.is_erased(late)
    assert app.keys.key_for(late, create=True) is None
    app.close()


def pg_dump(schema: str, path: Path) -> None:
    subprocess.run(["pg_dump", *PG, "-n", schema, "-Fc", "-f", str(path), "test"], check=True)


def pg_restore(path: Path) -> None:
    subprocess.run(["pg_restore", *PG, "--clean", "--if-exists", "-d", "test", str(path)], check=True)


def test_restoring_postgresql_dumps_of_the_store_and_key_store_does_not_bring_an_erased_person_back(
    pg_env: dict[str, str], pg_schemas: list[str], tmp_path: Path, fed: LocalFederation
) -> None:
    keys_schema, journal_schema = new_schema(pg_schemas), new_schema(pg_schemas)
    env = {
        **pg_env,
        "CIVFED_KEYSTORE_URL": f"{PG_URL}?schema={keys_schema}",
        "CIVFED_ERASURE_JOURNAL_URL": f"{PG_URL}?schema={journal_schema}",
    }
    app = city_app("vienna", tmp_path, env)
    anna, secrets = personal_life(app, "anna")
    app.close()
    # Each store backed up on its own: the events, and the key store apart from them.
    pg_dump(pg_env["POSTGRES_SCHEMA"], tmp_path / "store.dump")
    pg_dump(keys_schema, tmp_path / "keys.dump")

    app = city_app("vienna", tmp_path, env)
    erase_wallet(app, "anna:erase", anna, "the holder asked for erasure")
    assert readable(app, anna, secrets) == []
    app.close()

    pg_restore(tmp_path / "store.dump")
    pg_restore(tmp_path / "keys.dump")
    app = city_app("vienna", tmp_path, env)
    assert readable(app, anna, secrets) == secrets  # what the restore did before
    assert not app.wallet(anna).erased
    app.close()

    assert node_refuses(fed, env) == expected_refusal()
    assert reapply(env)["keys_destroyed"] == 1
    assert reapply(env)["keys_destroyed"] == 0

    app = city_app("vienna", tmp_path, env)
    assert readable(app, anna, secrets) == [] and REDACTED in shown(app, anna)
    wallet = app.repository.get(anna)
    assert isinstance(wallet, Wallet) and wallet.erased
    app.close()


def test_a_location_that_is_not_a_url_names_its_setting(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="CIVFED_ERASURE_JOURNAL_URL: must start with sqlite:// or postgresql://"
    ):
        city_app("vienna", tmp_path, {"CIVFED_ERASURE_JOURNAL_URL": "/var/lib/civfed/erasures"})
