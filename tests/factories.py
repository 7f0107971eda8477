"""Plain factory functions that write rows straight through the store's models."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from overlord.states import RunnerState, TaskState
from overlord.store.models import (
    PendingSegment,
    Task,
    TaskLock,
    TaskLogChunk,
    TaskReport,
)
from overlord.timeutil import format_druid, utcnow

_sequence = itertools.count()


def make_task(session: Session, **overrides: Any) -> Task:
    """An active WAITING noop task unless overridden; ``created_at`` defaults to now."""
    task = _build_task(**overrides)
    session.add(task)
    session.flush()
    return task


def make_tasks(session: Session, rows: Iterable[dict[str, Any]]) -> list[Task]:
    """One task per dict of overrides, as ``make_task`` builds them, with one flush
    (quick for the hundreds of rows a streaming test needs)."""
    tasks = [_build_task(**overrides) for overrides in rows]
    session.add_all(tasks)
    session.flush()
    return tasks


def _build_task(**overrides: Any) -> Task:
    number = next(_sequence)
    task_id = overrides.pop("task_id", f"task_{number}")
    values: dict[str, Any] = {
        "task_id": task_id,
        "type": "noop",
        "group_id": task_id,
        "datasource": "wiki",
        "created_at": utcnow(),
        "queue_inserted_at": None,
        "status": TaskState.RUNNING,
        "runner_status": RunnerState.WAITING,
        "duration_ms": -1,
        "error_msg": None,
        "location_host": None,
        "location_port": -1,
        "location_tls_port": -1,
        "priority": 50,
        "active": True,
        "parent_task_id": None,
        "request_headers": None,
    }
    values.update(overrides)
    if "payload" not in values:
        values["payload"] = json.dumps(
            {"type": values["type"], "id": task_id, "dataSource": values["datasource"]},
            separators=(",", ":"),
        )
    return Task(**values)


def make_complete_task(session: Session, **overrides: Any) -> Task:
    values: dict[str, Any] = {
        "status": TaskState.SUCCESS,
        "runner_status": RunnerState.NONE,
        "active": False,
        "duration_ms": 1234,
    }
    values.update(overrides)
    return make_task(session, **values)


def make_pending_segment(
    session: Session,
    *,
    datasource: str = "wiki",
    created: dt.datetime,
    start: dt.datetime,
    end: dt.datetime,
    sequence_name: str | None = None,
    task_allocator_id: str | None = None,
) -> PendingSegment:
    number = next(_sequence)
    version = format_druid(created)
    segment_id = (
        f"{datasource}_{format_druid(start)}_{format_druid(end)}_{version}_{number}"
    )
    row = PendingSegment(
        id=segment_id,
        dataSource=datasource,
        created_date=created,
        start=start,
        end=end,
        sequence_name=sequence_name or f"seq_{number}",
        sequence_prev_id="",
        sequence_name_prev_id_sha1=f"{number:040X}",
        upgraded_from_segment_id=None,
        task_allocator_id=task_allocator_id,
        payload="{}",
    )
    session.add(row)
    session.flush()
    return row


def make_lock(session: Session, task: Task, **overrides: Any) -> TaskLock:
    values: dict[str, Any] = {
        "task_id": task.task_id,
        "group_id": task.group_id,
        "datasource": task.datasource,
        "granularity": "timeChunk",
        "lock_type": "EXCLUSIVE",
        "start": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        "end": dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
        "version": "2024-05-06T07:08:09.456Z",
        "priority": task.priority,
        "partition_id": None,
        "revoked": False,
        "created_at": utcnow(),
    }
    values.update(overrides)
    lock = TaskLock(**values)
    session.add(lock)
    session.flush()
    return lock


def make_report(session: Session, task: Task, report: str) -> TaskReport:
    """A stored report document, kept as the exact text given."""
    row = TaskReport(task_id=task.task_id, report=report, created_at=utcnow())
    session.add(row)
    session.flush()
    return row


def make_log_chunk(
    session: Session, task: Task, content: bytes, *, byte_offset: int
) -> TaskLogChunk:
    """One chunk of a task's log, starting at ``byte_offset`` of the whole log."""
    row = TaskLogChunk(
        task_id=task.task_id,
        byte_offset=byte_offset,
        content=content,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row
