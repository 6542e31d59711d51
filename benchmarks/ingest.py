"""Ingest throughput: civfed's Vienna application against raw eventsourcing.

Prints JSON. Both are measured in the same run on the same store, one aggregate
per save() and grouped, so the ratio means something on a shared machine.
civfed runs twice: with personal fields sealed under per-wallet keys (the
default) and with that encryption off, to show what crypto-shredding costs.

End to end (`claims_over_grpc`): a Vienna node on PostgreSQL (a fresh schema), a
registered source signing trips as compact JWS (Ed25519), submitted in batches over
gRPC (TLS, `ClaimService.SubmitClaims`); each claim verified, checked against the
source's kinds, dates and daily bounds, credited and its receipt written, batches
saved through the node's group writer. Beside it, in the same run and on the same
server, raw `eventsourcing` grouped saves.

    python -m benchmarks.ingest [--n 2000] [--group 1000] [--backends sqlite,postgres] [--rounds 3]
                                   [--claims 5000] [--batch 500]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

# The project root first: this folder's projections.py would shadow the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.figures import Figure, failed, figure
from services.city import CityApplication
from services.settings.cities import load_city, load_settings


class Counter(Aggregate):
    @event("Created")
    def __init__(self) -> None:
        self.n = 0

    @event("Incremented")
    def increment(self) -> None:
        self.n += 1


class Raw(Application[uuid.UUID]):
    name = "bench_raw"


@contextmanager
def store(backend: str) -> Iterator[dict[str, str]]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            yield {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": os.path.join(d, "b.sqlite")}
        return
    import psycopg

    schema = f"bench_{os.getpid()}"
    dsn = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        with tempfile.TemporaryDirectory() as d:
            # PostgreSQL requires the key-store key that wraps the per-wallet keys.
            kek = os.path.join(d, "keystore.key")
            with open(kek, "w") as f:
                f.write(base64.b64encode(os.urandom(32)).decode())
            yield {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": "test",
                "POSTGRES_HOST": "127.0.0.1",
                "POSTGRES_PORT": "5432",
                "POSTGRES_USER": "postgres",
                "POSTGRES_PASSWORD": "",
                "POSTGRES_SCHEMA": schema,
                "CIVFED_KEYSTORE_KEY_FILE": kek,
            }
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def rate(events: int, fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return round(events / (time.perf_counter() - start), 1)


def raw(env: dict[str, str], n: int, group: int) -> dict[str, float]:
    app = Raw(env)
    one = rate(n, lambda: [app.save(Counter()) for _ in range(n)])

    def grouped() -> None:
        for _ in range(0, n, group):
            app.save(*[Counter() for _ in range(group)])

    out = {"one_per_save": one, "grouped": rate(n, grouped)}
    app.close()
    return out


def civfed(env: dict[str, str], n: int, group: int, encrypt: bool, wallets: int = 200) -> dict[str, float]:
    city = load_city("vienna")
    switch = {"CIVFED_PERSONAL_ENCRYPTION": "on" if encrypt else "off"}
    app = CityApplication(city, {**load_settings({}).eventsourcing_env("vienna"), **env, **switch})
    assert (app.keys is not None) == encrypt
    consent = city.config.consent_versions[-1]
    ids = [
        uuid.UUID(r["wallet_id"])
        for r in app.execute_group(  # type: ignore[index]
            [app.open_wallet(f"w{i}", "resident", consent) for i in range(wallets)]
        )
    ]
    rnd = random.Random(0)

    def trips(prefix: str) -> list[Any]:
        return [
            app.record_activity(
                f"{prefix}{i}",
                ids[i % wallets],
                "trip",
                {
                    "mode": rnd.choice(["bike", "tram", "walk"]),
                    "distance_m": rnd.randint(500, 20000),
                    "date": "2026-05-04",
                },
            )
            for i in range(n)
        ]

    singles, groups = trips("s"), trips("g")
    before = app.recorder.max_notification_id() or 0
    one = rate(n, lambda: [app.execute(c) for c in singles])
    per_command = ((app.recorder.max_notification_id() or 0) - before) / n

    def grouped() -> None:
        for i in range(0, n, group):
            app.execute_group(groups[i : i + group])

    out = {"one_per_command": one, "grouped": rate(n, grouped), "events_per_command": per_command}
    app.close()
    return out


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    """The best of interleaved rounds: the figure least disturbed by other load."""
    return {k: max(r[k] for r in runs) for k in runs[0]}


def measure(backend: str, n: int, group: int, rounds: int) -> dict[str, Any]:
    with store(backend) as env:
        base = raw(env, n, group)
    # Off and on alternate, each on a fresh store, so a burst of load hits both alike.
    offs, ons = [], []
    for _ in range(rounds):
        with store(backend) as env:
            offs.append(civfed(env, n, group, encrypt=False))
        with store(backend) as env:
            ons.append(civfed(env, n, group, encrypt=True))
    plain, ours = best(offs), best(ons)
    per = ours["events_per_command"]
    events = {k: round(ours[k] * per, 1) for k in ("one_per_command", "grouped")}
    kinds = ("one_per_command", "grouped")
    return {
        "civfed_commands_per_s_encryption_off": {k: plain[k] for k in kinds},
        "civfed_commands_per_s_encryption_on": {k: ours[k] for k in kinds},
        "encryption_on_vs_off": {k: round(ours[k] / plain[k], 2) for k in kinds},
        "raw_eventsourcing_events_per_s": base,
        "civfed_events_per_command": per,
        "civfed_events_per_s": events,
        # Each civfed command also writes its idempotency receipt, so events/s is
        # the like-for-like figure; commands/s is what a city feels.
        "ratio_events_one_per_save": round(events["one_per_command"] / base["one_per_save"], 2),
        "ratio_grouped_commands_vs_raw_one_per_save": round(ours["grouped"] / base["one_per_save"], 2),
    }


def claims_over_grpc(n: int, batch: int, wallets: int = 200) -> dict[str, Any]:
    """Signed claims in batches over gRPC to a node on PostgreSQL, beside raw grouped saves
    of as many events, in groups of the same size, measured before and after it on the same
    server (the better of the two is the baseline, so load on a shared machine cannot
    flatter the ratio)."""
    import datetime as dt

    from civfed.v1 import claims_pb2, sources_pb2, wallet_pb2
    from services.claims import new_source_key, public_pem, sign_claim
    from services.demo.local_federation import LocalFederation

    with store("postgres") as env:
        base_before = raw(env, n, batch)
    # One call's claims are saved in one transaction, as the raw saves are one group each.
    node_env = {"CIVFED_WRITE_BATCH": str(batch)}
    with store("postgres") as env, tempfile.TemporaryDirectory() as d:
        fed = LocalFederation(Path(d), ["vienna"], city_env={"vienna": {**env, **node_env}})
        running = fed.start_in_process("vienna")
        try:
            v = fed.stubs("vienna")
            key = new_source_key()
            bike = sources_pb2.Bound(
                activity="trip", field="distance_m", max_per_day=150_000, where={"mode": "bike"}
            )
            v.sources.RegisterSource(
                sources_pb2.RegisterSourceRequest(
                    idempotency_key="bench",
                    source_id="bench-mobility",
                    name="Benchmark mobility provider",
                    key_id="b1",
                    public_key_pem=public_pem(key),
                    kinds=["trip"],
                    bounds=[bike],
                    reason="benchmark",
                ),
                metadata=v.staff,
                timeout=10,
            )
            ids = [
                v.wallet.OpenWallet(
                    wallet_pb2.OpenWalletRequest(
                        idempotency_key=f"w{i}", participant_kind="resident", consent_version="wien-2026-01"
                    ),
                    metadata=v.staff,
                    timeout=10,
                ).wallet_id
                for i in range(wallets)
            ]
            rnd = random.Random(0)
            today = dt.datetime.now(dt.UTC).date()
            # The source signs before the clock starts: what is timed is the node's side.
            claims = [
                sign_claim(
                    key,
                    "b1",
                    "bench-mobility",
                    f"c{i}",
                    ids[i % wallets],
                    "trip",
                    {"mode": rnd.choice(["bike", "tram", "walk"]), "distance_m": rnd.randint(500, 20_000)},
                    today,
                )
                for i in range(n)
            ]
            app = running.node.app
            before = app.recorder.max_notification_id() or 0
            reasons: dict[str, int] = {}

            def submit() -> None:
                for i in range(0, n, batch):
                    request = claims_pb2.SubmitClaimsRequest(claims=claims[i : i + batch])
                    for result in v.claims.SubmitClaims(request, timeout=600).results:
                        reason = result.reason or "accepted"
                        reasons[reason] = reasons.get(reason, 0) + 1

            cpu = time.process_time()
            per_s = rate(n, submit)
            # The node and the client share this process: its CPU time per claim moves far less
            # with the load other work puts on the machine than claims/s does.
            cpu_per_claim = (time.process_time() - cpu) / n
            events = ((app.recorder.max_notification_id() or 0) - before) / n
        finally:
            fed.stop_all()
    with store("postgres") as env:
        base_after = raw(env, n, batch)
    base = best([base_before, base_after])
    return {
        # Each wallet's first award also creates its personal key (crypto-shredding), and a
        # bike trip past a wallet's 150 km that day is refused: both are part of the path.
        "outcomes": reasons,
        "claims": n,
        "batch": batch,
        "wallets": wallets,
        "write_batch": running.settings.CIVFED_WRITE_BATCH,
        "claims_per_s": per_s,
        "process_cpu_ms_per_claim": round(cpu_per_claim * 1e3, 3),
        "events_per_claim": round(events, 2),
        "events_per_s": round(per_s * events, 1),
        "raw_eventsourcing_events_per_s": base,
        "raw_eventsourcing_runs": [base_before, base_after],
        "ratio_claims_vs_raw_grouped_events": round(per_s / base["grouped"], 3),
        "ratio_events_vs_raw_grouped_events": round(per_s * events / base["grouped"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--group", type=int, default=1000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved encryption off/on rounds")
    parser.add_argument("--claims", type=int, default=5000, help="signed claims for the end-to-end case")
    parser.add_argument("--batch", type=int, default=500, help="claims per SubmitClaims call")
    args = parser.parse_args()
    print(json.dumps(run(args.n, args.group, args.backends, args.rounds, args.claims, args.batch), indent=2))


def run(
    n: int = 2000,
    group: int = 1000,
    backends: str = "sqlite,postgres",
    rounds: int = 3,
    claims: int = 5000,
    batch: int = 500,
) -> dict[str, Any]:
    """The whole report, as `main` prints it."""
    report: dict[str, Any] = {"n": n, "group": group, "rounds": rounds}
    for backend in [b for b in backends.split(",") if b]:
        try:
            report[backend] = measure(backend, n, group, rounds)
        except Exception as exc:  # a missing server is reported, not fatal
            report[backend] = {"error": f"{type(exc).__name__}: {exc}"}
    if claims:
        try:
            report["claims_over_grpc"] = claims_over_grpc(claims, batch)
        except Exception as exc:
            report["claims_over_grpc"] = {"error": f"{type(exc).__name__}: {exc}"}
    return report


def figures(report: dict[str, Any]) -> list[Figure]:
    """Each figure of `run`'s report beside the baseline measured in the same run."""
    out: list[Figure] = []
    for backend in ("sqlite", "postgres"):
        if backend not in report:
            continue
        r, name = report[backend], f"ingest.{backend}"
        if "error" in r:
            out.append(failed(name, r["error"]))
            continue
        base = r["raw_eventsourcing_events_per_s"]
        for kind, raw_kind in (("one_per_command", "one_per_save"), ("grouped", "grouped")):
            out.append(
                figure(
                    f"{name}.events_per_s.{kind}",
                    r["civfed_events_per_s"][kind],
                    "events/s",
                    base[raw_kind],
                    f"raw eventsourcing, {raw_kind.replace('_', ' ')}",
                )
            )
            out.append(
                figure(
                    f"{name}.commands_per_s.{kind}.encryption_on",
                    r["civfed_commands_per_s_encryption_on"][kind],
                    "commands/s",
                    r["civfed_commands_per_s_encryption_off"][kind],
                    "the same commands with encryption off",
                )
            )
    if "claims_over_grpc" in report:
        c = report["claims_over_grpc"]
        if "error" in c:
            out.append(failed("ingest.claims_over_grpc", c["error"]))
        else:
            base = c["raw_eventsourcing_events_per_s"]["grouped"]
            raw_name = "raw eventsourcing, grouped saves (events/s)"
            out.append(
                figure("ingest.claims_over_grpc.claims_per_s", c["claims_per_s"], "claims/s", base, raw_name)
            )
            out.append(
                figure("ingest.claims_over_grpc.events_per_s", c["events_per_s"], "events/s", base, raw_name)
            )
    return out


if __name__ == "__main__":
    main()
