"""Cross-city redemption latency and throughput over loopback, beside a raw gRPC echo.

    PYTHONPATH=. python benchmarks/redeem.py [--redemptions N]

Both run in this process over the same mutual TLS, so the echo is the floor a
redemption (a shop call, plus reserve and commit between two nodes) stands on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from civfed.v1 import merchant_pb2, wallet_pb2
from services.grpc.auth import bearer
from services.grpc.local_federation import LocalFederation, free_port
from services.grpc.tls import server_credentials


def timed(calls: list[Callable[[], Any]]) -> dict[str, float]:
    latencies = []
    start = time.perf_counter()
    for call in calls:
        t = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return {
        "calls": len(calls),
        "p50_ms": round(q[49] * 1000, 3),
        "p99_ms": round(q[98] * 1000, 3),
        "per_second": round(len(calls) / elapsed, 1),
    }


def echo_baseline(fed: LocalFederation, n: int) -> dict[str, float]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    handler = grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("bench.Echo", {"Echo": handler})])
    port = free_port()
    files = fed.files["vienna"]
    server.add_secure_port(f"127.0.0.1:{port}", server_credentials(files.cert, files.key, fed.ca.ca_file))
    server.start()
    channel = grpc.secure_channel(
        f"127.0.0.1:{port}",
        grpc.ssl_channel_credentials(
            fed.ca.ca_file.read_bytes(), fed.client_key.read_bytes(), fed.client_cert.read_bytes()
        ),
        options=[("grpc.ssl_target_name_override", "vienna")],
    )
    echo = channel.unary_unary("/bench.Echo/Echo")
    payload = b"x" * 200
    echo(payload, timeout=5)  # warm up the connection
    result = timed([lambda: echo(payload, timeout=5) for _ in range(n)])
    channel.close()
    server.stop(0)
    return result


def redemptions(fed: LocalFederation, n: int) -> dict[str, float]:
    v, s = fed.stubs("vienna"), fed.stubs("sint_niklaas")
    w = v.wallet.OpenWallet(
        wallet_pb2.OpenWalletRequest(
            idempotency_key="w", participant_kind="resident", consent_version="wien-2026-01"
        ),
        metadata=v.staff,
        timeout=5,
    )
    for i in range(n // 10 + 1):  # 1,000 km by bike = 10 tokens
        v.wallet.RecordActivity(
            wallet_pb2.RecordActivityRequest(
                idempotency_key=f"t{i}",
                wallet_id=w.wallet_id,
                activity="trip",
                activity_id=f"t{i}",
                fields={"mode": "bike", "distance_m": "1000000", "date": "2026-05-03"},
            ),
            metadata=v.staff,
            timeout=5,
        )
    holder = bearer(w.holder_token)
    tokens = [
        v.wallet.IssueRedemptionVoucher(
            wallet_pb2.IssueRedemptionVoucherRequest(
                idempotency_key=f"v{i}", wallet_id=w.wallet_id, amount=1
            ),
            metadata=holder,
            timeout=5,
        ).token
        for i in range(n)
    ]
    shop = s.merchant.RegisterMerchant(
        merchant_pb2.RegisterMerchantRequest(idempotency_key="s", name="Shop", category="food", local=True),
        metadata=s.staff,
        timeout=5,
    )
    auth = bearer(shop.merchant_token)

    def redeem(i: int) -> Callable[[], Any]:
        req = merchant_pb2.AcceptVoucherRequest(idempotency_key=f"sale{i}", redemption_token=tokens[i])
        return lambda: s.merchant.AcceptVoucher(req, metadata=auth, timeout=10)

    return timed([redeem(i) for i in range(n)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redemptions", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        fed = LocalFederation(Path(folder), ["vienna", "sint_niklaas"])
        try:
            for city in ("vienna", "sint_niklaas"):
                fed.start_in_process(city)
            baseline = echo_baseline(fed, args.redemptions * 5)
            redeem = redemptions(fed, args.redemptions)
        finally:
            fed.stop_all()
    print(
        json.dumps(
            {
                "transport": "loopback, mutual TLS, sequential unary calls, SQLite stores",
                "baseline_grpc_echo": baseline,
                "cross_city_redemption": redeem,
                "redemption_p50_over_echo_p50": round(redeem["p50_ms"] / baseline["p50_ms"], 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
