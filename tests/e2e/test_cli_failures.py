"""Every ordinary mistake or failure on the command line ends as one line on stderr naming the
cause and what to do, an exit code (2 usage or configuration, 1 refused or operational, 130
Ctrl-C), and no traceback. Each case runs the installed `civfed` script, as a person would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.demo.local_federation import LocalFederation
from tests.e2e.flows import open_wallet

ROOT = Path(__file__).resolve().parents[2]
CIVFED = Path(sys.executable).parent / "civfed"
KNOWN = (
    "known cities: bologna (Bologna), rome (Rome), sint_niklaas (Sint-Niklaas), vienna (Vienna),"
    " zwolle (Zwolle)"
)


def civfed(*args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CIVFED), *args],
        cwd=ROOT,
        env={**os.environ, "CIVFED_LANG": "en", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        **kw,
    )


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The only line on stderr, after checking the exit code and that no traceback was shown."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_a_data_dir_that_is_a_file_or_missing(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    line = one_line(civfed("rules", "show", "--city", "vienna", "--data-dir", str(tmp_path / "file")), 2)
    assert line == f"civfed: configuration error: --data-dir: {tmp_path / 'file'} is not a directory"
    line = one_line(civfed("demo", "--scale", "0.05", "--data-dir", str(tmp_path / "file")), 2)
    assert line == f"civfed: configuration error: --data-dir: {tmp_path / 'file'} is not a directory"
    for command in (["dashboard"], ["project"], ["rules", "show", "--city", "vienna"], ["retention", "run"]):
        missing = tmp_path / "typo"
        line = one_line(civfed(*command, "--data-dir", str(missing)), 2)
        assert line == (
            f"civfed: --data-dir: the data directory {missing} does not exist; check the path, or create a"
            f" demo federation there with `civfed demo --data-dir {missing}`"
        ), command
        assert not missing.exists()  # nothing was created by the mistake


def test_a_read_only_data_dir() -> None:
    # The superuser writes anywhere: then the case is run as nobody, in a folder nobody can reach.
    as_nobody: dict[str, Any] = {"user": 65534, "group": 65534} if os.geteuid() == 0 else {}
    home = Path(tempfile.mkdtemp(prefix="civfed-ro-"))
    home.chmod(0o755)
    folder = home / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    expected = (
        f"civfed: the data directory {folder} is read-only for this user; give it write access"
        " or choose another with --data-dir"
    )
    for command in (["demo", "--scale", "0.05"], ["rules", "show", "--city", "vienna"]):
        result = civfed(*command, "--data-dir", str(folder), env={"HOME": str(home)}, **as_nobody)
        assert one_line(result, 2) == expected, command
    folder.chmod(0o755)
    shutil.rmtree(home)


def test_ports_are_checked_before_anything_runs(tmp_path: Path, busy_port: int) -> None:
    line = one_line(civfed("demo", "--serve", "--port", "99999", "--data-dir", str(tmp_path / "d")), 2)
    assert (
        line
        == "civfed: argument --port: '99999' is not a port number (0 to 65535) (see `civfed demo --help`)"
    )
    assert not (tmp_path / "d").exists()  # refused before the demo ran
    result = civfed("demo", "--serve", "--port", str(busy_port), "--data-dir", str(tmp_path / "d"))
    assert one_line(result, 2) == (
        f"civfed: configuration error: --port: cannot listen on 127.0.0.1:{busy_port}"
        " (address already in use)"
    )
    assert not (tmp_path / "d").exists()
    (tmp_path / "data").mkdir()
    result = civfed("dashboard", "--port", str(busy_port), "--data-dir", str(tmp_path / "data"))
    assert result.stdout == ""  # no address announced for a server that never listened
    assert one_line(result, 2) == (
        f"civfed: configuration error: --port: cannot listen on 127.0.0.1:{busy_port}"
        " (address already in use)"
    )


def test_serve_on_a_busy_port(tmp_path: Path, busy_port: int) -> None:
    fed = LocalFederation(tmp_path / "fed", ["vienna", "sint_niklaas"])
    env = {**fed.environment("vienna"), "CIVFED_GRPC_PORT": str(busy_port)}
    (tmp_path / "data").mkdir()
    result = civfed("serve", "--city", "Vienna", "--data-dir", str(tmp_path / "data"), env=env)
    assert "Traceback" not in result.stderr and result.returncode == 2, result.stderr
    # grpc's core logs its own line on a failed bind before civfed's.
    assert result.stderr.strip().splitlines()[-1] == (
        f"civfed: configuration error: CIVFED_GRPC_PORT: cannot listen on 127.0.0.1:{busy_port}"
        " (in use, or not an address of this host)"
    )


POSTGRES = {
    "PERSISTENCE_MODULE": "eventsourcing.postgres",
    "POSTGRES_HOST": "127.0.0.1",
    "POSTGRES_USER": "postgres",
    "POSTGRES_DBNAME": "test",
}


def test_postgres_down_or_its_database_missing(busy_port: int) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    started = time.monotonic()
    result = civfed("rules", "show", "--city", "vienna", env={**POSTGRES, "POSTGRES_PORT": str(port)})
    line = one_line(result, 1)
    assert line.startswith(f"civfed: cannot reach PostgreSQL at 127.0.0.1:{port} (")
    assert line.endswith("); start it, or check POSTGRES_HOST and POSTGRES_PORT")
    assert time.monotonic() - started < 20  # not the connection pool's 30 seconds
    result = civfed("retention", "run", env={**POSTGRES, "POSTGRES_DBNAME": "civfed_no_such_database"})
    assert one_line(result, 2) == (
        "civfed: the PostgreSQL database 'civfed_no_such_database' does not exist on 127.0.0.1:5432;"
        " create it (createdb civfed_no_such_database) or set POSTGRES_DBNAME"
    )


def test_settings_errors_name_the_variable_in_plain_words() -> None:
    line = one_line(civfed("rules", "show", "--city", "vienna", env={"POSTGRES_PORT": "five"}), 2)
    expected = "invalid environment: POSTGRES_PORT must be a whole number (it is 'five')"
    assert line == f"civfed: configuration error: {expected}"
    env = {"PERSISTENCE_MODULE": "eventsourcing.postgres"}
    line = one_line(civfed("rules", "show", "--city", "vienna", env=env), 2)
    assert line == (
        "civfed: configuration error: invalid environment: POSTGRES_DBNAME must be set when"
        " PERSISTENCE_MODULE is eventsourcing.postgres"
    )
    for jargon in ("(root)", "Value error", "Field required", "Input should"):
        assert jargon not in line


def test_cities_by_any_of_their_names_and_an_unknown_one_lists_them(tmp_path: Path) -> None:
    names = {"Vienna": "vienna", "wien": "vienna", "sint-niklaas": "sint_niklaas"}
    names |= {"Sint-Niklaas": "sint_niklaas", "SINT_NIKLAAS": "sint_niklaas", "Roma": "rome"}
    for name, key in names.items():
        result = civfed("rules", "show", "--city", name, "--data-dir", str(tmp_path))
        assert result.returncode == 0, (name, result.stderr)
        assert result.stdout.startswith(f"Rulebook of {key}:"), name
    assert civfed("rules", "show", "vienna", "--data-dir", str(tmp_path)).returncode == 0  # the older form
    line = one_line(civfed("rules", "show", "--city", "atlantis", "--data-dir", str(tmp_path)), 2)
    assert line == f"civfed: unknown city 'atlantis'; {KNOWN}"
    line = one_line(civfed("project", "--city", "vienna", "--city", "gotham", "--data-dir", str(tmp_path)), 2)
    assert line == f"civfed: unknown city 'gotham'; {KNOWN}"


def test_retention_with_nothing_to_do_says_so(tmp_path: Path) -> None:
    result = civfed("retention", "run", "--city", "sint-niklaas", "--data-dir", str(tmp_path))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert (
        result.stdout == "sint_niklaas: nothing to do (no retention due yet; no wallet to close or erase).\n"
    )
    result = civfed("retention", "run", "--json", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    reports = json.loads(result.stdout)
    assert [r["city"] for r in reports] == ["bologna", "rome", "sint_niklaas", "vienna", "zwolle"]


def test_messages_in_the_citys_language_or_english_on_request(tmp_path: Path) -> None:
    missing = tmp_path / "typo"
    env = {"CIVFED_LANG": ""}
    german = one_line(civfed("rules", "show", "--city", "vienna", "--data-dir", str(missing), env=env), 2)
    assert german.startswith(f"civfed: --data-dir: das Datenverzeichnis {missing} existiert nicht")
    italian = one_line(civfed("rules", "show", "--city", "rome", "--data-dir", str(missing), env=env), 2)
    assert italian.startswith(f"civfed: --data-dir: la cartella dei dati {missing} non esiste")
    dutch = one_line(civfed("rules", "show", "--city", "zwolle", "--data-dir", str(missing), env=env), 2)
    assert dutch.startswith(f"civfed: --data-dir: de gegevensmap {missing} bestaat niet")
    english = civfed("rules", "show", "--city", "vienna", "--data-dir", str(missing), "--lang", "en", env=env)
    assert one_line(english, 2).startswith(f"civfed: --data-dir: the data directory {missing} does not exist")


def test_erase_a_bad_id_and_erasing_twice(tmp_path: Path) -> None:
    line = one_line(civfed("erase", "request", "not-a-uuid", "--legal-basis", "x", "--reference", "y"), 2)
    assert line == "civfed erase: WALLET_ID: 'not-a-uuid' is not a wallet id (a UUID)"
    fed = LocalFederation(tmp_path, ["vienna"])
    fed.start_in_process("vienna")
    try:
        wallet = open_wallet(fed.stubs("vienna"), "twice:open").wallet_id
        env = {
            "CIVFED_NODE_ADDRESS": f"127.0.0.1:{fed.running['vienna'].public_port}",
            "CIVFED_NODE_CA_FILE": str(fed.ca.ca_file),
        }

        def officer(name: str) -> dict[str, str]:
            return {**env, "CIVFED_STAFF_ACCESS_TOKEN": fed.idp.token(name, ["erasure_officer"])}

        tls = ("--server-name", "vienna")
        basis = ("--legal-basis", "art17_1b_consent_withdrawn", "--reference", "DSR-9")
        asked = civfed("erase", "request", wallet, *basis, *tls, env=officer("officer-dora"))
        request_id = json.loads(asked.stdout)["request_id"]
        done = civfed("erase", "approve", request_id, *tls, env=officer("officer-emil"))
        assert json.loads(done.stdout)["status"] == "erased", done.stderr
        again = civfed("erase", "approve", request_id, *tls, env=officer("officer-fay"))
        line = one_line(again, 0)
        assert line == f"civfed erase: already erased, nothing to do (erasure request {request_id} is erased)"
        assert "idempotency" not in again.stderr
    finally:
        fed.stop_all()


def test_two_demos_on_one_directory_and_ctrl_c(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = subprocess.Popen(
        [str(CIVFED), "demo", "--scale", "0.05", "--data-dir", str(data)],
        cwd=ROOT,
        env={**os.environ, "CIVFED_LANG": "en"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (data / "federation-keys").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        second = civfed("demo", "--scale", "0.05", "--data-dir", str(data))
        assert one_line(second, 1) == (
            f"civfed: another civfed demo is running on {data}; wait for it to finish,"
            " or give this one another --data-dir"
        )
        time.sleep(3)
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert "Traceback" not in err, err
    assert first.returncode == 130, err
    lines = err.strip().splitlines()
    assert lines[-1] == "civfed: interrupted; nothing half-done is kept, run the command again to continue"
    assert [line for line in lines if line.startswith("civfed")] == lines[-1:]  # the rest: phases done
    shutil.rmtree(data)
