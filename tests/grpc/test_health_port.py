"""The plaintext health port that Kubernetes `grpc:` probes use, beside the mTLS port."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from civfed.v1 import wallet_pb2, wallet_pb2_grpc
from services.demo.local_federation import LocalFederation

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def plaintext_health(fed: LocalFederation, city: str) -> health_pb2_grpc.HealthStub:
    channel = grpc.insecure_channel(f"127.0.0.1:{fed.health_ports[city]}")
    return health_pb2_grpc.HealthStub(channel)


def test_health_answers_in_plaintext_and_nothing_else_does(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, ["vienna"])
    running = fed.start_in_process("vienna")
    try:
        # Both bound on port 0: the ports the kernel gave, read back from the servers.
        assert running.health_port == fed.health_ports["vienna"] != 0
        assert running.port == fed.ports["vienna"] not in (0, running.health_port)
        health = plaintext_health(fed, "vienna")
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == SERVING
        wallets = health_pb2.HealthCheckRequest(service="civfed.v1.WalletService")
        assert health.Check(wallets, timeout=5).status == SERVING
        # The plaintext port serves health only: no wallet call gets through without mTLS.
        plain = grpc.insecure_channel(f"127.0.0.1:{fed.health_ports['vienna']}")
        with pytest.raises(grpc.RpcError) as refused:
            wallet_pb2_grpc.WalletServiceStub(plain).GetBalance(wallet_pb2.GetBalanceRequest(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
        # And the gRPC port still refuses a client without a certificate.
        no_cert = grpc.insecure_channel(fed.address("vienna"))
        with pytest.raises(grpc.RpcError) as untrusted:
            health_pb2_grpc.HealthStub(no_cert).Check(health_pb2.HealthCheckRequest(), timeout=2)
        assert untrusted.value.code() == grpc.StatusCode.UNAVAILABLE
        plain.close()
        no_cert.close()
    finally:
        fed.stop_all()


def test_graceful_shutdown_reports_not_serving_on_the_health_port(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, ["vienna"])
    running = fed.start_in_process("vienna")
    health = plaintext_health(fed, "vienna")
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == SERVING
    # An open stream on the mTLS port keeps the drain busy for the whole grace period.
    channel = fed.channel("vienna")
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
    assert next(watch).status == SERVING
    stopper = threading.Thread(target=running.stop, kwargs={"grace": 3})
    stopper.start()
    seen = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        status = health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
        seen.append(status)
        if status == NOT_SERVING:
            break
        time.sleep(0.02)
    assert seen[-1] == NOT_SERVING, seen
    assert next(watch).status == NOT_SERVING  # the mTLS side saw the same state
    stopper.join(10)
    assert not stopper.is_alive()
    # Once stopped, the probe port is closed: the kubelet sees the container as down.
    with pytest.raises(grpc.RpcError) as gone:
        health.Check(health_pb2.HealthCheckRequest(), timeout=2)
    assert gone.value.code() == grpc.StatusCode.UNAVAILABLE
    channel.close()
