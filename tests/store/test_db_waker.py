"""``Database.waker()``: what a waiting worker wakes on, on each backend."""

from __future__ import annotations

import os
import threading
import time

from overlord.db import Database
from overlord.store.execution import NOTIFY_CHANNEL, notify_workers
from tests.factories import make_task


def _commit_soon(db: Database) -> threading.Timer:
    """Another connection commits a task (and, on PostgreSQL, its NOTIFY) in 0.2 s."""

    def commit() -> None:
        with db.transaction(write=True) as session:
            make_task(session, task_id="woken")
            notify_workers(session)

    timer = threading.Timer(0.2, commit)
    timer.start()
    return timer


def test_waker_wakes_on_another_connections_commit_where_the_dialect_tells(
    db: Database, backend: str
) -> None:
    waker = db.waker(channel=NOTIFY_CHANNEL)
    try:
        waker.wait(0)  # PostgreSQL: LISTEN is in place from here on
        timer = _commit_soon(db)
        started = time.monotonic()
        waker.wait(3.0)
        waited = time.monotonic() - started
        timer.join()
    finally:
        waker.close()

    if backend == "mariadb":
        assert waited >= 2.9  # no commit signal: the poll interval
    else:
        assert 0.1 <= waited < 2.0  # NOTIFY / PRAGMA data_version


def test_waker_wakes_when_a_watched_descriptor_is_readable(db: Database) -> None:
    waker = db.waker(channel=NOTIFY_CHANNEL)
    reader, writer = os.pipe()
    try:
        os.write(writer, b"x")
        started = time.monotonic()
        waker.wait(5.0, [reader])
        assert time.monotonic() - started < 2.0
    finally:
        waker.close()
        os.close(reader)
        os.close(writer)
