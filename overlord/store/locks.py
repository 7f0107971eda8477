"""SQL for time-chunk and segment locks (``task_locks``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from overlord.store.models import TaskLock


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
                TaskLock.revoked.is_(False),
            )
            .order_by(TaskLock.id)
        )
    )
