"""Approval throughput in a workflow city (Zwolle) against raw eventsourcing.

An approval checks four eyes, evaluates the per-approved-time rule, records the
wallet's depreciation so far, credits it and opens a lot, and stores its
receipt. Raw eventsourcing saves in the same run on the same store are the
baseline. Also times the equilibrium report over the log the run produced.
Prints JSON.

    python -m benchmarks.approvals [--n 1000] [--group 500] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # before benchmarks/, whose projections.py would shadow the package

from benchmarks.figures import Figure, failed, figure  # noqa: E402
from benchmarks.ingest import rate, raw, store  # noqa: E402
from projections.disclosure import Policy  # noqa: E402
from projections.store import Store  # noqa: E402
from services.city import CityApplication  # noqa: E402
from services.settings.cities import load_city, load_settings  # noqa: E402
from services.workflow_report import equilibrium_report  # noqa: E402

START = dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now


def approvals(env: dict[str, str], n: int, group: int, wallets: int = 50) -> dict[str, float]:
    clock = Clock()
    app = CityApplication(
        load_city("zwolle"), {**load_settings({}).eventsourcing_env("zwolle"), **env}, clock
    )
    wf = app.workflow
    assert wf is not None
    consent = app.city.config.consent_versions[-1]
    ids = [
        uuid.UUID(r["wallet_id"])  # type: ignore[index]
        for r in app.execute_group([app.open_wallet(f"w{i}", "resident", consent) for i in range(wallets)])
    ]

    def logs(tag: str, count: int) -> list[uuid.UUID]:
        """`count` logged (not yet approved) work logs, a day's task per `wallets` of them."""
        out: list[uuid.UUID] = []
        for d in range(0, count, wallets):
            day = START + dt.timedelta(days=len(out) // wallets + (0 if tag == "s" else 500))
            clock.now = day
            task = wf.post_task(
                f"{tag}t{d}", "litter-picking", "Park", day.replace(hour=9), day.replace(hour=17), 60, "c"
            )
            task_id = uuid.UUID(app.execute(task)["task_id"])
            chosen = ids[: min(wallets, count - d)]
            app.execute_group([wf.claim_task(f"{tag}c{d}:{i}", task_id, w) for i, w in enumerate(chosen)])
            clock.now = day.replace(hour=18)
            cmds = [wf.log_minutes(f"{tag}l{d}:{i}", task_id, w, 240) for i, w in enumerate(chosen)]
            out += [uuid.UUID(r["log_id"]) for r in app.execute_group(cmds)]  # type: ignore[index]
        return out

    singles = logs("s", n)
    before = app.recorder.max_notification_id() or 0
    one = rate(
        n, lambda: [app.execute(wf.approve_log(f"as{i}", log, "coord:anna")) for i, log in enumerate(singles)]
    )
    per_command = ((app.recorder.max_notification_id() or 0) - before) / n
    grouped_logs = logs("g", n)

    def grouped() -> None:
        cmds = [wf.approve_log(f"ag{i}", log, "coord:anna") for i, log in enumerate(grouped_logs)]
        for i in range(0, n, group):
            app.execute_group(cmds[i : i + group])

    out = {"one_per_command": one, "grouped": rate(n, grouped), "events_per_command": per_command}
    events = app.recorder.max_notification_id() or 0
    start = time.perf_counter()
    # Every month closed, as a finance office reads the report after the season.
    published = Store("sqlite:///:memory:")
    report = equilibrium_report(app, "zwolle", published, Policy(), START + dt.timedelta(days=3650))
    published.close()
    out["report_seconds"] = round(time.perf_counter() - start, 3)
    out["report_events_read"] = events
    assert report is not None
    app.close()
    return out


def measure(backend: str, n: int, group: int) -> dict[str, Any]:
    with store(backend) as env:
        base = raw(env, n, group)
    with store(backend) as env:
        ours = approvals(env, n, group)
    per = ours["events_per_command"]
    return {
        "raw_eventsourcing_events_per_s": base,
        "approvals_per_s": {k: ours[k] for k in ("one_per_command", "grouped")},
        "events_per_approval": per,
        "ratio_events_one_per_save": round(ours["one_per_command"] * per / base["one_per_save"], 2),
        "ratio_events_grouped": round(ours["grouped"] * per / base["grouped"], 2),
        "equilibrium_report_seconds": ours["report_seconds"],
        "equilibrium_report_over_events": ours["report_events_read"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--group", type=int, default=500)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    print(json.dumps(run(args.n, args.group, args.backends), indent=2))


def run(n: int = 1000, group: int = 500, backends: str = "sqlite,postgres") -> dict[str, Any]:
    """The whole report, as `main` prints it."""
    report: dict[str, Any] = {"n": n, "group": group}
    for backend in [b for b in backends.split(",") if b]:
        try:
            report[backend] = measure(backend, n, group)
        except Exception as exc:  # a missing server is reported, not fatal
            report[backend] = {"error": f"{type(exc).__name__}: {exc}"}
    return report


def figures(report: dict[str, Any]) -> list[Figure]:
    """Each figure of `run`'s report beside the baseline measured in the same run."""
    out: list[Figure] = []
    for backend in ("sqlite", "postgres"):
        if backend not in report:
            continue
        r, name = report[backend], f"approvals.{backend}"
        if "error" in r:
            out.append(failed(name, r["error"]))
            continue
        base, per = r["raw_eventsourcing_events_per_s"], r["events_per_approval"]
        for kind, raw_kind in (("one_per_command", "one_per_save"), ("grouped", "grouped")):
            out.append(
                figure(
                    f"{name}.events_per_s.{kind}",
                    round(r["approvals_per_s"][kind] * per, 1),
                    "events/s",
                    base[raw_kind],
                    f"raw eventsourcing, {raw_kind.replace('_', ' ')}",
                )
            )
        # The report reads the whole log: its time beside that of the approvals that wrote it.
        grouped_seconds = round(report["n"] / r["approvals_per_s"]["grouped"], 3)
        out.append(
            figure(
                f"{name}.equilibrium_report_seconds",
                r["equilibrium_report_seconds"],
                "s",
                grouped_seconds,
                f"grouped approval of the {report['n']} logs it reads",
            )
        )
    return out


if __name__ == "__main__":
    main()
