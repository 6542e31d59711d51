"""`civfed rules show <city>`, `civfed retention run --city <city>`, `civfed erasures reapply`.

Erasing one person on request goes through the node (services/cli/staff.py), never the
stores directly: a holder with their credential, or two erasure officers."""

from __future__ import annotations

import argparse
import json
from typing import Any

from services.city import CityApplication, app_name
from services.cli.failures import USAGE, Failure
from services.cli.lang import tr as _
from services.privacy.reapply import reapply
from services.privacy.retention import run_retention
from services.rulebook_history import RulebookReader, proposals_of, render, rule_history
from services.settings.cities import city_keys, cli_environment, load_city, load_settings


def _open(args: argparse.Namespace, city: str) -> CityApplication:
    settings = load_settings(cli_environment(getattr(args, "data_dir", None)))
    return CityApplication(load_city(city, settings.CIVFED_CITIES_DIR), settings.eventsourcing_env(city))


def cmd_rules_show(args: argparse.Namespace) -> int:
    """Reads only: the store is opened without founding or proposing anything, so an edited
    rulebook file changes nothing here (the node proposes it when it starts)."""
    settings = load_settings(cli_environment(getattr(args, "data_dir", None)))
    if not args.city:
        raise Failure(_("name the city with --city (e.g. --city vienna)"), USAGE)
    city = load_city(args.city, settings.CIVFED_CITIES_DIR).config.key
    reader = RulebookReader(app_name(city), settings.eventsourcing_env(city))
    try:
        print(render(city, rule_history(reader, city), proposals_of(reader, city)))
    finally:
        reader.close()
    return 0


def cmd_retention_run(args: argparse.Namespace) -> int:
    settings = load_settings(cli_environment(getattr(args, "data_dir", None)))
    cities = [args.city] if args.city else city_keys(settings.CIVFED_CITIES_DIR)
    reports: list[dict[str, Any]] = []
    for city in cities:
        app = _open(args, city)
        try:
            reports.append(run_retention(app))
        finally:
            app.close()
    if args.json:
        print(json.dumps(reports, indent=2))
    else:
        for report in reports:
            print(retention_sentence(report))
    return 0


def retention_sentence(report: dict[str, Any]) -> str:
    """One city's retention run in words."""
    done = {k: v for k, v in report.items() if k in ("expired", "closed", "erased") and v}
    if not done:
        due = _("the retention period is over") if report.get("retention_due") else _("no retention due yet")
        return _("{city}: nothing to do ({due}; no wallet to close or erase).").format(
            city=report["city"], due=due
        )
    parts = {
        "expired": _("{n} wallets expired"),
        "closed": _("{n} wallets closed"),
        "erased": _("{n} wallets erased"),
    }
    return f"{report['city']}: " + ", ".join(parts[k].format(n=v) for k, v in done.items()) + "."


def cmd_erasures_reapply(args: argparse.Namespace) -> int:
    """After restoring a store or key store: erase again every wallet the journal names."""
    settings = load_settings(cli_environment(getattr(args, "data_dir", None)))
    cities = [args.city] if args.city else city_keys(settings.CIVFED_CITIES_DIR)
    reports: list[dict[str, Any]] = []
    for city in cities:
        app = _open(args, city)
        try:
            reports.append(reapply(app))
        finally:
            app.close()
    print(json.dumps(reports, indent=2))
    return 0


def register(sub: Any) -> None:
    rules = sub.add_parser("rules", help="public rulebooks").add_subparsers(
        dest="rules_command", required=True
    )
    show = rules.add_parser("show", help="print a city's rules and their full change history")
    show.add_argument("--city", help="the city: its key, English or local name (e.g. vienna, Wien)")
    show.add_argument("city_positional", nargs="?", metavar="CITY", help="the city, as --city (older form)")
    show.add_argument("--data-dir", help="where the SQLite stores live")
    show.set_defaults(func=cmd_rules_show)

    retention = sub.add_parser("retention", help="data retention").add_subparsers(
        dest="retention_command", required=True
    )
    run = retention.add_parser(
        "run",
        help="close wallets whose final spend window ended; erase all once the retention period is over",
    )
    run.add_argument("--city", help="one city (default: every city)")
    run.add_argument("--data-dir", help="where the SQLite stores live")
    run.add_argument("--json", action="store_true", help="print each city's counts as JSON")
    run.set_defaults(func=cmd_retention_run)

    erasures = sub.add_parser("erasures", help="the erasure journal").add_subparsers(
        dest="erasures_command", required=True
    )
    again = erasures.add_parser(
        "reapply",
        help="after a restore, destroy again the key of every wallet the erasure journal names (idempotent)",
    )
    again.add_argument("--city", help="one city (default: every city)")
    again.add_argument("--data-dir", help="where the SQLite stores live")
    again.set_defaults(func=cmd_erasures_reapply)
