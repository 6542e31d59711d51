"""Every benchmark in one run, as one JSON document.

    python -m benchmarks.run [--scale smoke|default|large] [--only NAME ...]

Each figure is printed beside the baseline measured in the same run (raw eventsourcing,
raw Kafka produce and consume, a gRPC echo over the same TLS), with their ratio, so a
figure means something on a shared machine. `--scale` chooses the sizes: `smoke` the
smallest (seconds; for tests), `default` each benchmark's own defaults, `large` the sizes
a city plans with (projections over about 200,000 events on SQLite and PostgreSQL, a rebuild
from 10 million stored events, a 1,000,000-wallet memory run; hours). `--only` runs the named
benchmarks alone. What the benchmarks print while they run goes to stderr; stdout holds the
document alone.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The project root first: this folder's projections.py would shadow the package.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.figures import Figure, failed  # noqa: E402

BENCHMARKS = ("ingest", "projections", "rebuild", "redeem", "approvals", "memory")

# The parameters of each benchmark's `run`, per scale; `default` is each one's own.
SCALES: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "ingest": {"n": 40, "group": 20, "backends": "sqlite", "rounds": 1, "claims": 0},
        "projections": {"people": 4, "days": 1},
        "rebuild": {"people": 4, "days": 1, "store_kind": "sqlite"},
        "redeem": {"n": 10, "threads": 2},
        "approvals": {"n": 50, "group": 25, "backends": "sqlite"},
        "memory": {"wallets": 200, "group": 100, "small": 100, "sample": 20, "calls": 50},
    },
    "default": {name: {} for name in BENCHMARKS},
    "large": {
        "ingest": {"n": 100_000, "group": 1000, "rounds": 3, "claims": 100_000, "batch": 500},
        # The benchmarks' season gives about 11 public events per person from ten days on (awards
        # are capped): 18,500 people make about 203,500 events.
        "projections": {"people": 18_500, "days": 10, "rounds": 3},
        # At least 10 million stored events (every row of the notification log; some 3.6 million
        # of them public) in one city's PostgreSQL store: seasons of 2,000 people over ten days,
        # the first through the application and the others cloned from it (bulk_store.py).
        "rebuild": {"people": 2000, "days": 10, "build": "bulk", "events": 10_000_000},
        "redeem": {"n": 5000, "threads": 32},
        "approvals": {"n": 20_000, "group": 1000},
        "memory": {"wallets": 1_000_000, "group": 1000},
    },
}


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def run_one(name: str, params: dict[str, Any]) -> tuple[list[Figure], dict[str, Any]]:
    """One benchmark's figures, and its whole report beside them; a benchmark that fails
    is reported as such, and the others still run."""
    module = importlib.import_module(f"benchmarks.{name}")
    run: Callable[..., dict[str, Any]] = module.run
    figures: Callable[[dict[str, Any]], list[Figure]] = module.figures
    started = time.perf_counter()
    try:
        # Whatever a benchmark prints must not mix into the one document on stdout.
        with contextlib.redirect_stdout(sys.stderr):
            report = run(**params)
        found = figures(report)
    except Exception as exc:
        return [failed(name, f"{type(exc).__name__}: {exc}")], {"error": f"{type(exc).__name__}: {exc}"}
    return found, {"parameters": params, "seconds": round(time.perf_counter() - started, 1), "report": report}


def run_all(scale: str, only: list[str] | None = None) -> dict[str, Any]:
    chosen = [n for n in BENCHMARKS if not only or n in only]
    started = machine()  # dated when the run starts
    figures: list[Figure] = []
    details: dict[str, Any] = {}
    for name in chosen:
        print(f"benchmarks: {name} ({scale})", file=sys.stderr, flush=True)
        found, details[name] = run_one(name, SCALES[scale][name])
        figures += found
    return {"scale": scale, "machine": started, "figures": figures, "benchmarks": details}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", choices=tuple(SCALES), default="default")
    parser.add_argument(
        "--only", action="append", choices=BENCHMARKS, metavar="NAME", help=f"one of {', '.join(BENCHMARKS)}"
    )
    args = parser.parse_args(argv)
    print(json.dumps(run_all(args.scale, args.only), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
