"""A submit's write (``store_submission`` through ``Database.write``): the task, its
audit row and the workers' wake-up, in one statement on PostgreSQL, on every
backend."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from overlord.db import Database
from overlord.errors import TaskAlreadyExists
from overlord.services import tasks as task_service
from overlord.store.audit import AuditInfo
from overlord.store.execution import NOTIFY_CHANNEL
from overlord.store.models import AuditEntry, Task
from overlord.timeutil import utcnow
from tests.statements import record_statements


@pytest.fixture
def listener(db: Database, backend: str) -> Iterator[Any]:
    """On PostgreSQL, a driver connection LISTENing on the workers' channel."""
    if backend != "postgresql":
        yield None
        return
    import psycopg

    url = make_url(db.settings.database_url).set(drivername="postgresql")
    connection = psycopg.connect(
        url.render_as_string(hide_password=False), autocommit=True
    )
    connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
    yield connection
    connection.close()


def _notified(listener: Any) -> list[str]:
    return [note.channel for note in listener.notifies(timeout=0.5, stop_after=2)]


def _submit(db: Database, task_id: str) -> task_service.Submission:
    prepared = task_service.prepare_submission(
        {"type": "noop", "id": task_id},
        now=utcnow(),
        audit=AuditInfo(author="alice", ip="10.0.0.1"),
    )
    return db.write(
        lambda connection: task_service.store_submission(connection, prepared),
        one_statement=True,
    )


def _stored(db: Database) -> tuple[list[tuple[str, int]], list[tuple[str, str, str]]]:
    with db.transaction() as session:
        tasks = [(row.task_id, row.id) for row in session.scalars(select(Task))]
        audits = [
            (row.audit_key, row.author or "", json.loads(row.payload)["id"])
            for row in session.scalars(select(AuditEntry))
        ]
    return tasks, audits


def test_submit_write_commits_task_audit_row_and_wakes_workers(
    db: Database, backend: str, listener: Any
) -> None:
    with record_statements(db.engine) as statements:
        submission = _submit(db, "one")

    assert _stored(db) == (
        [("one", submission.surrogate_id)],
        [("none", "alice", "one")],
    )
    if backend == "postgresql":
        # One autocommit statement: no BEGIN, no COMMIT, no second INSERT.
        assert len(statements) == 1
        assert _notified(listener) == [NOTIFY_CHANNEL]


def test_submit_write_of_taken_id_writes_nothing_and_wakes_no_one(
    db: Database, backend: str, listener: Any
) -> None:
    first = _submit(db, "dup")
    if listener is not None:
        assert _notified(listener) == [NOTIFY_CHANNEL]

    with pytest.raises(TaskAlreadyExists):
        _submit(db, "dup")

    assert _stored(db) == ([("dup", first.surrogate_id)], [("none", "alice", "dup")])
    if listener is not None:
        assert _notified(listener) == []


def test_pool_check_in_rolls_back_only_an_open_transaction(
    db: Database, backend: str
) -> None:
    """Returned mid-transaction, a connection is rolled back (the row is gone and
    its locks with it); on MariaDB, returned after COMMIT it gets no ROLLBACK."""
    mark = "?" if db.engine.dialect.paramstyle == "qmark" else "%s"

    def rollbacks(connection: Any) -> int:
        if backend != "mariadb":
            return 0  # psycopg and pysqlite send nothing when no transaction is open
        cursor = connection.cursor()
        cursor.execute("SHOW SESSION STATUS LIKE 'Com_rollback'")
        (_, value) = cursor.fetchone()
        cursor.close()
        connection.commit()
        return int(value)

    raw = db.engine.raw_connection()
    before = rollbacks(raw)
    cursor = raw.cursor()
    if backend == "sqlite":
        cursor.execute("BEGIN")  # pysqlite runs in autocommit here (db.py)
    insert = (
        "INSERT INTO audit_log (audit_key, type, created_date, payload)"
        " VALUES ('k', 'open', ?, '{}')"
    ).replace("?", mark)
    cursor.execute(
        insert,
        (dt.datetime(2026, 1, 1),),  # noqa: DTZ001 - stored naive UTC
    )
    cursor.close()
    raw.close()  # back to the pool with the INSERT uncommitted

    raw = db.engine.raw_connection()
    cursor = raw.cursor()
    cursor.execute("SELECT COUNT(*) FROM audit_log")
    assert tuple(cursor.fetchone()) == (0,)
    cursor.close()
    raw.commit()
    after_open = rollbacks(raw)
    if backend == "mariadb":
        assert after_open > before
    raw.close()  # committed: nothing to roll back

    raw = db.engine.raw_connection()
    assert rollbacks(raw) == after_open
    raw.close()
