"""`civfed keys rotate --city X --new-key-file PATH`: rewrap a city's data keys under a new key-store key.

Run it with every process of the city stopped (see deploy/README.md), then point
CIVFED_KEYSTORE_KEY_FILE at the new file and start them again. A process left
running on the old key refuses to add keys under it and names the setting.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from services.city import app_name
from services.privacy.keystore import open_keystore
from services.privacy.keystore_key import SETTING, read_kek
from services.settings.cities import city_keys, cli_environment, load_city, load_settings


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    settings = load_settings(cli_environment(args.data_dir))
    new_kek = read_kek(Path(args.new_key_file).expanduser(), "--new-key-file")
    cities = args.city or city_keys(settings.CIVFED_CITIES_DIR)
    report = []
    for city in cities:
        load_city(city, settings.CIVFED_CITIES_DIR)  # a mistyped key opens no stray store
        keys = open_keystore(settings.eventsourcing_env(city), app_name(city))
        try:
            report.append({"city": city, "rewrapped": keys.rotate(new_kek)})
        finally:
            keys.close()
    print(json.dumps({"rotated": report, "next": f"set {SETTING}={args.new_key_file}, then start the city"}))
    return 0


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="the key store's key")
    keys = keys.add_subparsers(dest="keys_command", required=True)
    rotate = keys.add_parser(
        "rotate", help=f"rewrap every stored data key under a new key-store key (current one: {SETTING})"
    )
    rotate.add_argument("--city", action="append", help="a city key (repeatable; default: every city)")
    rotate.add_argument("--new-key-file", required=True, help="the new key: 32 random bytes, base64-encoded")
    rotate.add_argument("--data-dir", help="where the SQLite stores live")
    rotate.set_defaults(func=cmd_keys_rotate)
