"""The Kafka source: `civfed.<city>.events` by manual partition assignment.

No consumer group: offsets live in the read-model store, written in the same
transaction as the read-model change they produced.

A reader process owns the consumer (projections/kafka_reader.py): kafka-python parses and
checks each record batch in Python, so in this process it would take turns with the fold
for the interpreter lock. The reader polls and hands each poll's raw records over a pipe; a
thread here decodes them (at most `AHEAD` polls ahead) while the caller's thread applies
the current batch. Each poll also says how many records the broker held past it (by the
high-water marks of the last fetches): while they would fill the batch (max_poll_records),
the batch waits for the next polls, a bounded while. A catch-up so applies full batches and
writes each wallet's and cell's rows once per batch rather than once per poll; near the
head of the topic a poll is applied at once. The offsets the reader
has reached are never stored: each applied batch stores its own, in its transaction. A
batch that fails to apply stops the reader; the next poll drops what was read ahead and
starts a reader at the offsets stored, so nothing is skipped or applied twice. A reader
that dies (killed, or stopped on an error) is an error of the next poll, with its message,
and the poll after it starts a new one the same way. The reader exits when its pipe from
here closes: when the source is closed, or this process dies. `process=False` keeps the
consumer in a thread of this process instead.
"""

from __future__ import annotations

import contextlib
import pickle
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from kafka import KafkaConsumer, TopicPartition

from projections.integration import decode, topic_for
from projections.kafka_reader import (
    CHUNK,
    COMMAND,
    FETCH,
    OffsetBeyondLog,
    ReaderFailed,
    assign,
    open_consumer,
    polls,
    receive,
    widen,
)
from projections.projector import Delivery, Projector

__all__ = ["AHEAD", "FETCH", "KafkaSource", "OffsetBeyondLog", "ReaderFailed", "topic_ends"]

# Records read ahead of the batch being applied, in polls of up to CHUNK records.
AHEAD = 2 * FETCH["max_poll_records"] // CHUNK
# How long a reader process may take to exit once its pipe is closed.
EXIT_S = 10.0


@dataclass
class _Polled:
    """One poll's records, decoded and grouped by topic."""

    seen: int = 0
    by_topic: dict[str, list[Delivery]] = field(default_factory=dict)
    at_end: bool = False  # nothing came, and every partition was read to its end
    behind: int = 0  # records the broker had past this poll: the next polls bring them at once
    error: BaseException | None = None

    def join(self, later: _Polled) -> _Polled:
        """This poll and the one after it, as one."""
        for topic, deliveries in later.by_topic.items():
            self.by_topic.setdefault(topic, []).extend(deliveries)
        self.seen += later.seen
        self.at_end = later.at_end
        self.behind = later.behind
        return self


