"""`civfed rules show <city>`, `civfed retention run --city <city>`, `civfed erasures reapply`.

Erasing one person on request goes through the node (services/cli/staff.py), never the
stores directly: a holder with their credential, or two erasure officers."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from services.city import CityApplication, app_name
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
    city = load_city(args.city, settings.CIVFED_CITIES_DIR).config.key
    reader = RulebookReader(app_name(city), settings.eventsourcing_env(city))
    try:
        print(render(city, rule_history(reader, city), proposals_of(reader, city)))
    finally:
        reader.close()
    return 0


def cmd_retention_run(args: argparse.Namespace) -> int:
    settings = load_settings(dict(os.environ))
    cities = [args.city] if args.city else city_keys(settings.CIVFED_CITIES_DIR)
    reports: list[dict[str, Any]] = []
    for city in cities:
        app = _open(args, city)
        try:
            reports.append(run_retention(app))
        finally:
            app.close()
    print(json.dumps(reports, indent=2))
    return 0


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
    show.add_argument("city")
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
