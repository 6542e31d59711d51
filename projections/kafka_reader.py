"""The Kafka reader process: owns the consumer of a Kafka source and hands its polls over.

kafka-python parses and checks every record batch in Python (its CRC32C is pure Python),
which holds the interpreter lock; in a thread of the projecting process it would take
turns with the fold. Started by the Kafka source (COMMAND), this process reads the
settings from its stdin (one pickle: the client settings, the topics and the offsets the
read models stored), assigns and seeks every partition to those offsets with the same
checks as ever, then writes one pickle per poll to its stdout:

    ("ready",)                                   assigned, positions within the logs
    ("records", [(topic, part, offsets, values)], at_end, behind)   one poll
    ("error", exception)                         the reader stopped on it

It stores nothing: the offsets the read models keep are written by the projecting process
with the batch they produced. When its stdin closes (the projecting process closed the
source, or died) it exits at once; a write to a closed stdout ends it too.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import IO, Any, BinaryIO

from kafka import KafkaConsumer, TopicPartition

# Large fetches: a catch-up reads many thousands of events per poll, and each poll is one
# transaction per topic, so fewer, larger batches mean fewer round trips to the store.
FETCH = {
    "max_poll_records": 20_000,
    "max_partition_fetch_bytes": 16 * 1024 * 1024,
    "fetch_max_bytes": 64 * 1024 * 1024,
    "receive_buffer_bytes": 4 * 1024 * 1024,
}

# How long one poll waits for records.
POLL_MS = 500
# Records handed over at a time: the consumer's settings stay FETCH's, but a smaller poll
# hands the first records over sooner (kafka-python checks and parses a fetch as it is
# polled), so applying them overlaps with reading the rest. The projecting process joins
# what is waiting into batches of up to FETCH's max_poll_records.
CHUNK = 4000


class OffsetBeyondLog(RuntimeError):
    """A stored offset past the end of the topic: the topic was reset or replaced."""


class ReaderFailed(RuntimeError):
    """The Kafka reader process stopped on an error that could not be handed over as is."""


def open_consumer(client: Mapping[str, Any]) -> Any:
    return KafkaConsumer(
        **{**FETCH, **client},
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="none",  # never jump silently: an out-of-range offset raises
        consumer_timeout_ms=1000,
    )


def assign(consumer: Any, stored: Mapping[str, Mapping[int, int]]) -> None:
    """Assign every partition of the topics and seek each to its stored offset (`stored`:
    topic -> partition -> offset; partitions below 0 are markers, not partitions)."""
    parts: list[TopicPartition] = []
    for topic, positions in stored.items():
        found = consumer.partitions_for_topic(topic) or set()
        missing = sorted({p for p in positions if p >= 0} - found)
        if missing:
            raise OffsetBeyondLog(
                f"{topic}: partitions {missing} were read before but are gone; the topic was reset "
                "or replaced. Run `civfed projections rebuild` to recompute from the cities' stores."
            )
        parts += [TopicPartition(topic, p) for p in sorted(found)]
    offsets = {tp: stored[tp.topic].get(tp.partition, 0) for tp in parts}
    for tp, offset in offsets.items():
        check_within_log(consumer, tp, offset)
    consumer.assign(parts)
    for tp, offset in offsets.items():
        if offset == 0:
            # Never read: from the oldest message the topic still keeps (retention is finite).
            consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, offset)


def check_within_log(consumer: Any, tp: TopicPartition, position: int) -> None:
    if position == 0:
        return
    start = consumer.beginning_offsets([tp])[tp]
    if position < start:
        # Messages the read models never applied are past the topic's retention.
        raise OffsetBeyondLog(
            f"{tp.topic}[{tp.partition}]: stored offset {position} is older than the oldest "
            f"message the topic keeps ({start}). Run `civfed projections rebuild` to recompute "
            "the read models from the cities' stores."
        )
    end = consumer.end_offsets([tp])[tp]
    if end >= position:
        return
    # Some brokers report the last batch's base offset + 1 as the end, so
    # confirm by fetching the last record the projection says it applied.
    consumer.assign([tp])
    consumer.seek(tp, position - 1)
    records = consumer.poll(timeout_ms=3000).get(tp, [])
    if not any(r.offset == position - 1 for r in records):
        raise OffsetBeyondLog(
            f"{tp.topic}[{tp.partition}]: stored offset {position} is beyond the end of the log "
            f"({end}); the topic was reset or replaced. Run `civfed projections rebuild` to "
            "recompute the read models from the cities' stores."
        )


def at_end(consumer: Any) -> bool:
    """Every assigned partition read to its end."""
    parts = consumer.assignment()
    return all(consumer.position(tp) >= consumer.end_offsets([tp])[tp] for tp in parts)


def behind(consumer: Any) -> int:
    """Records the broker already had past the consumer's position, by the high-water marks
    of the last fetches (no request to the broker): what the next polls bring at once."""
    waiting = 0
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp)
        if highwater is not None:
            waiting += max(0, highwater - consumer.position(tp))
    return waiting


def polls(consumer: Any) -> Iterator[tuple[Any, ...]]:
    """Poll forever: one message per poll."""
    chunk = min(CHUNK, consumer.config["max_poll_records"])
    while True:
        polled: list[tuple[str, int, list[int], list[bytes]]] = []
        seen = 0
        for tp, records in consumer.poll(timeout_ms=POLL_MS, max_records=chunk).items():
            polled.append((tp.topic, tp.partition, [r.offset for r in records], [r.value for r in records]))
            seen += len(records)
        yield ("records", polled, seen == 0 and at_end(consumer), behind(consumer))


def send(out: BinaryIO, message: tuple[Any, ...]) -> None:
    """One message: its length (8 bytes, big-endian), then its pickle."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(len(body).to_bytes(8, "big"))
    out.write(body)
    out.flush()


