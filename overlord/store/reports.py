"""SQL for task reports and task logs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import cast

from sqlalchemy import Insert, Table, bindparam, func, insert, select
from sqlalchemy.orm import Session

from overlord.store.models import PushedSegmentsReport, TaskLogChunk, TaskReport


def get_report(session: Session, task_id: str) -> str | None:
    return session.scalar(
        select(TaskReport.report).where(TaskReport.task_id == task_id)
    )


def put_report(session: Session, task_id: str, report: str, now: dt.datetime) -> None:
    existing = session.scalars(
        select(TaskReport).where(TaskReport.task_id == task_id)
    ).one_or_none()
    if existing is None:
        session.add(TaskReport(task_id=task_id, report=report, created_at=now))
    else:
        existing.report = report
        existing.created_at = now
    session.flush()


def log_size(session: Session, task_id: str) -> int | None:
    """Bytes logged so far, or None when the task never logged."""
    row = session.execute(
        select(
            func.max(TaskLogChunk.byte_offset + func.length(TaskLogChunk.content)),
            func.count(),
        ).where(TaskLogChunk.task_id == task_id)
    ).one()
    return None if row[1] == 0 else int(row[0] or 0)


def read_log(session: Session, task_id: str, start: int) -> bytes:
    """The log from byte ``start`` to its end."""
    chunks = session.execute(
        select(TaskLogChunk.byte_offset, TaskLogChunk.content)
        .where(
            TaskLogChunk.task_id == task_id,
            TaskLogChunk.byte_offset + func.length(TaskLogChunk.content) > start,
        )
        .order_by(TaskLogChunk.byte_offset)
    )
    parts = []
    for offset, content in chunks:
        parts.append(bytes(content[max(0, start - offset) :]))
    return b"".join(parts)


def append_log(
    session: Session, task_id: str, content: bytes, now: dt.datetime
) -> None:
    """Append bytes to a task's log: one INSERT … SELECT that computes the offset,
    instead of a SELECT then an ORM flush (a worker appends two per task: the
    claim's line, the task's last lines). CPU per append in its own transaction,
    SQLite, warm, in-process: 0.78-0.84 → 0.54-0.58 ms. The statement is built
    once (see ``_APPEND_LOG``)."""
    session.execute(
        _APPEND_LOG, {"log_task": task_id, "log_content": content, "log_now": now}
    )


def append_logs(
    session: Session, contents: Sequence[tuple[str, bytes]], now: dt.datetime
) -> None:
    """``append_log`` for several tasks at once (task id, bytes), as one
    executemany: psycopg sends it pipelined, one round trip for all (a claim
    step's lines, the worker's loop being serial)."""
    if contents:
        session.execute(
            _APPEND_LOG,
            [
                {"log_task": task_id, "log_content": content, "log_now": now}
                for task_id, content in contents
            ],
        )


def _append_log_statement() -> Insert:
    table = cast(Table, TaskLogChunk.__table__)
    chunks = table.c
    offset = func.coalesce(
        func.max(chunks.byte_offset + func.length(chunks.content)), 0
    )
    task_id = bindparam("log_task", type_=chunks.task_id.type)
    return insert(table).from_select(
        ["task_id", "byte_offset", "content", "created_at"],
        select(
            task_id,
            offset,
            bindparam("log_content", type_=chunks.content.type),
            bindparam("log_now", type_=chunks.created_at.type),
        ).where(chunks.task_id == task_id),
    )


# Built once: building it per call (and its cache key) cost more CPU than running
# it (see store.execution's statements of the worker loop).
_APPEND_LOG = _append_log_statement()


def put_pushed_segments_report(
    session: Session,
    *,
    supervisor_task_id: str,
    task_id: str,
    report: str,
    now: dt.datetime,
) -> str:
    """Store a sub-task's PushedSegmentsReport once; the stored text is returned (a
    retried report finds the first one, which the caller compares)."""
    existing = session.scalar(
        select(PushedSegmentsReport.report).where(
            PushedSegmentsReport.task_id == task_id
        )
    )
    if existing is not None:
        return existing
    session.add(
        PushedSegmentsReport(
            supervisor_task_id=supervisor_task_id,
            task_id=task_id,
            report=report,
            created_at=now,
        )
    )
    session.flush()
    return report


def pushed_segments_reports(
    session: Session, supervisor_task_id: str
) -> dict[str, str]:
    """The PushedSegmentsReports of a supervisor's sub-tasks, by sub-task id."""
    rows = session.execute(
        select(PushedSegmentsReport.task_id, PushedSegmentsReport.report)
        .where(PushedSegmentsReport.supervisor_task_id == supervisor_task_id)
        .order_by(PushedSegmentsReport.id)
    )
    return {row.task_id: row.report for row in rows}
