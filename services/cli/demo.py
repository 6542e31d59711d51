"""`civfed demo`: the embedded five-city federation on SQLite, with progress on stderr and,
last, the command that serves its dashboard."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import socket
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

from services.cli.failures import REFUSED, Failure, data_dir_failure
from services.cli.lang import tr as _
from services.settings.cities import Settings, cli_environment, load_settings
from services.settings.errors import ConfigError

LOCK_FILE = ".civfed-demo.lock"


@contextmanager
def only_demo(settings: Settings, named: str = "CIVFED_DATA_DIR") -> Iterator[None]:
    """Made and held for the whole run: a second demo on the same data directory is refused at
    once, instead of failing half-way on the first's writes."""
    folder = settings.CIVFED_DATA_DIR
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{named}: {folder} is not a directory")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle: IO[str] = (folder / LOCK_FILE).open("a")
    except OSError as exc:
        raise data_dir_failure(folder, exc) from None
    with handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock, as before
            yield
            return
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Failure(
                _(
                    "another civfed demo is running on {path}; wait for it to finish, "
                    "or give this one another --data-dir"
                ).format(path=folder),
                REFUSED,
            ) from None
        yield


def civfed_command() -> str:
    """How to run civfed from here: `civfed` when it is on the PATH, else the script beside this
    Python (`.venv/bin/civfed`), relative to the current folder when it is below it."""
    if shutil.which("civfed"):
        return "civfed"
    script = Path(sys.executable).parent / ("civfed.exe" if os.name == "nt" else "civfed")
    if not script.exists():
        return f"{shlex.quote(sys.executable)} -m services.cli"
    try:
        relative = script.relative_to(Path.cwd())
        return shlex.quote(str(relative) if relative.parts[0].startswith(".") else f"./{relative}")
    except ValueError:
        return shlex.quote(str(script))


def cmd_demo(args: argparse.Namespace) -> int:
    from services.cli.stream import demo_stream, listen, project_demo, serve_dashboard
    from services.demo.federation import DAYS, render_federation, run_federation_demo
    from services.demo.main import render_table, run_demo
    from services.demo.progress import Phases
    from services.demo.published import published_figures, render_published

    settings = load_settings(cli_environment(args.data_dir))
    stream = demo_stream()
    out = sys.stderr if args.json else sys.stdout  # keep --json output parseable
    with ExitStack() as stack:
        sock: socket.socket | None = None
        if args.serve:
            # Bound before the demo runs: a busy port is named now, not after a minute of work.
            port = args.port if args.port is not None else stream.CIVFED_DASHBOARD_PORT
            named = "--port" if args.port is not None else "CIVFED_DASHBOARD_PORT"
            sock = listen(stream.CIVFED_DASHBOARD_HOST, port, named, "CIVFED_DASHBOARD_HOST")
            stack.callback(sock.close)
        stack.enter_context(only_demo(settings, "--data-dir" if args.data_dir else "CIVFED_DATA_DIR"))
        phases = Phases()
        # The nodes redeem on the same city stores first, so the summary counts their
        # wallets on every run alike, the first one included.
        with phases.phase(_("Federation (three nodes)"), DAYS, _("days")) as step:
            federation = run_federation_demo(settings, step)
        report = run_demo(settings, scale=args.scale, phases=phases)
        with phases.phase(_("Read models")):
            applied = project_demo(settings)
            published = published_figures(settings)
        if args.json:
            found = {
                "data_dir": str(settings.CIVFED_DATA_DIR),
                "cities": report,
                "federation": federation,
                "published": published,
            }
            print(json.dumps(found, indent=2))
        else:
            print()
            print(_("Ledger totals: the operator's own check of its stores (not published)"))
            print(render_table(report, _))
            print()
            print(
                _("Event stores: {path} (run again: nothing is counted twice)").format(
                    path=settings.CIVFED_DATA_DIR
                )
            )
            print()
            print(_("Three city nodes on loopback over mutual TLS, redeeming across cities:"))
            print(render_federation(federation, settings, _))
            print()
            print(render_published(published))
        print(
            _("Read models: {count} new events projected from the notification logs").format(count=applied),
            file=out,
        )
        if sock is not None:
            serve_dashboard(settings, stream, sock)
            return 0
        address = f"http://{stream.CIVFED_DASHBOARD_HOST}:{stream.CIVFED_DASHBOARD_PORT}/"
        command = f"{civfed_command()} dashboard --data-dir {shlex.quote(str(settings.CIVFED_DATA_DIR))}"
        print(
            _("To see the dashboards at {address}, run: {command}").format(address=address, command=command),
            file=out,
            flush=True,
        )
    return 0


def register(sub: Any) -> None:
    demo = sub.add_parser(
        "demo",
        help="run the embedded five-city federation on SQLite",
        description="Run the embedded five-city federation on SQLite: each city's season, three city"
        " nodes redeeming across cities over mutual TLS, and the read models the dashboards show."
        " Run again on the same data directory, nothing is counted twice.",
    )
    demo.add_argument(
        "--data-dir",
        help="where the SQLite stores live; made if missing (default: CIVFED_DATA_DIR or per-user)",
    )
    demo.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    demo.add_argument("--scale", type=float, default=1.0, help="scale the number of people (default 1.0)")
    demo.add_argument("--serve", action="store_true", help="then serve the dashboard until interrupted")
    demo.add_argument(
        "--port", type=int, help="dashboard port with --serve (default: CIVFED_DASHBOARD_PORT, 8470)"
    )
    demo.set_defaults(func=cmd_demo)
