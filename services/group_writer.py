"""One writer per node, committing concurrent commands together.

Callers queue their command; whoever holds the node's write lock takes every
command waiting and saves them in one transaction (`execute_group`), then hands
each caller its own result or refusal. Under load that turns one store round
trip per command into one per batch, so a queue of redemptions racing for the
same wallet drains in a few saves instead of dozens, and no call waits long
enough for a partner's deadline or a hold to run out. Results are exactly what
`execute` would give: the commands still run one after another, in arrival
order, against aggregates the earlier ones already changed.

`submit` queues a command without waiting for it: it is saved with the next batch,
by whichever caller writes it or by the writer's own thread. Only for a change whose
loss in a crash is recovered without its caller (a saga step the sweep repeats).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from aggregates.errors import DomainError
from services.city import CityApplication
from services.commands import Command
from services.unit_of_work import Job

log = logging.getLogger("civfed.node")


class GroupWriter:
    def __init__(
        self,
        app: CityApplication,
        lock: threading.Lock,
        max_batch: int = 200,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        """`on_batch` is told each batch's size as it is taken (the node's metrics)."""
        self.app = app
        self.lock = lock
        self.max_batch = max_batch
        self.on_batch = on_batch
        self._queue: list[tuple[Job, Future[dict[str, Any]]]] = []
        self._queue_lock = threading.Lock()
        # Commands queued by `submit` and not saved yet; the thread that saves them.
        self._later: set[Future[dict[str, Any]]] = set()
        self._wake = threading.Event()
        self._closing = False
        self._flusher: threading.Thread | None = None
        # Told each time a batch is over, so a caller waits for its own result without
        # taking the write lock only to find it written (one hand-off per caller per batch).
        self._batch_over = threading.Condition()
        self._batches = 0

    def execute(self, cmd: Job | Command) -> dict[str, Any]:
        job = self.app.job(cmd)
        done: Future[dict[str, Any]] = Future()
        with self._queue_lock:
            self._queue.append((job, done))
        self._wait([done])
        return done.result()

    def submit(self, cmd: Job | Command) -> Future[dict[str, Any]]:
        """Queue `cmd` to be saved with the next batch and return at once; a refusal or a
        failure is logged. Lost if the process dies before the batch is saved."""
        job = self.app.job(cmd)
        done: Future[dict[str, Any]] = Future()
        with self._queue_lock:
            if self._closing:
                raise RuntimeError("the writer is closed")
            self._queue.append((job, done))
            self._later.add(done)
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush, name="group-writer", daemon=True)
                self._flusher.start()
        done.add_done_callback(lambda f: self._saved_later(job, f))
        self._wake.set()
        return done

    def _saved_later(self, job: Job, done: Future[dict[str, Any]]) -> None:
        with self._queue_lock:
            self._later.discard(done)
        exc = done.exception()
        if exc is not None:
            log.warning("%s queued without a caller was not saved: %s", job.name, exc)

    def _pending_later(self) -> bool:
        with self._queue_lock:
            return bool(self._later)

    def _later_now(self) -> set[Future[dict[str, Any]]]:
        with self._queue_lock:
            return set(self._later)

    def _wait(self, waiting: list[Future[dict[str, Any]]]) -> None:
        """Until every one of `waiting` has its result: write the next batch whenever the
        write lock is free, else wait for the batch being written to be over."""
        while not all(done.done() for done in waiting):
            with self._batch_over:
                seen = self._batches
            if self.lock.acquire(blocking=False):
                try:
                    if not all(done.done() for done in waiting):  # written meanwhile?
                        self._write_batch()
                finally:
                    self.lock.release()
                    with self._batch_over:
                        self._batches += 1
                        self._batch_over.notify_all()
                continue
            with self._batch_over:
                # The timeout covers a holder of the lock that is not this writer.
                while self._batches == seen and not all(done.done() for done in waiting):
                    self._batch_over.wait(0.05)

    def _flush(self) -> None:
        """Save what `submit` queued, unless a caller's batch takes it first."""
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._pending_later():
                self._wait(list(self._later_now()))
            if self._closing:
                return

    def settle(self) -> None:
        """Wait until everything `submit` queued so far is saved: reads that must see every
        step already answered for (a partner's settlement, a clearing) call this first."""
        self._wait(list(self._later_now()))

    def close(self) -> None:
        """Save everything `submit` queued, then stop the writer's thread."""
        with self._queue_lock:
            self._closing = True
            flusher = self._flusher
        self._wake.set()
        if flusher is not None:
            flusher.join()

    def execute_many(self, cmds: list[Job | Command]) -> list[dict[str, Any] | BaseException]:
        """Many commands from one caller (a source's batch of claims), queued together and
        saved in as few transactions as the batch size allows; each gets its own result or
        refusal, in order, and none blocks another."""
        jobs = [self.app.job(cmd) for cmd in cmds]
        waiting: list[Future[dict[str, Any]]] = [Future() for _ in jobs]
        with self._queue_lock:
            self._queue.extend(zip(jobs, waiting, strict=True))
        self._wait(waiting)
        outcomes: list[dict[str, Any] | BaseException] = []
        for done in waiting:
            exc = done.exception()
            outcomes.append(exc if exc is not None else done.result())
        return outcomes

    def _write_batch(self) -> None:
        with self._queue_lock:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        if not batch:
            return
        if self.on_batch is not None:
            self.on_batch(len(batch))
        try:
            self._run(batch)
        finally:
            # Whatever happened, no caller may wait for a batch that is over.
            for _, done in batch:
                if not done.done():
                    done.set_exception(RuntimeError("the write batch ended without a result"))

    def _run(self, batch: list[tuple[Job, Future[dict[str, Any]]]]) -> None:
        try:
            results: list[dict[str, Any] | DomainError] = self.app.execute_group([c for c, _ in batch])
        except Exception:
            # Something no rule expected: run each on its own, so the failure reaches
            # only the caller whose command caused it (a command the group already
            # saved finds its receipt and replays its stored result).
            log.info("group of %d commands failed; running them one by one", len(batch))
            for cmd, done in batch:
                try:
                    done.set_result(self.app.execute(cmd))
                except Exception as exc:
                    done.set_exception(exc)
            return
        for (_, done), result in zip(batch, results, strict=True):
            if isinstance(result, DomainError):
                done.set_exception(result)
            else:
                done.set_result(result)
