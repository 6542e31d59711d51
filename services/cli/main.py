"""The `civfed` command line.

Every expected failure ends as one line on stderr and an exit code (services/cli/failures.py);
`--help` on every command describes it and each of its options."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from services.cli.check_config import add_check_config_parser
from services.cli.cities import UnknownCity, city_locale, resolve_city
from services.cli.clearing import register as register_clearing_commands
from services.cli.demo import register as register_demo_command
from services.cli.desk import register as register_desk_commands
from services.cli.failures import (
    INTERRUPTED,
    USAGE,
    Failure,
    data_dir_failure,
    explain,
    postgres_failure,
    report,
    tracebacks_wanted,
)
from services.cli.finance import register as register_finance_commands
from services.cli.funds import register as register_funds_commands
from services.cli.keys import register as register_keys_commands
from services.cli.lang import explicit_language, set_language
from services.cli.lang import tr as _
from services.cli.payouts import register as register_payout_commands
from services.cli.rights import register as register_rights_commands
from services.cli.simulate import register as register_simulate_command
from services.cli.staff import register as register_staff_commands
from services.cli.stream import register as register_stream_commands
from services.grpc.server import add_serve_parser
from services.settings.cities import PACKAGED_CITIES, Settings, cli_environment, load_settings
from services.settings.errors import ConfigError
from services.settings.stream import load_stream_settings
from services.workflow_report import register as register_workflow_commands

# Commands that make their data directory when it is missing (the simulation's own folder,
# a temporary one unless --data-dir names it); every other one refuses it.
CREATES_DATA_DIR = {"demo", "simulate"}


class Parser(argparse.ArgumentParser):
    """An argument parser whose mistakes are one line naming the command and where to look."""

    def error(self, message: str) -> NoReturn:
        raise Failure(_("{message} (see `{prog} --help`)").format(prog=self.prog, message=message), USAGE)


def port_number(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(_("{text!r} is not a port number (0 to 65535)").format(text=text))
    return port


def _subparsers(parser: argparse.ArgumentParser) -> list[tuple[argparse.ArgumentParser, str]]:
    """Every sub-command's parser below `parser`, with its one-line help."""
    found: list[tuple[argparse.ArgumentParser, str]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                found.append((sub, helps.get(name, "")))
                found += _subparsers(sub)
    return found


def _finish(parser: argparse.ArgumentParser) -> None:
    """Descriptions, `--lang`, checked ports and `serve --data-dir` on every command."""
    for sub, help_ in _subparsers(parser):
        if not sub.description and help_:
            sub.description = help_[0].upper() + help_[1:] + "."
        if sub.get_default("func") is None:
            continue
        sub.add_argument(
            "--lang",
            help="the language of civfed's messages, e.g. en, de, it, nl"
            " (default: CIVFED_LANG, else the city's language, else English)",
        )
        for action in sub._actions:
            if action.dest == "port" and action.type is int:
                action.type = port_number
            if action.dest == "city" and action.option_strings and "local name" not in (action.help or ""):
                action.help = (
                    f"{action.help or 'the city'}; by key or name, any case: vienna, Wien, sint-niklaas"
                )
        if sub.prog.endswith(" serve"):
            sub.add_argument("--data-dir", help="where the SQLite stores live (default: CIVFED_DATA_DIR)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="civfed", description="A federation of civic reward tokens.")
    parser.add_argument("--lang", help="the language of civfed's messages, e.g. en, de, it, nl")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_demo_command(sub)
    add_serve_parser(sub)
    register_stream_commands(sub)
    register_workflow_commands(sub)
    add_check_config_parser(sub)
    register_rights_commands(sub)
    register_staff_commands(sub)
    register_keys_commands(sub)
    register_desk_commands(sub)
    register_simulate_command(sub)
    register_clearing_commands(sub)
    register_payout_commands(sub)
    register_funds_commands(sub)
    register_finance_commands(sub)
    _finish(parser)
    return parser


def _cities_dir() -> Path:
    return Path(os.environ.get("CIVFED_CITIES_DIR") or PACKAGED_CITIES)


def _resolve_cities(args: argparse.Namespace) -> list[str]:
    """Every `--city` (and `rules show`'s positional city) as a key; returns them."""
    cities_dir = _cities_dir()
    positional = getattr(args, "city_positional", None)
    if positional is not None:
        if getattr(args, "city", None):
            raise Failure(_("name the city once, with --city"), USAGE)
        args.city = positional
    given = getattr(args, "city", None)
    if given is None:
        return []
    if isinstance(given, list):
        args.city = [resolve_city(c, cities_dir) for c in given]
        return list(args.city)
    args.city = resolve_city(given, cities_dir)
    return [args.city]


def _settings(args: argparse.Namespace) -> Settings | None:
    if not hasattr(args, "data_dir") and args.command != "serve":
        return None
    return load_settings(cli_environment(getattr(args, "data_dir", None)))


def _check_data_dir(args: argparse.Namespace, settings: Settings) -> None:
    """A data directory that does not exist is a mistake for every command but the demo: it
    would silently start an empty federation, or a node with an empty store beside the one
    meant. Refused alike whether --data-dir or CIVFED_DATA_DIR names it."""
    if args.command in CREATES_DATA_DIR:
        return
    path = settings.CIVFED_DATA_DIR
    named = "--data-dir" if getattr(args, "data_dir", None) else "CIVFED_DATA_DIR"
    if not path.exists():
        if settings.PERSISTENCE_MODULE != "eventsourcing.sqlite" and not getattr(args, "data_dir", None):
            return  # the stores are in PostgreSQL; the folder holds only what is made on demand
        if args.command == "serve":
            raise Failure(
                _(
                    "{named}: the data directory {path} does not exist; check the path, "
                    "or create the directory for a new node"
                ).format(named=named, path=path),
                USAGE,
            )
        raise Failure(
            _(
                "{named}: the data directory {path} does not exist; check the path, "
                "or create a demo federation there with `civfed demo --data-dir {path}`"
            ).format(named=named, path=path),
            USAGE,
        )
    if not path.is_dir():
        raise ConfigError(f"{named}: {path} is not a directory")


def _check_postgres(settings: Settings) -> None:
    """Before any store opens: a server that is down or a database that is missing is named
    at once, instead of after the connection pool's 30 seconds."""
    if settings.PERSISTENCE_MODULE != "eventsourcing.postgres":
        return
    import psycopg

    try:
        psycopg.connect(
            host=settings.POSTGRES_HOST,
            port=settings.POSTGRES_PORT,
            user=settings.POSTGRES_USER,
            password=settings.POSTGRES_PASSWORD or None,
            dbname=settings.POSTGRES_DBNAME,
            connect_timeout=5,
        ).close()
    except psycopg.OperationalError as exc:
        raise postgres_failure(
            settings.POSTGRES_HOST, settings.POSTGRES_PORT, settings.POSTGRES_DBNAME, str(exc)
        ) from None


def _stop_on_interrupt() -> None:
    """Ctrl-C ends the command at once with one line and exit code 130. Every store write is
    one transaction, so nothing half-done is kept; unwinding instead through the demo's
    in-process gRPC nodes can crash the interpreter in grpc's core, or print a traceback from
    each of their threads. Commands that stop gracefully on a signal (serve, project
    --follow, relay, dashboard) install their own handler over this one."""

    def on_interrupt(signum: int, frame: Any) -> None:
        if sys.stderr.isatty():
            sys.stderr.write("\n\x1b[?25h")  # a progress bar may have hidden the cursor
        report(explain(KeyboardInterrupt()))
        sys.stdout.flush()
        os._exit(INTERRUPTED)

    signal.signal(signal.SIGINT, on_interrupt)


def _prescan_language(argv: list[str]) -> None:
    chosen = None
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            chosen = argv[i + 1]
        elif arg.startswith("--lang="):
            chosen = arg.split("=", 1)[1]
    wanted = explicit_language(chosen)
    if wanted:
        try:
            set_language(wanted)
        except ValueError:
            set_language("en")
    else:
        set_language("en")


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    wanted = explicit_language(getattr(args, "lang", None))
    if wanted:
        try:
            set_language(wanted)
        except ValueError as exc:
            raise Failure(str(exc), USAGE) from None
    cities = _resolve_cities(args)
    if not wanted and len(cities) == 1:
        set_language(city_locale(cities[0], _cities_dir()))
    if args.command == "serve" and args.data_dir:
        os.environ["CIVFED_DATA_DIR"] = str(Path(args.data_dir).expanduser())
    settings = _settings(args)
    if hasattr(args, "kafka") or args.command == "dashboard":
        # The stream settings first: a Kafka setting missing is named before the data directory.
        env = cli_environment(getattr(args, "data_dir", None))
        if getattr(args, "kafka", None):
            env["CIVFED_KAFKA_BOOTSTRAP"] = args.kafka
        load_stream_settings(env)
    if settings is None:
        code: int = args.func(args)
        return code
    _check_data_dir(args, settings)
    _check_postgres(settings)
    try:
        code = args.func(args)
    except Exception as exc:
        raise _in_context(exc, settings) from exc
    return code


def _in_context(exc: Exception, settings: Settings) -> BaseException:
    """A store's failure, told with the data directory or database it concerns."""
    from eventsourcing.persistence import OperationalError

    if isinstance(exc, OperationalError) and settings.PERSISTENCE_MODULE == "eventsourcing.postgres":
        return postgres_failure(
            settings.POSTGRES_HOST, settings.POSTGRES_PORT, settings.POSTGRES_DBNAME, str(exc)
        )
    if isinstance(exc, Failure | ConfigError | UnknownCity):
        return exc
    if settings.PERSISTENCE_MODULE == "eventsourcing.sqlite":
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        if isinstance(cause, PermissionError) or "readonly" in str(cause):
            return data_dir_failure(settings.CIVFED_DATA_DIR, cause)
        failure = explain(cause, settings.CIVFED_DATA_DIR)
        return failure if failure.expected else exc
    return exc


def main(argv: list[str] | None = None) -> int:
    script = argv is None
    if argv is None:  # the `civfed` script (not a caller in this process): Ctrl-C is ours
        argv = sys.argv[1:]
        _stop_on_interrupt()
    _prescan_language(argv)
    try:
        return run(argv)
    except SystemExit as exc:  # --help, and commands that end with sys.exit
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else USAGE)
    except BaseException as exc:
        failure = explain(exc)
        # A caller in this process (not the script) gets what nobody expected as it was raised.
        if tracebacks_wanted() or (not failure.expected and not script):
            raise
        return report(failure)


if __name__ == "__main__":
    sys.exit(main())
