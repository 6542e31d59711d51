"""Every failure a person can cause or meet on the command line, as one line on stderr and an
exit code: 2 for usage and configuration, 1 for a refused command or an operational failure,
130 for Ctrl-C. Nothing here prints a traceback unless CIVFED_TRACEBACK=1 asks for one."""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
from pathlib import Path

from aggregates.errors import DomainError
from services.cli.cities import UnknownCity
from services.cli.lang import tr as _
from services.settings.errors import ConfigError

USAGE, REFUSED, INTERRUPTED = 2, 1, 130


class Failure(Exception):
    """An expected failure, its message already in the reader's words, and its exit code."""

    def __init__(self, message: str, code: int = REFUSED, expected: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.expected = expected


def data_dir_failure(path: Path, exc: BaseException) -> Failure:
    """A data directory that cannot be written or read, named with what to do."""
    read_only = path.is_dir() and not os.access(path, os.W_OK)
    if read_only or isinstance(exc, PermissionError) or "readonly" in str(exc):
        return Failure(
            _(
                "the data directory {path} is read-only for this user; "
                "give it write access or choose another with --data-dir"
            ).format(path=path),
            USAGE,
        )
    return Failure(
        _(
            "cannot use the data directory {path} ({reason}); check it, or choose another with --data-dir"
        ).format(path=path, reason=exc),
        USAGE,
    )


def postgres_failure(host: str, port: int, dbname: str, reason: str) -> Failure:
    if "does not exist" in reason and "database" in reason:
        return Failure(
            _(
                "the PostgreSQL database {dbname!r} does not exist on {host}:{port}; "
                "create it (createdb {dbname}) or set POSTGRES_DBNAME"
            ).format(dbname=dbname, host=host, port=port),
            USAGE,
        )
    first = reason.strip().splitlines()[0] if reason.strip() else reason
    return Failure(
        _(
            "cannot reach PostgreSQL at {host}:{port} ({reason}); "
            "start it, or check POSTGRES_HOST and POSTGRES_PORT"
        ).format(host=host, port=port, reason=first),
        REFUSED,
    )


def explain(exc: BaseException, data_dir: Path | None = None) -> Failure:
    """The one line and exit code for `exc`."""
    if isinstance(exc, Failure):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return Failure(
            _("interrupted; nothing half-done is kept, run the command again to continue"), INTERRUPTED
        )
    if isinstance(exc, ConfigError):
        return Failure(_("configuration error: {detail}").format(detail=exc), USAGE)
    if isinstance(exc, UnknownCity):
        return Failure(str(exc), USAGE)
    if isinstance(exc, DomainError):
        return Failure(_("refused: {detail}").format(detail=exc), REFUSED)
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc)
        if "locked" in text:
            return Failure(
                _("the stores in {path} are busy with another civfed process; wait for it to finish").format(
                    path=data_dir
                ),
                REFUSED,
            )
        if data_dir is not None and ("readonly" in text or "unable to open" in text):
            return data_dir_failure(data_dir, exc)
    if isinstance(exc, sqlite3.IntegrityError):
        return Failure(
            _(
                "another civfed process wrote to the stores in {path} at the same time; "
                "run one at a time and try again"
            ).format(path=data_dir),
            REFUSED,
        )
    if isinstance(exc, PermissionError | NotADirectoryError | IsADirectoryError) and data_dir is not None:
        return data_dir_failure(Path(exc.filename) if exc.filename else data_dir, exc)
    if isinstance(exc, PermissionError):
        return Failure(
            _("permission denied: {path}; run as a user who may use it, or choose another path").format(
                path=exc.filename
            ),
            USAGE,
        )
    if type(exc).__module__.startswith("services.privacy"):
        # The key store refusing (a key copied from another store, a rotation half-done):
        # its message names the cause. Raised as it is to a caller in the same process.
        return Failure(_("refused: {detail}").format(detail=exc), REFUSED, expected=False)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return Failure(_("no space left on the device; free some and try again"), REFUSED)
    try:
        import grpc

        if isinstance(exc, grpc.RpcError):
            return Failure(f"{exc.code().name}: {exc.details()}", REFUSED)
    except ImportError:  # pragma: no cover
        pass
    name = type(exc).__name__
    return Failure(
        _("unexpected error ({name}: {detail}); set CIVFED_TRACEBACK=1 to see where it happened").format(
            name=name, detail=exc
        ),
        REFUSED,
        expected=False,
    )


def report(failure: Failure, prog: str = "civfed") -> int:
    print(f"{prog}: {failure}", file=sys.stderr, flush=True)
    return failure.code


def tracebacks_wanted() -> bool:
    return os.environ.get("CIVFED_TRACEBACK", "") not in ("", "0")
