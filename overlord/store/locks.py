"""SQL for time-chunk and segment locks (``task_locks``).

Reads hand services ``LockRow`` values, never ORM rows: a lock is a value the
lockbox compares and copies, and a bulk revoke can never leave a stale object.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Select, delete, false, insert, select, update
from sqlalchemy.orm import Session

from overlord.store.models import Cluster, TaskLock


@dataclass(frozen=True)
class LockRow:
    """One task's copy of a lock (Druid's TaskLock; a posse is the group's copies)."""

    task_id: str
    group_id: str
    datasource: str
    granularity: str
    lock_type: str
    start: dt.datetime
    end: dt.datetime
    version: str
    priority: int
    partition_id: int | None
    revoked: bool


_LOCK_COLUMNS = (
    TaskLock.task_id,
    TaskLock.group_id,
    TaskLock.datasource,
    TaskLock.granularity,
    TaskLock.lock_type,
    TaskLock.start,
    TaskLock.end,
    TaskLock.version,
    TaskLock.priority,
    TaskLock.partition_id,
    TaskLock.revoked,
)


def _lock_select() -> Select[Any]:
    statement: Any = select(*_LOCK_COLUMNS)
    return cast(Select[Any], statement)


def _locks(session: Session, statement: Select[Any]) -> list[LockRow]:
    return [
        LockRow(
            task_id=row.task_id,
            group_id=row.group_id,
            datasource=row.datasource,
            granularity=row.granularity,
            lock_type=row.lock_type,
            start=row.start,
            end=row.end,
            version=row.version,
            priority=row.priority,
            partition_id=row.partition_id,
            revoked=bool(row.revoked),
        )
        for row in session.execute(statement.order_by(TaskLock.id))
    ]


def list_unrevoked_locks(session: Session, datasources: Sequence[str]) -> list[LockRow]:
    """Every non-revoked lock of the given datasources, oldest first."""
    if not datasources:
        return []
    return _locks(
        session,
        _lock_select().where(
            TaskLock.datasource.in_(list(datasources)), TaskLock.revoked == false()
        ),
    )


def lock_scheduler(session: Session) -> None:
    """Serialise lock grants across every server and worker: lock the one cluster
    row until the transaction ends (SQLite's BEGIN IMMEDIATE already serialises)."""
    if session.get_bind().dialect.name == "sqlite":
        return
    session.execute(select(Cluster.id).where(Cluster.id == 1).with_for_update())


def overlapping_locks(
    session: Session, datasource: str, start: dt.datetime, end: dt.datetime
) -> list[LockRow]:
    """Every lock (revoked too) of the datasource overlapping [start, end)."""
    return _locks(
        session,
        _lock_select().where(
            TaskLock.datasource == datasource,
            TaskLock.start < end,
            TaskLock.end > start,
        ),
    )


def locks_of_group(session: Session, group_id: str, datasource: str) -> list[LockRow]:
    return _locks(
        session,
        _lock_select().where(
            TaskLock.group_id == group_id, TaskLock.datasource == datasource
        ),
    )


def locks_of_task(session: Session, task_id: str) -> list[LockRow]:
    return _locks(session, _lock_select().where(TaskLock.task_id == task_id))


def insert_lock(session: Session, lock: LockRow, now: dt.datetime) -> LockRow:
    """Store one task's copy of a lock, granted at ``now``."""
    session.connection().execute(
        insert(TaskLock).values(
            task_id=lock.task_id,
            group_id=lock.group_id,
            datasource=lock.datasource,
            granularity=lock.granularity,
            lock_type=lock.lock_type,
            start=lock.start,
            end=lock.end,
            version=lock.version,
            priority=lock.priority,
            partition_id=lock.partition_id,
            revoked=lock.revoked,
            created_at=now,
        )
    )
    return lock


def revoke_posse(
    session: Session,
    *,
    group_id: str,
    datasource: str,
    lock_type: str,
    start: dt.datetime,
    end: dt.datetime,
) -> None:
    """Mark every task's copy of one posse's lock revoked."""
    session.execute(
        update(TaskLock)
        .where(
            TaskLock.group_id == group_id,
            TaskLock.datasource == datasource,
            TaskLock.lock_type == lock_type,
            TaskLock.start == start,
            TaskLock.end == end,
        )
        .values(revoked=True)
        .execution_options(synchronize_session=False)
    )


def delete_task_lock(
    session: Session, task_id: str, start: dt.datetime, end: dt.datetime
) -> None:
    session.execute(
        delete(TaskLock)
        .where(
            TaskLock.task_id == task_id,
            TaskLock.granularity == "timeChunk",
            TaskLock.start == start,
            TaskLock.end == end,
        )
        .execution_options(synchronize_session=False)
    )
