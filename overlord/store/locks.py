"""SQL for time-chunk and segment locks (``task_locks``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, false, select, update
from sqlalchemy.orm import Session

from overlord.store.models import Cluster, TaskLock


def list_unrevoked_locks(
    session: Session, datasources: Sequence[str]
) -> list[TaskLock]:
    """Every non-revoked lock of the given datasources, oldest first."""
    if not datasources:
        return []
    return list(
        session.scalars(
            select(TaskLock)
            .where(
                TaskLock.datasource.in_(list(datasources)),
                TaskLock.revoked == false(),
            )
            .order_by(TaskLock.id)
        )
    )


def lock_scheduler(session: Session) -> None:
    """Serialise lock grants across every server and worker: lock the one cluster
    row until the transaction ends (SQLite's BEGIN IMMEDIATE already serialises)."""
    if session.get_bind().dialect.name == "sqlite":
        return
    session.execute(select(Cluster.id).where(Cluster.id == 1).with_for_update())


def overlapping_locks(
    session: Session, datasource: str, start: dt.datetime, end: dt.datetime
) -> list[TaskLock]:
    """Every lock (revoked too) of the datasource overlapping [start, end)."""
    return list(
        session.scalars(
            select(TaskLock)
            .where(
                TaskLock.datasource == datasource,
                TaskLock.start < end,
                TaskLock.end > start,
            )
            .order_by(TaskLock.id)
        )
    )


def locks_of_group(session: Session, group_id: str, datasource: str) -> list[TaskLock]:
    return list(
        session.scalars(
            select(TaskLock)
            .where(TaskLock.group_id == group_id, TaskLock.datasource == datasource)
            .order_by(TaskLock.id)
        )
    )


def locks_of_task(session: Session, task_id: str) -> list[TaskLock]:
    return list(
        session.scalars(
            select(TaskLock).where(TaskLock.task_id == task_id).order_by(TaskLock.id)
        )
    )


def insert_lock(session: Session, lock: TaskLock) -> TaskLock:
    session.add(lock)
    session.flush()
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
