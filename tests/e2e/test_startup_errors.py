"""A wrong file, argument or busy port stops `civfed serve`, `civfed dashboard` and `civfed erase`
with one line naming it, no traceback.

Each case starts from a valid node environment (a throwaway CA) and breaks one setting.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from cluster import Cluster
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.demo.local_federation import LocalFederation

ROOT = Path(__file__).resolve().parents[2]
PEM = serialization.Encoding.PEM


def civfed(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real command line, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        env={**os.environ, "CIVFED_LANG": "en", **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def ec_key(path: Path, password: bytes | None = None) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    crypt = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    path.write_bytes(key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, crypt))
    return path


def ec_public_key(path: Path) -> Path:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    path.write_bytes(public.public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


def text(path: Path, content: str) -> Path:
    path.write_text(content)
    return path


def partner_key(fed: LocalFederation, city: str, path: Path) -> dict[str, str]:
    """CIVFED_PARTNERS with `city`'s voucher key file replaced by `path`."""
    partners = json.loads(fed.environment("vienna")["CIVFED_PARTNERS"])
    partners[city]["public_key_file"] = str(path)
    return {"CIVFED_PARTNERS": json.dumps(partners)}


# name -> (the broken setting, the message after "civfed: configuration error: "), given the
# federation and a scratch folder.
Case = Callable[[LocalFederation, Path], tuple[dict[str, str], str]]
CASES: dict[str, Case] = {
    "signing key is an EC key": lambda f, d: (
        {"CIVFED_SIGNING_KEY_FILE": str(ec_key(d / "ec.key"))},
        f"CIVFED_SIGNING_KEY_FILE: {d / 'ec.key'} is not an Ed25519 private key (it holds an EC key)",
    ),
    "signing key is not PEM": lambda f, d: (
        {"CIVFED_SIGNING_KEY_FILE": str(text(d / "x.key", "hello\n"))},
        f"CIVFED_SIGNING_KEY_FILE: {d / 'x.key'} is not an Ed25519 private key (it is not PEM)",
    ),
    "signing key is the public half": lambda f, d: (
        {"CIVFED_SIGNING_KEY_FILE": str(f.files["vienna"].public_key)},
        f"CIVFED_SIGNING_KEY_FILE: {f.files['vienna'].public_key} is not an Ed25519 private key"
        " (it looks like a public key)",
    ),
    "partner key is a certificate": lambda f, d: (
        partner_key(f, "sint_niklaas", f.files["sint_niklaas"].cert),
        f"CIVFED_PARTNERS.sint_niklaas.public_key_file: {f.files['sint_niklaas'].cert} is not an"
        " Ed25519 public key (it looks like a certificate)",
    ),
    "partner key is an EC key": lambda f, d: (
        partner_key(f, "sint_niklaas", ec_public_key(d / "ec.pub")),
        f"CIVFED_PARTNERS.sint_niklaas.public_key_file: {d / 'ec.pub'} is not an Ed25519 public key"
        " (it holds an EC key)",
    ),
    "partner key is a private key": lambda f, d: (
        partner_key(f, "sint_niklaas", f.files["sint_niklaas"].signing_key),
        f"CIVFED_PARTNERS.sint_niklaas.public_key_file: {f.files['sint_niklaas'].signing_key} is not"
        " an Ed25519 public key (it looks like a private key)",
    ),
    "TLS key is another certificate's": lambda f, d: (
        {"CIVFED_TLS_KEY_FILE": str(f.files["sint_niklaas"].key)},
        f"CIVFED_TLS_KEY_FILE does not match CIVFED_TLS_CERT_FILE ({f.files['sint_niklaas'].key}"
        f" is not the key of {f.files['vienna'].cert})",
    ),
    "TLS key is not PEM": lambda f, d: (
        {"CIVFED_TLS_KEY_FILE": str(text(d / "tls.key", "\x00garbage"))},
        f"CIVFED_TLS_KEY_FILE: {d / 'tls.key'} is not an unencrypted PEM private key (it is not PEM)",
    ),
    "TLS key is encrypted": lambda f, d: (
        {"CIVFED_TLS_KEY_FILE": str(ec_key(d / "enc.key", b"secret"))},
        f"CIVFED_TLS_KEY_FILE: {d / 'enc.key'} is not an unencrypted PEM private key"
        " (it looks like an encrypted private key)",
    ),
    "TLS certificate is a key": lambda f, d: (
        {"CIVFED_TLS_CERT_FILE": str(f.files["vienna"].key)},
        f"CIVFED_TLS_CERT_FILE: {f.files['vienna'].key} holds no PEM certificate"
        " (it looks like a private key)",
    ),
    "CA file is not PEM": lambda f, d: (
        {"CIVFED_TLS_CA_FILE": str(text(d / "ca.der", "0\x82\x01"))},
        f"CIVFED_TLS_CA_FILE: {d / 'ca.der'} holds no PEM certificate (it is not PEM)",
    ),
    "CA file has a damaged certificate": lambda f, d: (
        {
            "CIVFED_TLS_CA_FILE": str(
                text(d / "ca.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            )
        },
        f"CIVFED_TLS_CA_FILE: {d / 'ca.pem'} holds no PEM certificate (its CERTIFICATE block cannot be read)",
    ),
    "data dir is a file": lambda f, d: (
        {"CIVFED_DATA_DIR": str(text(d / "data", ""))},
        f"CIVFED_DATA_DIR: {d / 'data'} is not a directory",
    ),
    "store is not a database": lambda f, d: (
        {"CIVFED_DATA_DIR": str(text(d / "vienna.sqlite", "x" * 4096).parent)},
        f"CIVFED_DATA_DIR: cannot open the vienna stores in {d} (file is not a database)",
    ),
}


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> LocalFederation:
    return LocalFederation(tmp_path_factory.mktemp("startup"), ["vienna", "sint_niklaas"])


def one_line(result: subprocess.CompletedProcess[str], alone: bool = True) -> str:
    """civfed's last line on stderr; with `alone`, its only one."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 or not alone, result.stderr
    return lines[-1]


@pytest.mark.parametrize("name", list(CASES))
def test_a_wrong_file_stops_serve_naming_its_setting(name: str, fed: LocalFederation, tmp_path: Path) -> None:
    change, message = CASES[name](fed, tmp_path)
    env = {**fed.environment("vienna"), **change}
    result = civfed("serve", "--city", "vienna", env=env)
    assert result.returncode == 2, result.stderr
    assert one_line(result) == f"civfed: configuration error: {message}"
    if "CIVFED_DATA_DIR" not in change:  # key and certificate files are checked before the store opens
        assert list(Path(env["CIVFED_DATA_DIR"]).iterdir()) == []


@pytest.mark.parametrize("named", ["--data-dir", "CIVFED_DATA_DIR"])
def test_a_missing_data_directory_stops_serve_however_it_is_named(
    named: str, fed: LocalFederation, tmp_path: Path
) -> None:
    """A mistyped path would start a node with an empty store beside the real one."""
    missing = tmp_path / "no-such-data"
    env = {**fed.environment("vienna"), "CIVFED_DATA_DIR": str(missing)}
    args = ("--data-dir", str(missing)) if named == "--data-dir" else ()
    result = civfed("serve", "--city", "vienna", *args, env=env)
    assert result.returncode == 2, result.stderr
    assert one_line(result) == (
        f"civfed: {named}: the data directory {missing} does not exist; check the path, "
        "or create the directory for a new node"
    )
    assert not missing.exists()


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_a_port_in_use_stops_serve_naming_the_setting(fed: LocalFederation, busy_port: int) -> None:
    result = civfed(
        "serve", "--city", "vienna", env={**fed.environment("vienna"), "CIVFED_GRPC_PORT": str(busy_port)}
    )
    assert result.returncode == 2, result.stderr
    # grpc's core logs its own line on a failed bind before civfed's.
    assert one_line(result, alone=False) == (
        f"civfed: configuration error: CIVFED_GRPC_PORT: cannot listen on 127.0.0.1:{busy_port}"
        " (in use, or not an address of this host)"
    )


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Vienna's node, a `civfed serve` process on ports the kernel picked, read back from it."""
    cluster = Cluster(LocalFederation(tmp_path_factory.mktemp("busy"), ["vienna", "sint_niklaas"]))
    cluster.start("vienna")
    yield cluster
    assert cluster.stop("vienna") == 0
    cluster.fed.stop_all()


@pytest.fixture(scope="module")
def plain_grpc_server() -> Iterator[int]:
    """A gRPC server with grpc's default options, which include SO_REUSEPORT: it would share."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(0)


def serving(fed: LocalFederation) -> bool:
    health = health_pb2_grpc.HealthStub(fed.channel("vienna"))
    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


# Each setting, and the key under which `civfed serve --port-file` reports the port bound.
PORT_SETTINGS = {"CIVFED_GRPC_PORT": "grpc", "CIVFED_PUBLIC_PORT": "public", "CIVFED_HEALTH_PORT": "health"}


@pytest.mark.parametrize("setting", list(PORT_SETTINGS))
@pytest.mark.parametrize("holder", ["a civfed node", "a gRPC server that would share"])
def test_a_port_a_grpc_server_listens_on_stops_a_second_serve(
    setting: str, holder: str, node: Cluster, plain_grpc_server: int, tmp_path: Path
) -> None:
    fed = node.fed
    if holder == "a civfed node":
        # The ports the first node bound, as it wrote them to its port file.
        ports = json.loads((fed.folder / "vienna.ports").read_text())
        # Its metrics are off (no CIVFED_METRICS_PORT): reported as null.
        assert set(ports) == {*PORT_SETTINGS.values(), "metrics"} and ports["metrics"] is None
        assert len({ports[key] for key in PORT_SETTINGS.values()}) == 3
        assert (ports["grpc"], ports["health"]) == (fed.ports["vienna"], fed.health_ports["vienna"])
        busy = ports[PORT_SETTINGS[setting]]
    else:
        busy = plain_grpc_server
    # A second Vienna on the same host, its own store; its other port is any free one.
    (tmp_path / "second").mkdir()
    env = {**fed.environment("vienna"), "CIVFED_DATA_DIR": str(tmp_path / "second"), setting: str(busy)}
    result = civfed("serve", "--city", "vienna", env=env)
    assert result.returncode == 2, result.stderr
    # grpc's core logs its own line on a failed bind before civfed's.
    assert one_line(result, alone=False) == (
        f"civfed: configuration error: {setting}: cannot listen on 127.0.0.1:{busy}"
        " (in use, or not an address of this host)"
    )
    assert list((tmp_path / "second").iterdir()) == []  # the ports are bound before the store is opened
    assert serving(fed)  # the first node was not disturbed
    assert node.procs["vienna"].poll() is None


def dashboard(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "dashboard", *args],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("named", ["--port", "CIVFED_DASHBOARD_PORT"])
def test_a_busy_port_stops_the_dashboard_before_it_announces_an_address(named: str, tmp_path: Path) -> None:
    env = {"CIVFED_DATA_DIR": str(tmp_path / "data")}
    (tmp_path / "data").mkdir()  # a data directory that does not exist is refused
    first = dashboard("--port", "0", env=env)
    try:
        assert first.stdout is not None
        announced = first.stdout.readline()  # printed once bound, with the port the kernel picked
        found = re.fullmatch(r"Dashboard: http://127\.0\.0\.1:(\d+)/\n", announced)
        assert found, (announced, first.stderr.read() if first.poll() is not None and first.stderr else "")
        port = int(found.group(1))
        args, extra = (("--port", str(port)), {}) if named == "--port" else ((), {named: str(port)})
        result = civfed("dashboard", *args, env={**env, **extra})
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""  # no address announced for a server that never listened
        assert result.stderr == (
            f"civfed: configuration error: {named}: cannot listen on 127.0.0.1:{port}"
            " (address already in use)\n"
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
            assert json.loads(reply.read()) == {"status": "ok"}  # the first one still answers
    finally:
        first.terminate()
        first.wait(10)
        for stream in (first.stdout, first.stderr):
            if stream is not None:
                stream.close()


def test_erase_names_a_wallet_id_that_is_not_a_uuid(fed: LocalFederation, tmp_path: Path) -> None:
    env = {**fed.environment("vienna"), "CIVFED_DATA_DIR": str(tmp_path / "data")}
    args = ("--legal-basis", "art17_1b_consent_withdrawn", "--reference", "DSR-1")
    result = civfed("erase", "request", "not-a-uuid", *args, env=env)
    assert result.returncode == 2, result.stderr
    assert one_line(result) == "civfed erase: WALLET_ID: 'not-a-uuid' is not a wallet id (a UUID)"
    assert not (tmp_path / "data").exists()  # nothing was opened or created
