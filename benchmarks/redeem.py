"""Cross-city redemption latency and throughput over loopback, beside a raw gRPC echo.

    python -m benchmarks.redeem [--redemptions N] [--threads T]

Both run in this process over the same mutual TLS, so the echo is the floor a
redemption (a shop call, plus reserve and commit between two nodes) stands on.
Sequential calls first; then T shop tills at once, against an echo called by T
threads, with the nodes saving queued commands together (group commit) and,
for comparison in the same run, one command per save.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

# The project root first: this folder's projections.py would shadow the package.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.figures import Figure, figure  # noqa: E402
from civfed.v1 import claims_pb2, merchant_pb2, sources_pb2, wallet_pb2  # noqa: E402
from services.claims import new_source_key, public_pem, sign_claim  # noqa: E402
from services.demo.local_federation import LocalFederation  # noqa: E402
from services.grpc.auth import bearer  # noqa: E402
from services.grpc.tls import server_credentials  # noqa: E402

SOURCE_KEY = new_source_key()


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


def timed_concurrently(calls: list[Callable[[], Any]], threads: int) -> dict[str, float]:
    latencies: list[float] = []

    def run(call: Callable[[], Any]) -> None:
        t = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    with futures.ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(run, calls))
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return {
        "calls": len(calls),
        "threads": threads,
        "p50_ms": round(q[49] * 1000, 3),
        "p99_ms": round(q[98] * 1000, 3),
        "per_second": round(len(calls) / elapsed, 1),
    }


def echo_baseline(fed: LocalFederation, n: int, threads: int = 1) -> dict[str, float]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    handler = grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("bench.Echo", {"Echo": handler})])
    files = fed.files["vienna"]
    port = server.add_secure_port("127.0.0.1:0", server_credentials(files.cert, files.key, fed.ca.ca_file))
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
    calls = [lambda: echo(payload, timeout=5) for _ in range(n)]
    result = timed(calls) if threads == 1 else timed_concurrently(calls, threads)
    channel.close()
    server.stop(0)
    return result


def citizen(v: Any, key: str, tokens: int) -> tuple[str, Any]:
    """A Vienna wallet with at least `tokens` tokens (1,000 km by bike = 10 tokens)."""
    w = v.wallet.OpenWallet(
        wallet_pb2.OpenWalletRequest(
            idempotency_key=key, participant_kind="resident", consent_version="wien-2026-01"
        ),
        metadata=v.staff,
        timeout=5,
    )
    # Trips come as a registered source's signed claims (registered once per node).
    v.sources.RegisterSource(
        sources_pb2.RegisterSourceRequest(
            idempotency_key="bench-source",
            source_id="bench-mobility",
            name="Benchmark mobility provider",
            key_id="b1",
            public_key_pem=public_pem(SOURCE_KEY),
            kinds=["trip"],
            reason="benchmark trips",
        ),
        metadata=v.staff,
        timeout=5,
    )
    today = dt.datetime.now(dt.UTC).date()
    trip = {"mode": "bike", "distance_m": 1_000_000}
    for i in range(tokens // 10 + 1):
        claim = sign_claim(
            SOURCE_KEY, "b1", "bench-mobility", f"{key}:t{i}", w.wallet_id, "trip", trip, today
        )
        v.claims.SubmitClaim(claims_pb2.SubmitClaimRequest(claim=claim), timeout=5)
    return w.wallet_id, bearer(w.holder_token)


def redemptions(fed: LocalFederation, n: int, threads: int = 1, tag: str = "seq") -> dict[str, float]:
    """`n` one-token redemptions at one shop, from one wallet per till (all keys fresh per `tag`)."""
    v, s = fed.stubs("vienna"), fed.stubs("sint_niklaas")
    wallets = [citizen(v, f"{tag}:w{t}", n // threads + 1) for t in range(threads)]
    tokens = []
    for i in range(n):
        wallet_id, holder = wallets[i % threads]
        tokens.append(
            v.wallet.IssueRedemptionVoucher(
                wallet_pb2.IssueRedemptionVoucherRequest(
                    idempotency_key=f"{tag}:v{i}", wallet_id=wallet_id, amount=1
                ),
                metadata=holder,
                timeout=5,
            ).token
        )
    shop = s.merchant.RegisterMerchant(
        merchant_pb2.RegisterMerchantRequest(
            idempotency_key=f"{tag}:s", name="Shop", category="food", local=True
        ),
        metadata=s.staff,
        timeout=5,
    )
    auth = bearer(shop.merchant_token)

    def redeem(i: int) -> Callable[[], Any]:
        req = merchant_pb2.AcceptVoucherRequest(idempotency_key=f"{tag}:sale{i}", redemption_token=tokens[i])
        return lambda: s.merchant.AcceptVoucher(req, metadata=auth, timeout=10)

    calls = [redeem(i) for i in range(n)]
    result = timed(calls) if threads == 1 else timed_concurrently(calls, threads)
    statement = s.merchant.GetStatement(merchant_pb2.GetStatementRequest(), metadata=auth, timeout=10)
    assert statement.total.units == 50 * n, "every redemption must have gone through"
    v.close()
    s.close()
    return result


def federation(folder: str, write_batch: int) -> LocalFederation:
    fed = LocalFederation(
        Path(folder), ["vienna", "sint_niklaas"], extra_env={"CIVFED_WRITE_BATCH": str(write_batch)}
    )
    for city in ("vienna", "sint_niklaas"):
        fed.start_in_process(city)
    return fed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redemptions", type=int, default=200)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    print(json.dumps(run(args.redemptions, args.threads), indent=2))


def run(n: int = 200, threads: int = 16) -> dict[str, Any]:
    """The whole report, as `main` prints it."""
    with tempfile.TemporaryDirectory() as folder:
        fed = federation(folder + "/sequential", 200)
        try:
            baseline = echo_baseline(fed, n * 5)
            redeem = redemptions(fed, n)
            concurrent_echo = echo_baseline(fed, n * 5, threads)
            grouped = redemptions(fed, n, threads, tag="grouped")
        finally:
            fed.stop_all()
        fed = federation(folder + "/single", 1)
        try:
            single = redemptions(fed, n, threads, tag="single")
        finally:
            fed.stop_all()
    return {
        "transport": "loopback, mutual TLS, unary calls, SQLite stores",
        "baseline_grpc_echo": baseline,
        "cross_city_redemption": redeem,
        "redemption_p50_over_echo_p50": round(redeem["p50_ms"] / baseline["p50_ms"], 1),
        "concurrent": {
            "baseline_grpc_echo": concurrent_echo,
            "cross_city_redemption_group_commit": grouped,
            "cross_city_redemption_one_command_per_save": single,
            "group_commit_speed_up": round(grouped["per_second"] / single["per_second"], 2),
        },
    }


def figures(report: dict[str, Any]) -> list[Figure]:
    """Each figure of `run`'s report beside the baseline measured in the same run."""
    echo, redeem = report["baseline_grpc_echo"], report["cross_city_redemption"]
    c = report["concurrent"]
    grouped, single = c["cross_city_redemption_group_commit"], c["cross_city_redemption_one_command_per_save"]
    threads = grouped["threads"]
    return [
        figure("redeem.sequential.p50_ms", redeem["p50_ms"], "ms", echo["p50_ms"], "gRPC echo p50, same TLS"),
        figure("redeem.sequential.p99_ms", redeem["p99_ms"], "ms", echo["p99_ms"], "gRPC echo p99, same TLS"),
        figure(
            "redeem.sequential.per_s",
            redeem["per_second"],
            "redemptions/s",
            echo["per_second"],
            "gRPC echo calls/s",
        ),
        figure(
            "redeem.concurrent.group_commit.per_s",
            grouped["per_second"],
            "redemptions/s",
            c["baseline_grpc_echo"]["per_second"],
            f"gRPC echo calls/s from {threads} threads",
        ),
        figure(
            "redeem.concurrent.group_commit_vs_one_per_save.per_s",
            grouped["per_second"],
            "redemptions/s",
            single["per_second"],
            "the same redemptions, one command per save",
        ),
        figure(
            "redeem.concurrent.group_commit.p99_ms",
            grouped["p99_ms"],
            "ms",
            c["baseline_grpc_echo"]["p99_ms"],
            f"gRPC echo p99 from {threads} threads",
        ),
    ]


if __name__ == "__main__":
    main()
