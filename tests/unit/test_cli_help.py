"""Every `civfed` command describes itself in `--help`, with help for each of its options."""

from __future__ import annotations

import argparse
import importlib

cli = importlib.import_module("services.cli.main")


def test_every_command_has_a_description_and_every_option_help() -> None:
    parser = cli.build_parser()
    commands = cli._subparsers(parser)
    assert len(commands) > 20
    for sub, _help in commands:
        assert sub.description, sub.prog
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue  # its commands are checked as commands
            assert action.help, (sub.prog, action.option_strings or action.dest)


def test_every_command_with_a_city_or_data_dir_takes_them_as_options() -> None:
    for sub, _help in cli._subparsers(cli.build_parser()):
        options = {o for a in sub._actions for o in a.option_strings}
        dests = {a.dest for a in sub._actions}
        if "city" in dests:
            assert "--city" in options, sub.prog
        if sub.prog == "civfed serve":
            assert "--data-dir" in options
