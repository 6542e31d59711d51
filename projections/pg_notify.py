"""Wake the embedded projection when a PostgreSQL city store commits events.

eventsourcing's PostgreSQL recorder sends `NOTIFY <events table>` in every
insert; a listener on that channel turns "poll every half second" into "read
as soon as something was written". SQLite has no such signal and stays polled.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from projections.integration import CityLog

log = logging.getLogger(__name__)


def listens(app: CityLog) -> bool:
    return isinstance(app.recorder, PostgresApplicationRecorder)


class NotifyListener:
    """One thread per store: LISTEN on its events channel and set `wake` on every notification."""

    def __init__(self, app: CityLog, wake: threading.Event, stop: threading.Event) -> None:
        recorder = app.recorder
        assert isinstance(recorder, PostgresApplicationRecorder)
        self.recorder: Any = recorder
        self.wake = wake
        self.stop = stop
        self.listening = threading.Event()
        self.thread = threading.Thread(
            target=self._listen, name=f"listen-{recorder.channel_name}", daemon=True
        )
        self.thread.start()

    def _listen(self) -> None:
        while not self.stop.is_set():
            try:
                with self.recorder.datastore.get_connection() as conn:
                    conn.execute(SQL("LISTEN {0}").format(Identifier(self.recorder.channel_name)))
                    self.listening.set()
                    self.wake.set()  # anything written before LISTEN took effect is read now
                    while not self.stop.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self.wake.set()
            except Exception as exc:  # a lost connection: listen again, the fallback poll covers the gap
                log.warning("LISTEN on %s lost (%s); listening again", self.recorder.channel_name, exc)
                self.listening.clear()
                self.wake.set()
                self.stop.wait(1)

    def join(self) -> None:
        self.thread.join(timeout=5)
