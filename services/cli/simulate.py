"""`civfed simulate`: the seeded fault simulation of the federation (services/simulation)."""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any


def cmd_simulate(args: argparse.Namespace) -> int:
    from services.simulation.checks import SimulationFailure
    from services.simulation.world import simulate

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"civfed simulate: seed {seed}, {args.steps} steps", file=sys.stderr, flush=True)
    started = time.monotonic()
    every = max(1, args.steps // 20)

    def progress(n: int) -> None:
        if not args.quiet and n % every == 0:
            print(
                f"  step {n}/{args.steps} ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True
            )

    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        result = simulate(seed, args.steps, args.data_dir, progress)
    except SimulationFailure as failure:
        print("\n".join(failure.trace), file=sys.stderr)
        print(f"civfed simulate: FAILED at {failure.report()}", file=sys.stderr)
        print(f"replay: civfed simulate --seed {failure.seed} --steps {failure.step}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - started
    if args.trace:
        print("\n".join(result.trace))
    counts = ", ".join(f"{k} {v}" for k, v in result.counts.items())
    print(f"seed {seed}: {result.steps} steps in {seconds:.1f} s, every check held; trace {result.digest}")
    print(f"  {counts}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "simulate",
        help="run three cities through random sales under crashes, lost messages and lapsed holds",
    )
    p.add_argument("--seed", type=int, help="the seed to run or replay (default: a fresh one, printed)")
    p.add_argument("--steps", type=int, default=2000, help="how many steps (default 2000)")
    p.add_argument(
        "--data-dir", type=Path, help="keep the cities' SQLite stores here (default: a temporary folder)"
    )
    p.add_argument("--trace", action="store_true", help="print every step")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_simulate)
