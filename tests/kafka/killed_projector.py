"""Run by test_failures: project from Kafka, and die by SIGKILL mid-batch."""

from __future__ import annotations

import os
import signal
import sys

from civfed.v1 import events_pb2
from projections.kafka_source import KafkaSource
from projections.projector import Projector, default_models
from projections.store import Store, Tx


class DieAfter:
    """A read model that kills its own process after `n` events, inside the transaction."""

    name = "die-after"
    ddl: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()

    def __init__(self, n: int) -> None:
        self.left = n

    def apply(self, tx: Tx, event: events_pb2.Event) -> None:
        self.left -= 1
        if self.left == 0:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    bootstrap, url, schema, n = sys.argv[1:5]
    projector = Projector(Store(url, schema), [*default_models(), DieAfter(int(n))])
    source = KafkaSource(bootstrap, ["bologna"], projector)
    print(source.reader_pid, flush=True)  # the test checks that it ends with this process
    source.catch_up()
    sys.exit("the projection was expected to be killed before the end of its first batch")