class KafkaSource:
    def __init__(
        self,
        client: Mapping[str, Any] | str,
        cities: Sequence[str],
        projector: Projector,
        process: bool = True,
    ) -> None:
        """`client` holds the Kafka client settings (address, TLS, SASL) that whoever builds
        the source resolved, or a plain bootstrap address. `process=False`: the consumer
        lives in a thread of this process rather than in a reader process."""
        self.projector = projector
        self.topics = [topic_for(c) for c in cities]
        self.applied = 0
        self.client = {"bootstrap_servers": client} if isinstance(client, str) else dict(client)
        self.process = process
        self._ahead: queue.Queue[_Polled] = queue.Queue(maxsize=AHEAD)
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._consumer: Any = None
        self._reseek = False  # a batch failed: what was read ahead must be read again
        self._pending: _Polled | None = None  # taken from the queue, for the next batch
        self._at_end_seen = False
        self._start_reader()  # an offset beyond a topic's log stops here

    @property
    def reader_pid(self) -> int | None:
        """The reader process's id while one runs (none with `process=False`)."""
        return self._child.pid if self._child is not None else None

    def _stored(self) -> dict[str, dict[int, int]]:
        """topic -> partition -> the offset the read models stored (partitions below 0 mark)."""
        positions = {t: self.projector.positions(t) for t in self.topics}
        return {t: {p: position for p, (position, _) in parts.items()} for t, parts in positions.items()}

    def _start_reader(self) -> None:
        stored = self._stored()
        messages: Callable[[], tuple[Any, ...]]
        if self.process:
            # A session of its own: a terminal's Ctrl-C reaches the projector alone, which then
            # closes the source (and so the reader) in order.
            pipe = subprocess.PIPE
            child = subprocess.Popen(COMMAND, stdin=pipe, stdout=pipe, start_new_session=True)
            self._child = child
            try:
                assert child.stdin is not None and child.stdout is not None
                widen(child.stdout.fileno())
                child.stdin.write(pickle.dumps({"client": self.client, "stored": stored}))
                child.stdin.flush()
                messages = _receiver(child, child.stdout)
                ready = messages()
                if ready[0] == "error":
                    raise ready[1]
            except BaseException:
                self._end_child()
                raise
        else:
            consumer = self._consumer = open_consumer(self.client)
            try:
                assign(consumer, stored)
            except BaseException:
                self._consumer = None
                consumer.close()
                raise
            messages = polls(consumer).__next__
        self._stop.clear()
        self._reader = threading.Thread(target=self._read, args=(messages,), name="kafka-reader", daemon=True)
        self._reader.start()

    def poll_once(self, timeout_ms: int = 500) -> int:
        """Apply what was polled, one transaction per topic; returns records seen. What
        is already waiting joins the batch, up to the consumer's max_poll_records."""
        if self._reseek:
            self._stop_reader()
            self._start_reader()  # back to the stored offsets
            self._reseek = False
        polled = self._pending
        self._pending = None
        if polled is None:
            try:
                polled = self._ahead.get(timeout=timeout_ms / 1000 + 1.0)
            except queue.Empty:
                self._at_end_seen = False
                return 0
        batch = int(self.client.get("max_poll_records", FETCH["max_poll_records"]))
        # While the broker holds enough to fill the batch, wait for it (a bounded while): a
        # catch-up then applies full batches, and each wallet's or cell's rows are written
        # once per batch rather than once per poll. Near the head of the topic nothing waits:
        # the last records of a catch-up are applied as they come, while the rest is read.
        deadline = time.monotonic() + timeout_ms / 1000
        while polled.error is None and polled.seen < batch:
            try:
                fills = polled.behind >= batch - polled.seen
                wait = deadline - time.monotonic() if fills else 0.0
                more = self._ahead.get(timeout=wait) if wait > 0 else self._ahead.get_nowait()
            except queue.Empty:
                break
            if more.error is not None or polled.seen + more.seen > batch:
                self._pending = more  # the next poll's
                break
            polled = polled.join(more)
        try:
            if polled.error is not None:
                raise polled.error
            for topic, deliveries in polled.by_topic.items():
                self.applied += self.projector.apply_batch(topic, deliveries)
        except BaseException:
            self._reseek = True
            raise
        self._at_end_seen = polled.at_end
        return polled.seen

    def _read(self, messages: Callable[[], tuple[Any, ...]]) -> None:
        """The reader thread: receive, decode, hand over."""
        while not self._stop.is_set():
            polled = _Polled()
            try:
                message = messages()
                if message[0] == "error":
                    raise message[1]
                _, records, polled.at_end, polled.behind = message
                for topic, part, offsets, values in records:
                    deliveries = polled.by_topic.setdefault(topic, [])
                    for offset, value in zip(offsets, values, strict=True):
                        event = decode(value)
                        deliveries.append(Delivery(part, offset + 1, event, event.notification_id))
                    polled.seen += len(offsets)
            except BaseException as exc:
                polled.error = exc
            while not self._stop.is_set():
                with contextlib.suppress(queue.Full):
                    self._ahead.put(polled, timeout=0.1)
                    break
            if polled.error is not None:
                return

    def _stop_reader(self) -> None:
        self._stop.set()
        self._end_child()  # its pipe ends: a thread waiting on it wakes
        if self._reader is not None:
            self._reader.join()
            self._reader = None
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        self._pending = None
        while True:
            try:
                self._ahead.get_nowait()
            except queue.Empty:
                break

    def _end_child(self) -> None:
        """Close the reader process's pipe and wait for it to exit (killed if it does not)."""
        child, self._child = self._child, None
        if child is None:
            return
        assert child.stdin is not None
        with contextlib.suppress(OSError):
            child.stdin.close()
        try:
            child.wait(timeout=EXIT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    def catch_up(self, idle_polls: int = 2) -> int:
        """Poll until `idle_polls` polls in a row bring nothing; returns events applied."""
        before, idle = self.applied, 0
        while idle < idle_polls:
            idle = idle + 1 if self.poll_once() == 0 and self._at_end_seen else 0
        return self.applied - before

    def follow(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.poll_once()

    def close(self) -> None:
        self._stop_reader()


def _receiver(child: subprocess.Popen[bytes], out: IO[bytes]) -> Callable[[], tuple[Any, ...]]:
    """The next message of a reader process; its end is an error naming how it ended."""

    def next_message() -> tuple[Any, ...]:
        try:
            return receive(out)
        except (EOFError, OSError, ValueError, pickle.UnpicklingError):
            raise ReaderFailed(f"the Kafka reader process ended: {_ended(child)}") from None

    return next_message


def _ended(child: subprocess.Popen[bytes]) -> str:
    try:
        code = child.wait(timeout=EXIT_S)
    except subprocess.TimeoutExpired:
        return "its pipe closed"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def topic_ends(client: Mapping[str, Any] | str, cities: Sequence[str]) -> dict[str, dict[int, int]]:
    """topic -> partition -> the offset the next message will get (none for a missing topic)."""
    settings = {"bootstrap_servers": client} if isinstance(client, str) else dict(client)
    consumer: Any = KafkaConsumer(**settings, group_id=None, enable_auto_commit=False)
    try:
        out: dict[str, dict[int, int]] = {}
        for topic in (topic_for(c) for c in cities):
            parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            ends = consumer.end_offsets(parts) if parts else {}
            out[topic] = {tp.partition: int(offset) for tp, offset in ends.items()}
        return out
    finally:
        consumer.close()