def receive(stream: IO[bytes]) -> tuple[Any, ...]:
    """The next message `send` wrote; EOFError at the end of the stream. Read whole: a
    thread waiting on the pipe takes the interpreter lock once per read, not per frame."""
    size = int.from_bytes(_exactly(stream, 8), "big")
    message: tuple[Any, ...] = pickle.loads(_exactly(stream, size))
    return message


def _exactly(stream: IO[bytes], size: int) -> bytes | bytearray:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError(f"the stream ended {size - len(data)} bytes short of a message")
    return data


def widen(fd: int) -> None:
    """The largest pipe buffer Linux allows an unprivileged process (1 MiB by default), so a
    poll crosses in few reads; elsewhere, the pipe as it is."""
    with contextlib.suppress(AttributeError, OSError):
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)


def handed_over(exc: BaseException) -> BaseException:
    """The exception itself if it survives the pipe, else one that names it."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return ReaderFailed(f"{type(exc).__name__}: {exc}")
    return exc


def _exit_when_closed(stdin: BinaryIO) -> None:
    """The projecting process closed the source, or died: nothing is left to read for."""
    while stdin.read(65536):
        pass
    os._exit(0)


def main(stdin: BinaryIO, out: BinaryIO) -> None:
    settings: dict[str, Any] = pickle.load(stdin)
    threading.Thread(target=_exit_when_closed, args=(stdin,), name="parent-watch", daemon=True).start()
    try:
        consumer = open_consumer(settings["client"])
        assign(consumer, settings["stored"])
        send(out, ("ready",))
        for message in polls(consumer):
            send(out, message)
    except (BrokenPipeError, KeyboardInterrupt):
        os._exit(0)
    except BaseException as exc:
        with contextlib.suppress(BrokenPipeError):
            send(out, ("error", handed_over(exc)))
        os._exit(1)


def run() -> None:
    """The process's entry: stdin and stdout are the pipes to the projecting process."""
    # The channel is a copy of stdout; whatever a library prints goes to stderr instead.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    widen(channel.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    main(sys.stdin.buffer, channel)


# The command line that starts a reader process. Isolated (-I): neither the working directory
# nor PYTHON* variables choose what it imports, only the directory this code is in.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = (
    sys.executable,
    "-I",
    "-c",
    f"import sys; sys.path.insert(0, {ROOT!r}); from projections.kafka_reader import run; run()",
)
