"""Memory of a city application that has opened many wallets, against raw eventsourcing.

Each side runs in a process of its own (peak memory is a process's), on SQLite: civfed's
Vienna application opens `--wallets` wallets through group commits of `--group`; the
baseline saves as many raw `eventsourcing` aggregates in groups of the same size. Reports
each process's peak resident memory and its growth over the process before the run.

    python -m benchmarks.memory [--wallets 100000] [--group 1000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# The project root first: this folder's projections.py would shadow the package.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.figures import Figure, figure  # noqa: E402


def peak_mb() -> float:
    """This process's peak resident memory. On Linux from VmHWM, which starts afresh with
    the program: getrusage's figure survives exec, and would include the parent's."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def child(side: str, wallets: int, group: int) -> dict[str, float]:
    from benchmarks.ingest import Counter, Raw
    from services.city import CityApplication
    from services.settings.cities import load_city, load_settings

    with tempfile.TemporaryDirectory() as d:
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(Path(d) / "m.sqlite")}
        if side == "raw":
            raw = Raw(env)
            before = peak_mb()
            for start in range(0, wallets, group):
                raw.save(*[Counter() for _ in range(start, min(start + group, wallets))])
            after = peak_mb()
            raw.close()
        else:
            city = load_city("vienna")
            app = CityApplication(city, {**load_settings({}).eventsourcing_env("vienna"), **env})
            consent = city.config.consent_versions[-1]
            before = peak_mb()
            for start in range(0, wallets, group):
                app.execute_group(
                    [
                        app.open_wallet(f"w{i}", "resident", consent)
                        for i in range(start, min(start + group, wallets))
                    ]
                )
            after = peak_mb()
            app.close()
    return {"peak_mb": round(after, 1), "growth_mb": round(after - before, 1)}


def measure(side: str, wallets: int, group: int) -> dict[str, float]:
    args = [sys.executable, "-m", "benchmarks.memory", "--child", side, "--wallets", str(wallets)]
    done = subprocess.run(
        [*args, "--group", str(group)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def run(wallets: int = 100_000, group: int = 1000) -> dict[str, Any]:
    """The whole report, as `main` prints it."""
    return {
        "wallets": wallets,
        "group": group,
        "civfed": measure("civfed", wallets, group),
        "raw_eventsourcing": measure("raw", wallets, group),
    }


def figures(report: dict[str, Any]) -> list[Figure]:
    """Each figure of `run`'s report beside the baseline measured in the same run."""
    n = report["wallets"]
    return [
        figure(
            "memory.wallets_opened.peak_mb",
            report["civfed"]["peak_mb"],
            "MB",
            report["raw_eventsourcing"]["peak_mb"],
            f"raw eventsourcing saving {n} aggregates in the same groups",
        ),
        figure(
            "memory.wallets_opened.growth_mb",
            report["civfed"]["growth_mb"],
            "MB",
            report["raw_eventsourcing"]["growth_mb"],
            f"raw eventsourcing saving {n} aggregates in the same groups",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--wallets", type=int, default=100_000)
    parser.add_argument("--group", type=int, default=1000)
    parser.add_argument("--child", choices=("civfed", "raw"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.wallets, args.group)))
        return
    print(json.dumps(run(args.wallets, args.group), indent=2))


if __name__ == "__main__":
    main()
