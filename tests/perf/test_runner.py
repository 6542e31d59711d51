"""benchmarks/run.py at its smallest: the shape of its one JSON document, never its timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.run import BENCHMARKS, SCALES

ROOT = Path(__file__).resolve().parents[2]
FIGURE_KEYS = {"name", "value", "unit", "baseline", "baseline_name", "ratio"}


def runner(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.run", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_one_quick_benchmark_prints_one_document_of_figures_beside_baselines() -> None:
    done = runner("--scale", "smoke", "--only", "approvals")
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(done.stdout)  # stdout is the document alone
    assert doc["scale"] == "smoke"
    machine = doc["machine"]
    assert isinstance(machine["cpu_count"], int) and machine["cpu_count"] >= 1
    assert machine["python"] == ".".join(map(str, sys.version_info[:3]))
    assert machine["date"].startswith("20")
    assert list(doc["benchmarks"]) == ["approvals"]
    assert doc["benchmarks"]["approvals"]["parameters"] == SCALES["smoke"]["approvals"]
    figures = doc["figures"]
    assert [f["name"] for f in figures] == [
        "approvals.sqlite.events_per_s.one_per_command",
        "approvals.sqlite.events_per_s.grouped",
        "approvals.sqlite.equilibrium_report_seconds",
    ]
    for f in figures:
        assert set(f) == FIGURE_KEYS, f
        assert isinstance(f["value"], float) and f["value"] > 0, f
        assert isinstance(f["baseline"], float) and f["baseline"] > 0, f
        assert f["unit"] in ("events/s", "s") and f["baseline_name"], f
        assert f["ratio"] == round(f["value"] / f["baseline"], 3), f
    # The figures are the report's own numbers, not recomputed elsewhere.
    report = doc["benchmarks"]["approvals"]["report"]["sqlite"]
    assert figures[1]["baseline"] == report["raw_eventsourcing_events_per_s"]["grouped"]
    assert figures[2]["value"] == report["equilibrium_report_seconds"]


def test_only_names_a_benchmark_and_every_scale_sets_every_benchmark() -> None:
    done = runner("--only", "nonesuch")
    assert done.returncode == 2 and "invalid choice" in done.stderr and not done.stdout
    for scale, params in SCALES.items():
        assert set(params) == set(BENCHMARKS), scale
    # The large sizes are the ones cities plan with.
    assert SCALES["large"]["memory"]["wallets"] == 1_000_000
    people, days = SCALES["large"]["projections"]["people"], SCALES["large"]["projections"]["days"]
    assert people * (days + 1.5) >= 200_000
    # The rebuild at scale: at least ten million stored events, the store built in bulk.
    assert SCALES["large"]["rebuild"]["events"] >= 10_000_000
    assert SCALES["large"]["rebuild"]["build"] == "bulk"


def test_each_benchmark_still_runs_as_a_module() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.memory",
            *("--wallets", "100", "--small", "50", "--group", "50", "--sample", "10", "--calls", "200"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["wallets"] == 100 and set(report["at"]) == {"50", "100"}
    for at in report["at"].values():
        # A real node answered every call of each kind, and its memory was read from /proc.
        assert at["node"]["peak_mb"] >= at["node"]["rss_mb"] > 0
        for call in ("balance", "history", "statement"):
            figures = at[call]
            assert figures["calls"] == 200
            assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["p999_ms"] <= figures["max_ms"]
        assert at["holders"] == 10
        assert at["statement_lines"] > 0
