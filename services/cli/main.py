"""The `civfed` command line."""

from __future__ import annotations

import argparse
import json
import sys

from aggregates.errors import DomainError
from services.cli.check_config import add_check_config_parser
from services.cli.desk import register as register_desk_commands
from services.cli.funds import register as register_funds_commands
from services.cli.keys import register as register_keys_commands
from services.cli.rights import register as register_rights_commands
from services.cli.simulate import register as register_simulate_command
from services.cli.staff import register as register_staff_commands
from services.cli.stream import after_demo, project_demo
from services.cli.stream import register as register_stream_commands
from services.grpc.server import add_serve_parser
from services.settings.cities import cli_environment, load_settings
from services.settings.errors import ConfigError
from services.workflow_report import register as register_workflow_commands


def cmd_demo(args: argparse.Namespace) -> int:
    from services.demo.federation import render_federation, run_federation_demo
    from services.demo.main import render_table, run_demo
    from services.demo.published import published_figures, render_published

    settings = load_settings(cli_environment(args.data_dir))
    # The nodes redeem on the same city stores first, so the summary counts their
    # wallets on every run alike, the first one included.
    federation = run_federation_demo(settings)
    report = run_demo(settings, scale=args.scale, quiet=args.json)
    applied = project_demo(settings)
    published = published_figures(settings)
    if args.json:
        out = {
            "data_dir": str(settings.CIVFED_DATA_DIR),
            "cities": report,
            "federation": federation,
            "published": published,
        }
        print(json.dumps(out, indent=2))
    else:
        print()
        print("Ledger totals: the operator's own check of its stores (not published)")
        print(render_table(report))
        print(f"\nEvent stores: {settings.CIVFED_DATA_DIR} (run again: nothing is counted twice)")
        print("\nThree city nodes on loopback over mutual TLS, redeeming across cities:")
        print(render_federation(federation))
        print()
        print(render_published(published))
    after_demo(settings, args, applied)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="civfed", description="A federation of civic reward tokens.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the embedded five-city federation on SQLite")
    demo.add_argument("--data-dir", help="where the SQLite stores live (default: per-user data dir)")
    demo.add_argument("--json", action="store_true", help="print the figures as JSON")
    demo.add_argument("--scale", type=float, default=1.0, help="scale the number of people (default 1.0)")
    demo.add_argument("--serve", action="store_true", help="then serve the dashboard until interrupted")
    demo.add_argument("--port", type=int, help="dashboard port with --serve (default 8470)")
    demo.set_defaults(func=cmd_demo)
    add_serve_parser(sub)
    register_stream_commands(sub)
    register_workflow_commands(sub)
    add_check_config_parser(sub)
    register_rights_commands(sub)
    register_staff_commands(sub)
    register_keys_commands(sub)
    register_desk_commands(sub)
    register_simulate_command(sub)
    register_funds_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"civfed: configuration error: {exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"civfed: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
