"""A real node's metrics, scraped over HTTP after real gRPC calls."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from civfed.v1 import wallet_pb2
from services.demo.local_federation import LocalFederation
from services.settings.errors import ConfigError
from tests.e2e.flows import accept, shop, vienna_citizen
from tests.metrics.scrape import scrape, value

ROOT = Path(__file__).resolve().parents[2]
WALLET = "/civfed.v1.WalletService"
MERCHANT = "/civfed.v1.MerchantService"


def test_calls_refusals_latency_batches_and_sagas_are_counted(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, ["vienna", "sint_niklaas"], extra_env={"CIVFED_METRICS_PORT": "0"})
    try:
        vienna = fed.start_in_process("vienna")
        niklaas = fed.start_in_process("sint_niklaas")
        assert vienna.metrics_port and niklaas.metrics_port and vienna.metrics_port != niklaas.metrics_port
        v, s = fed.stubs("vienna"), fed.stubs("sint_niklaas")
        anna = vienna_citizen(v, "anna", 500)  # a wallet, and 5 tokens from signed trips
        # A refusal: a wallet that does not exist.
        with pytest.raises(grpc.RpcError) as missing:
            v.wallet.GetBalance(
                wallet_pb2.GetBalanceRequest(wallet_id="00000000-0000-0000-0000-000000000000"),
                metadata=v.staff,
                timeout=5,
            )
        refused = missing.value.code()
        # A caller without credentials.
        with pytest.raises(grpc.RpcError) as anonymous:
            v.wallet.OpenWallet(wallet_pb2.OpenWalletRequest(idempotency_key="x"), timeout=5)
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert anna.balance().balance.units == 5
        # A redemption across the two cities: Vienna is home, Sint-Niklaas accepts.
        _, shop_auth = shop(s, "Bakkerij Waasland")
        accept(s, shop_auth, anna.voucher(3, "v1"), "sale-1")

        at_vienna = scrape(vienna.metrics_port)
        calls = "civfed_grpc_calls_total"
        assert value(at_vienna, calls, method=f"{WALLET}/OpenWallet", code="OK") == 1
        assert value(at_vienna, calls, method=f"{WALLET}/OpenWallet", code="UNAUTHENTICATED") == 1
        assert value(at_vienna, calls, method=f"{WALLET}/GetBalance", code=refused.name) == 1
        assert value(at_vienna, calls, method=f"{WALLET}/GetBalance", code="OK") == 1
        assert value(at_vienna, calls, method="/civfed.v1.FederationService/Reserve", code="OK") == 1
        assert value(at_vienna, calls, method="/civfed.v1.FederationService/Commit", code="OK") == 1
        # Every call answered is also timed, refusals included.
        latency = "civfed_grpc_call_seconds"
        assert value(at_vienna, f"{latency}_count", method=f"{WALLET}/OpenWallet") == 2
        assert value(at_vienna, f"{latency}_count", method=f"{WALLET}/GetBalance") == 2
        assert value(at_vienna, f"{latency}_bucket", method=f"{WALLET}/GetBalance", le="+Inf") == 2
        assert value(at_vienna, f"{latency}_sum", method=f"{WALLET}/GetBalance") > 0
        # Commands went through the group writer: one batch at least, none above the limit.
        batches = value(at_vienna, "civfed_write_batch_commands_count")
        assert batches >= 3  # the wallet, its trips, the voucher, the reserve and the commit
        assert value(at_vienna, "civfed_write_batch_commands_bucket", le="200.0") == batches
        assert value(at_vienna, "civfed_write_batch_limit") == 200
        # The saga, once on each side; nothing else ended.
        sagas = "civfed_saga_outcomes_total"
        assert value(at_vienna, sagas, side="home", outcome="committed") == 1
        assert value(at_vienna, sagas, side="acceptor", outcome="committed") == 0
        at_niklaas = scrape(niklaas.metrics_port)
        assert value(at_niklaas, sagas, side="acceptor", outcome="committed") == 1
        assert value(at_niklaas, sagas, side="home", outcome="committed") == 0
        assert value(at_niklaas, calls, method=f"{MERCHANT}/AcceptVoucher", code="OK") == 1
        # Each node counts only its own calls.
        assert value(at_niklaas, calls, method=f"{WALLET}/OpenWallet", code="OK") == 0
        # No wallet id appears anywhere in what is served.
        served = {v for (_, labels) in at_vienna for _, v in labels} | {
            v for (_, labels) in at_niklaas for _, v in labels
        }
        assert anna.wallet_id not in served
    finally:
        fed.stop_all()


def test_metrics_are_off_unless_a_port_is_set(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, ["vienna"])
    try:
        assert fed.start_in_process("vienna").metrics_port is None
    finally:
        fed.stop_all()


def test_a_metrics_port_in_use_stops_start_up_naming_the_setting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        fed = LocalFederation(tmp_path, ["vienna"], extra_env={"CIVFED_METRICS_PORT": str(port)})
        try:
            with pytest.raises(ConfigError, match="CIVFED_METRICS_PORT"):
                fed.start_in_process("vienna")
        finally:
            fed.stop_all()


@pytest.mark.parametrize("command", [["project"], ["relay", "--kafka", "127.0.0.1:9"]])
def test_a_busy_metrics_port_stops_the_relay_and_the_projector_naming_the_setting(
    command: list[str], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "data").mkdir()  # a data directory that does not exist is refused first
        env = {
            "CIVFED_DATA_DIR": str(tmp_path / "data"),
            "CIVFED_METRICS_PORT": str(port),
            "CIVFED_LANG": "en",
        }
        result = subprocess.run(
            [sys.executable, "-m", "services.cli", *command, "--city", "vienna"],
            cwd=ROOT,
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    # One line naming the setting, before any store is opened.
    assert result.stderr.strip().splitlines() == [
        "civfed: configuration error: CIVFED_METRICS_PORT: "
        f"cannot listen on 127.0.0.1:{port} (address already in use)"
    ]
    assert list((tmp_path / "data").iterdir()) == []  # no store was opened
