"""Cross-city redemption latency and throughput, beside a raw gRPC echo, with every node a process.

    python -m benchmarks.redeem [--redemptions N] [--threads T] [--backends sqlite,postgres]
                                [--profile FOLDER]

The home node (Vienna) and the accepting node (Sint-Niklaas) each run as a `civfed serve`
process, as deployed, and call each other over mutual TLS; the echo is a trivial servicer
in a process of its own on the same TLS, so it is the floor a redemption (a shop call,
plus Reserve and Commit between the two nodes) stands on. Per store kind (SQLite files;
PostgreSQL databases made for the run and dropped after): sequential calls first, then
T shop tills at once against the echo called by T threads. Over the concurrent
redemptions it notes the CPU seconds each node, the tills and, on PostgreSQL, the
server's processes for the two databases used, so a figure's cost per sale can be split
between them. `--profile` samples both nodes with py-spy meanwhile.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import psycopg

# The project root first: this folder's projections.py would shadow the package.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.figures import Figure, figure  # noqa: E402
from benchmarks.processes import PG_ADMIN_URL, NodeProcesses, postgres_databases  # noqa: E402
from civfed.v1 import claims_pb2, merchant_pb2, sources_pb2, wallet_pb2  # noqa: E402
from services.claims import new_source_key, public_pem, sign_claim  # noqa: E402
from services.demo.local_federation import LocalFederation  # noqa: E402
from services.grpc.auth import bearer  # noqa: E402

SOURCE_KEY = new_source_key()
# The home city, then the city whose shops accept its tokens.
CITIES = ["vienna", "sint_niklaas"]


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


def echo_baseline(fed: LocalFederation, port: int, n: int, threads: int = 1) -> dict[str, float]:
    """`n` echo calls to the echo process, from `threads` threads on one channel, as the tills."""
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


def redemptions(
    fed: LocalFederation,
    n: int,
    threads: int = 1,
    tag: str = "seq",
    during: contextlib.AbstractContextManager[None] | None = None,
) -> dict[str, float]:
    """`n` one-token redemptions at one shop, from one wallet per till (all keys fresh per
    `tag`); `during` is entered around the timed calls alone (a profiler)."""
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
    with during or contextlib.nullcontext():
        result = timed(calls) if threads == 1 else timed_concurrently(calls, threads)
    statement = s.merchant.GetStatement(merchant_pb2.GetStatementRequest(), metadata=auth, timeout=10)
    assert statement.total.units == 50 * n, "every redemption must have gone through"
    v.close()
    s.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redemptions", type=int, default=200)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--profile", type=Path, help="record each node with py-spy into this folder")
    args = parser.parse_args()
    print(json.dumps(run(args.redemptions, args.threads, args.backends, args.profile), indent=2))


@contextlib.contextmanager
def profiled(folder: Path | None, pids: dict[str, int]) -> Iterator[None]:
    """With a folder, py-spy samples each node process meanwhile (collapsed stacks)."""
    if folder is None:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    spies = [
        subprocess.Popen(
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "-p",
                str(pid),
                "-r",
                "200",
                "-f",
                "raw",
                "-o",
                str(folder / f"{city}.txt"),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for city, pid in pids.items()
    ]
    time.sleep(1)  # attached before the first call
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)


def batches(port: int) -> tuple[float, float]:
    """Commands saved and batches saved so far by a node's writer, from its metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    found = dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("civfed_write_batch_"))
    return float(found.get("civfed_write_batch_commands_sum", 0)), float(
        found.get("civfed_write_batch_commands_count", 0)
    )


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine so far, over all cores (Linux /proc)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and waiting for I/O
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


def store_cpu(databases: list[str]) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL server process serving one of `databases`
    (the local server's backends, from its activity view and Linux /proc)."""
    if not databases:
        return {}
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s)", (databases,)
        ).fetchall()
    found = {}
    for (pid,) in rows:
        with contextlib.suppress(OSError):  # a backend that ended meanwhile
            found[int(pid)] = cpu_seconds(int(pid))
    return found


def own_cpu() -> float:
    """User and system CPU time of this process (the tills) so far."""
    t = os.times()
    return t.user + t.system


