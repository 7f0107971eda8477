"""Read coalescing: concurrent point reads of one process share one query.

``GET /task/{id}/status`` is what every client polls (Airflow's DruidHook every few
seconds per running task). Under load most of a status read is its round trip to
the database, not SQL work: the query waits on the server while the request's
thread holds a pooled connection. A ``ReadCoalescer`` gathers the keys that
threads of this process ask for while a query is in flight, and reads them all
with the next one (``SELECT … WHERE task_id IN (…)``).

Freshness: only keys queued BEFORE a query starts ride on it, so every read sees a
snapshot taken after it was asked, exactly as its own query would have: a status
asked after a shutdown's 200 shows FAILED. Nothing is kept after a query's
waiters have their rows: there is no cache.

Imports only the standard library and ``overlord.db`` (the registry's key, and
the connection each coalescer keeps).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from overlord.db import Database, HeldConnection

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Batch(Generic[K, V]):
    """Keys read by one query, and what it found (or the error it raised)."""

    __slots__ = ("done", "error", "keys", "rows")

    def __init__(self) -> None:
        self.keys: dict[K, None] = {}  # insertion-ordered set
        self.done = False
        self.rows: Mapping[K, V] = {}
        self.error: BaseException | None = None


class ReadCoalescer(Generic[K, V]):
    """Point reads by key, run by ``fetch`` for every key queued at once.

    ``fetch(keys)`` returns the rows found, by key (absent keys: no entry). A
    thread that finds no query in flight runs one for every key queued so far
    (its own included) and hands the rows, or the error, to each waiter; a thread
    that finds one in flight queues its key for the next query and waits.
    """

    def __init__(self, fetch: Callable[[Sequence[K]], Mapping[K, V]]) -> None:
        self._fetch = fetch
        self._turn = threading.Condition(threading.Lock())
        self._queued: _Batch[K, V] | None = None  # the next query's keys
        self._running = False  # a query is in flight

    def get(self, key: K) -> V | None:
        """The row of ``key`` as a query started after this call reads it.

        Raises:
            whatever ``fetch`` raised for the batch this key rode on.
        """
        with self._turn:
            batch = self._queued
            if batch is None:
                batch = self._queued = _Batch()
            batch.keys[key] = None
            while self._running and not batch.done:
                self._turn.wait()
            if batch.done:
                if batch.error is not None:
                    raise batch.error
                return batch.rows.get(key)
            # No query in flight and ours not run: ours is the queued batch.
            # Lead it; keys queued from now on wait for the next query.
            self._running = True
            self._queued = None
        try:
            batch.rows = self._fetch(list(batch.keys))
        except BaseException as error:
            batch.error = error
            raise
        finally:
            with self._turn:
                batch.done = True
                self._running = False
                # The waiters of this batch return; one of the next batch's leads.
                self._turn.notify_all()
        return batch.rows.get(key)


_COALESCERS: weakref.WeakKeyDictionary[Database, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)
_REGISTRY_LOCK = threading.Lock()


def _alive(ref: weakref.ref[HeldConnection]) -> HeldConnection:
    reader = ref()
    assert reader is not None  # its database holds it; a caller holds that
    return reader


def coalescer(
    database: Database,
    name: str,
    fetch: Callable[[HeldConnection, Sequence[K]], Mapping[K, V]],
) -> ReadCoalescer[K, V]:
    """The process's ``ReadCoalescer`` called ``name`` for ``database`` (made on
    first use, after any fork: its lock belongs to this process). Its reads run
    one at a time, so they keep one connection (``Database.held_connection``)."""
    found = _COALESCERS.get(database)
    if found is not None and name in found:
        return found[name]  # type: ignore[no-any-return]
    with _REGISTRY_LOCK:
        named = _COALESCERS.setdefault(database, {})
        if name not in named:
            # A weak reference: the registry's values must not keep its key (the
            # database, which the reader holds) alive.
            ref = weakref.ref(database.held_connection())
            named[name] = ReadCoalescer(lambda keys: fetch(_alive(ref), keys))
        return named[name]  # type: ignore[no-any-return]
