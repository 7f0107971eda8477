"""``Database.fetch_one``: the status poll's read on a raw pooled connection."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, select, text

from overlord.config import Settings
from overlord.db import Database
from overlord.store import tasks as task_store
from overlord.store.models import Task
from tests.factories import make_task


@pytest.fixture
def one_connection(settings: Settings) -> Database:
    """A pool of one connection: every read and write shares it."""
    return Database(dataclasses.replace(settings, db_pool_size=1), max_overflow=0)


def test_reads_what_the_core_read_reads(db: Database) -> None:
    with db.transaction(write=True) as session:
        make_task(session, task_id="polled", error_msg="boom ✓")
    with db.transaction() as session:
        core = task_store.get_task_summary(session, "polled")
    assert tuple(task_store.read_task_summary(db, "polled") or ()) == tuple(core)
    assert task_store.read_task_summary(db, "absent") is None


def test_the_connection_goes_back_to_the_pool_transactional(
    one_connection: Database,
) -> None:
    db = one_connection
    assert task_store.read_task_summary(db, "absent") is None

    # Same connection: a transaction that fails must still roll back whole (a
    # connection left in autocommit would have kept the first insert).
    def fail_after_insert() -> None:
        with db.transaction(write=True) as session:
            make_task(session, task_id="rolled-back")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail_after_insert()
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Task)) == 0
    db.dispose()


def test_a_connection_killed_under_the_pool_is_replaced(
    one_connection: Database, backend: str
) -> None:
    db = one_connection
    with db.transaction(write=True) as session:
        make_task(session, task_id="polled")
        if backend == "sqlite":
            driver = session.connection().connection.driver_connection
            pid = None
        else:
            pid = session.scalar(
                text("SELECT pg_backend_pid()")
                if backend == "postgresql"
                else text("SELECT CONNECTION_ID()")
            )
    if pid is None:
        # Embedded: close the pooled connection behind the pool's back.
        driver.close()  # type: ignore[union-attr]
    else:
        killer = Database(db.settings)
        with killer.transaction() as session:
            if backend == "postgresql":
                session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            else:
                session.execute(text(f"KILL {int(pid)}"))
        killer.dispose()
    summary = task_store.read_task_summary(db, "polled")
    assert summary is not None
    assert summary.task_id == "polled"
    db.dispose()
