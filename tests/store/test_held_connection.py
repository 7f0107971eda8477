"""``Database.held_connection``: the coalesced status read's own connection, kept
between reads, on every backend."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from sqlalchemy import text

from overlord.db import PING_AFTER_IDLE_SECONDS, Database, HeldConnection
from overlord.store import tasks as task_store
from overlord.store.models import Task
from tests.factories import make_task


def _summary(reader: HeldConnection, task_id: str) -> Any:
    return reader.fetch_one(task_store._SUMMARY_BY_ID, {"task_id": task_id})


def _held_driver(reader: HeldConnection) -> Any:
    connection = reader._connection
    assert connection is not None
    return connection.driver_connection


def _backend_id(db: Database, reader: HeldConnection, backend: str) -> int:
    cursor = _held_driver(reader).cursor()
    cursor.execute(
        "SELECT pg_backend_pid()"
        if backend == "postgresql"
        else "SELECT CONNECTION_ID()"
    )
    (found,) = cursor.fetchone()
    cursor.close()
    return int(found)


def _kill_server_side(db: Database, reader: HeldConnection, backend: str) -> int:
    """End the held connection from the server's side; its server id."""
    victim = _backend_id(db, reader, backend)
    with db.transaction() as session:
        if backend == "postgresql":
            session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
        else:
            session.execute(text(f"KILL {victim}"))
    return victim


def test_each_read_sees_what_committed_before_it_on_one_connection(
    db: Database,
) -> None:
    reader = db.held_connection()
    assert _summary(reader, "polled") is None
    driver = _held_driver(reader)
    with db.transaction(write=True) as session:
        make_task(session, task_id="polled")
    assert _summary(reader, "polled")[1] == "polled"
    with db.transaction(write=True) as session:
        session.get(Task, _summary(reader, "polled")[0]).error_msg = "changed"  # type: ignore[union-attr]
    assert _summary(reader, "polled")[13] == "changed"
    # Still the first connection: kept between reads, never handed back.
    assert _held_driver(reader) is driver
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def _polled(db: Database) -> HeldConnection:
    """A held connection that has read the stored task ``polled``."""
    with db.transaction(write=True) as session:
        make_task(session, task_id="polled")
    reader = db.held_connection()
    assert _summary(reader, "polled")[1] == "polled"
    return reader


def test_a_killed_connection_is_replaced_by_the_next_read(
    db: Database, backend: str
) -> None:
    reader = _polled(db)
    if backend == "sqlite":
        _held_driver(reader).close()  # behind the reader's back
    else:
        victim = _kill_server_side(db, reader, backend)
    # Read right away (no idle ping): the read fails, drops the connection, and
    # the retry reads on a new one.
    reader._used_at = float("inf")
    assert _summary(reader, "polled")[1] == "polled"
    if backend != "sqlite":
        assert _backend_id(db, reader, backend) != victim


def test_an_idle_connection_is_pinged_and_replaced_when_gone(
    db: Database, backend: str
) -> None:
    reader = _polled(db)
    if backend == "sqlite":
        # Embedded: nothing is lost while idle; the same connection reads on.
        driver = _held_driver(reader)
        reader._used_at -= PING_AFTER_IDLE_SECONDS
        assert _summary(reader, "polled")[1] == "polled"
        assert _held_driver(reader) is driver
        return
    victim = _kill_server_side(db, reader, backend)
    reader._used_at -= PING_AFTER_IDLE_SECONDS  # as if idle that long
    assert _summary(reader, "polled")[1] == "polled"
    assert _backend_id(db, reader, backend) != victim


def test_dispose_closes_the_held_connection(db: Database, backend: str) -> None:
    reader = db.held_connection()
    assert _summary(reader, "absent") is None
    driver = _held_driver(reader)
    db.dispose()
    assert reader._connection is None
    if backend == "postgresql":
        assert driver.closed
    elif backend == "sqlite":
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            driver.execute("SELECT 1")
    else:
        assert not driver.open
