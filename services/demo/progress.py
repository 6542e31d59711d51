"""Progress on stderr for the demo's long phases, so stdout stays clean for --json.

On a terminal each phase is a `rich` progress bar (or a spinner when its length is not known);
elsewhere (a log, a pipe) each phase ends with one plain line saying how long it took."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

Step = Callable[[int], None]


class Phases:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    @contextmanager
    def phase(self, label: str, total: int | None = None, unit: str = "") -> Iterator[Step]:
        """A phase of `total` steps (None: unknown); yields the function that advances it."""
        start = time.monotonic()
        if not self.console.is_terminal:
            yield lambda n: None
            self.console.print(f"{label}: {time.monotonic() - start:.1f} s", highlight=False, soft_wrap=True)
            return
        columns = [SpinnerColumn(), TextColumn("{task.description:<28}")]
        if total is not None:
            columns += [BarColumn(), MofNCompleteColumn(), TextColumn(unit)]
        with Progress(*columns, TimeElapsedColumn(), console=self.console) as progress:
            task = progress.add_task(label, total=total)

            def step(n: int) -> None:
                progress.advance(task, n)

            yield step
            if total is not None:
                progress.update(task, completed=total)