@contextlib.contextmanager
def measured(
    folder: Path | None,
    pids: dict[str, int],
    metrics: dict[str, int],
    seen: dict[str, Any],
    databases: list[str] | None = None,
) -> Iterator[None]:
    """Each node's CPU seconds and mean write batch, the tills' CPU seconds, the CPU
    seconds of the PostgreSQL server processes serving the nodes' `databases`, and how
    busy the machine's cores were, over the timed calls, into `seen`; sampled by py-spy
    with a folder."""
    store = store_cpu(databases or [])
    cpu = {city: cpu_seconds(pid) for city, pid in pids.items()}
    saved = {city: batches(port) for city, port in metrics.items()}
    tills, (busy, total) = own_cpu(), machine_cpu()
    with profiled(folder, pids):
        yield
    seen["node_cpu_seconds"] = {city: round(cpu_seconds(pid) - cpu[city], 2) for city, pid in pids.items()}
    # What else used the cores meanwhile: the tills' own process, and the whole machine
    # (the store, the profiler, and whatever else runs beside the benchmark).
    seen["tills_cpu_seconds"] = round(own_cpu() - tills, 2)
    if databases:
        # A backend opened during the calls counts from its start.
        after_store = store_cpu(databases)
        seen["store_cpu_seconds"] = round(sum(t - store.get(pid, 0.0) for pid, t in after_store.items()), 2)
    busy_after, total_after = machine_cpu()
    seen["machine_cpu_busy"] = round((busy_after - busy) / max(total_after - total, 1e-9), 2)
    after = {city: batches(port) for city, port in metrics.items()}
    seen["mean_write_batch"] = {
        city: round((after[city][0] - saved[city][0]) / max(after[city][1] - saved[city][1], 1), 2)
        for city in metrics
    }


def on_backend(folder: Path, backend: str, n: int, threads: int, profile: Path | None) -> dict[str, Any]:
    """Both nodes and the echo as processes on one store kind; sequential, then `threads` at once."""
    with contextlib.ExitStack() as stack:
        city_env = (
            stack.enter_context(postgres_databases(CITIES, folder / "pg")) if backend == "postgres" else {}
        )
        # Each node's metrics, for the sizes of the batches its writer saved.
        fed = LocalFederation(folder, CITIES, city_env=city_env, extra_env={"CIVFED_METRICS_PORT": "0"})
        stack.callback(fed.stop_all)
        procs = NodeProcesses(fed)
        stack.callback(procs.stop_all)
        # The home first, so the accepting node calls it on its own port (see processes.py).
        fed.open_front_door("sint_niklaas")
        pids = {city: procs.start_node(city) for city in CITIES}
        echo = procs.start_echo()
        baseline = echo_baseline(fed, echo, n * 5)
        redeem = redemptions(fed, n)
        concurrent_echo = echo_baseline(fed, echo, n * 5, threads)
        seen: dict[str, Any] = {}
        databases = [env["POSTGRES_DBNAME"] for env in city_env.values()]
        spy = measured(profile and profile / backend, pids, procs.metrics_ports, seen, databases)
        concurrent: dict[str, Any] = {
            **redemptions(fed, n, threads, tag="concurrent", during=spy),
            "nodes": seen,
        }
    return {
        "baseline_grpc_echo": baseline,
        "cross_city_redemption": redeem,
        "concurrent": {"baseline_grpc_echo": concurrent_echo, "cross_city_redemption": concurrent},
    }


def run(
    n: int = 200, threads: int = 16, backends: str = "sqlite,postgres", profile: Path | None = None
) -> dict[str, Any]:
    """The whole report, as `main` prints it."""
    report: dict[str, Any] = {
        "transport": "loopback, mutual TLS, unary calls; each node and the echo a process of its own",
        "cities": {"home": CITIES[0], "acceptor": CITIES[1]},
    }
    with tempfile.TemporaryDirectory() as folder:
        for backend in backends.split(","):
            report[backend] = on_backend(Path(folder) / backend, backend, n, threads, profile)
    return report


def figures(report: dict[str, Any]) -> list[Figure]:
    """Each figure of `run`'s report beside the echo measured in the same run."""
    found = []
    for backend in ("sqlite", "postgres"):
        if backend not in report:
            continue
        echo, redeem = report[backend]["baseline_grpc_echo"], report[backend]["cross_city_redemption"]
        c = report[backend]["concurrent"]
        concurrent, cecho = c["cross_city_redemption"], c["baseline_grpc_echo"]
        threads = concurrent["threads"]
        name = f"redeem.{backend}"
        found += [
            figure(
                f"{name}.sequential.p50_ms", redeem["p50_ms"], "ms", echo["p50_ms"], "gRPC echo p50, same TLS"
            ),
            figure(
                f"{name}.sequential.p99_ms", redeem["p99_ms"], "ms", echo["p99_ms"], "gRPC echo p99, same TLS"
            ),
            figure(
                f"{name}.sequential.per_s",
                redeem["per_second"],
                "redemptions/s",
                echo["per_second"],
                "gRPC echo calls/s",
            ),
            figure(
                f"{name}.concurrent.per_s",
                concurrent["per_second"],
                "redemptions/s",
                cecho["per_second"],
                f"gRPC echo calls/s from {threads} threads",
            ),
            figure(
                f"{name}.concurrent.p50_ms",
                concurrent["p50_ms"],
                "ms",
                cecho["p50_ms"],
                f"gRPC echo p50 from {threads} threads",
            ),
            figure(
                f"{name}.concurrent.p99_ms",
                concurrent["p99_ms"],
                "ms",
                cecho["p99_ms"],
                f"gRPC echo p99 from {threads} threads",
            ),
        ]
    return found


if __name__ == "__main__":
    main()
