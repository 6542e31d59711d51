#!/usr/bin/env python3
"""Set up and run civfed from a fresh clone, with nothing but Python 3.11+.

    python3 dev.py demo [civfed demo options]   run the embedded federation
    python3 dev.py test [pytest options]        lint, type-check and run every test

Each creates ./.venv on first use and reinstalls only when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def run(*cmd: str | Path, setup: bool = False, what: str = "") -> None:
    # Set-up chatter goes to stderr, so `dev.py demo --json` prints only the JSON on stdout.
    print("+", " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    if not what:
        subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True, stdout=sys.stderr if setup else None)
        return
    # A long step says what it is doing every few seconds (rich is not installed yet here).
    start = time.monotonic()
    done = threading.Event()

    def tick() -> None:
        while not done.wait(5):
            print(f"  {what}... {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True, stdout=sys.stderr if setup else None)
    finally:
        done.set()
        ticker.join()
    print(f"  {what}: done in {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)


def ensure_env(extra: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be started by an older Python
        sys.exit(f"civfed needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        print("Creating .venv", file=sys.stderr, flush=True)
        venv.create(VENV, with_pip=True)
    spec = ".[test]" if extra else "."
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / ".civfed-installed"
    # The stamp names the pyproject it installed and whether test tools came too.
    installed = stamp.read_text().split() if stamp.exists() else []
    if installed[:1] == [digest] and (installed[1:] == [".[test]"] or spec == "."):
        return
    print(
        "Installing civfed and its dependencies into .venv (once per change of pyproject.toml)",
        file=sys.stderr,
    )
    run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip", setup=True, what="upgrading pip")
    run(PY, "-m", "pip", "install", "--quiet", "-e", spec, setup=True, what="installing dependencies")
    stamp.write_text(f"{digest} {spec}\n")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    try:
        ensure_env("" if command == "demo" else "test")
        # Stubs are build output: regenerate so an edited contract takes effect.
        run(PY, "-m", "services.protogen", setup=True)
        if command == "demo":
            run(BIN / "civfed", "demo", *rest)
        else:
            run(BIN / "ruff", "check", ".")
            run(BIN / "ruff", "format", "--check", ".")
            run(BIN / "mypy")
            if os.environ.get("CI") and shutil.which("chromium") is None:
                # The dashboard test drives headless Chromium; CI must not skip it.
                run("apt-get", "update")
                run("apt-get", "install", "-y", "--no-install-recommends", "chromium")
            run(PY, "-m", "pytest", *(rest or ["-q"]))
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
