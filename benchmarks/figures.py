"""One measured figure beside its baseline from the same run, as benchmarks/run.py prints it."""

from __future__ import annotations

from typing import Any

Figure = dict[str, Any]


def figure(name: str, value: float, unit: str, baseline: float | None, baseline_name: str | None) -> Figure:
    """`ratio` is value / baseline: above 1, the figure beats its baseline when more is
    better (rates); for latencies and durations, below 1 is better."""
    ratio = round(value / baseline, 3) if baseline else None
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_name": baseline_name,
        "ratio": ratio,
    }


def failed(name: str, error: str) -> Figure:
    """A benchmark that could not run (a server missing): reported, never invented."""
    return {
        "name": name,
        "value": None,
        "unit": None,
        "baseline": None,
        "baseline_name": None,
        "ratio": None,
        "error": error,
    }
