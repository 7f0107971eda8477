"""Group commit: concurrent writers of one process share a transaction.

A submitting thread enqueues its prepared item; whichever thread finds no batch
in flight becomes the leader, takes everything queued, writes it in ONE
transaction and commits, then hands each waiter its own outcome. A thread
returns only once the batch holding its item has committed (or failed), so a
200 still means committed.

Why: a commit is what a durable write waits on (fsync on SQLite, the WAL flush
and, for a transaction that NOTIFYs, PostgreSQL's global commit lock): one
commit per batch instead of one per item. See ``Database.batch_writer``.
POST /task at 16 connections on serve's 2 HTTP processes (``bench.issue10
--submit-only``, before and after back to back, load 3-5): rps 573 → 935
SQLite (with ``fileturn``), 478 → 1318 PostgreSQL, 545 → 918 MariaDB; p99 85 →
30 ms on PostgreSQL, 208 → 39 ms on MariaDB.

Imports nothing from overlord: the store supplies the batch step.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

# The most items one transaction takes; the rest wait for the next batch.
MAX_BATCH = 64


@dataclass
class _Slot(Generic[ItemT, ResultT]):
    item: ItemT
    done: bool = False
    result: ResultT | None = None
    error: BaseException | None = None


class GroupWriter(Generic[ItemT, ResultT]):
    """Combines concurrent ``submit`` calls of one process into batches.

    ``run_batch(items)`` writes the items in one transaction and returns, for
    each item in order, its result or the exception (a domain error such as a
    taken id) that item's caller should see; it raises when the transaction as
    a whole failed. Then each item is written again alone through
    ``run_batch([item])``, so one bad item cannot fail the others, unless
    ``shared(error)`` says the error is the database's, not an item's (busy,
    unreachable): then every item of the batch gets it, without n more tries.
    """

    def __init__(
        self,
        run_batch: Callable[[Sequence[ItemT]], Sequence[ResultT | BaseException]],
        *,
        max_batch: int = MAX_BATCH,
        shared: Callable[[BaseException], bool] = lambda _error: False,
    ) -> None:
        self._run_batch = run_batch
        self._shared = shared
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: list[_Slot[ItemT, ResultT]] = []
        self._leading = False
        # Batches written and items in them: what the tests and a profile read.
        self.batches = 0
        self.items = 0

    def queued(self) -> int:
        """Items waiting for the next batch (not those being written)."""
        with self._lock:
            return len(self._queue)

    def submit(self, item: ItemT) -> ResultT:
        """Write ``item`` (with whatever else is queued) and return its outcome
        once its batch has committed; raise its error otherwise."""
        slot: _Slot[ItemT, ResultT] = _Slot(item)
        with self._lock:
            self._queue.append(slot)
            while not slot.done:
                if self._leading:
                    self._changed.wait()
                    continue
                self._leading = True
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                self._lock.release()
                try:
                    self._write(batch)
                finally:
                    self._lock.acquire()
                    self._leading = False
                    self._changed.notify_all()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _write(self, batch: list[_Slot[ItemT, ResultT]]) -> None:
        """Write ``batch``, giving every slot an outcome whatever happens."""
        try:
            try:
                outcomes = self._run_batch([slot.item for slot in batch])
            except Exception as error:
                if len(batch) == 1 or self._shared(error):
                    outcomes = [error] * len(batch)
                else:
                    outcomes = [self._alone(slot.item) for slot in batch]
            for slot, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    slot.error = outcome
                else:
                    slot.result = outcome
        except BaseException as error:
            for slot in batch:
                if slot.result is None and slot.error is None:
                    slot.error = error
            raise
        finally:
            with self._lock:
                self.batches += 1
                self.items += len(batch)
                for slot in batch:
                    slot.done = True

    def _alone(self, item: ItemT) -> ResultT | BaseException:
        try:
            return self._run_batch([item])[0]
        except Exception as error:
            return error
