"""Values the services hand to the wire layer: Druid's TaskStatusPlus, TaskStatus,
TaskLocation, with every Druid rule already applied."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from overlord.states import (
    ERROR_MSG_LIMIT,
    RunnerState,
    TaskState,
    truncate_error_msg,
)
from overlord.timeutil import EPOCH

if TYPE_CHECKING:
    from overlord.store.tasks import TaskListRow


class TaskLocation(NamedTuple):
    host: str | None
    port: int
    tls_port: int


UNKNOWN_LOCATION = TaskLocation(None, -1, -1)


class TaskStatusPlus(NamedTuple):
    """Druid's TaskStatusPlus (``GET /task/{id}/status``, ``GET /tasks``).

    Named tuples, not frozen dataclasses, as a list makes one per row: 1 µs to
    build instead of 8 (keyword arguments, timeit on the 2-core machine).
    """

    id: str
    group_id: str | None
    type: str | None
    created_time: dt.datetime
    queue_insertion_time: dt.datetime
    status_code: TaskState
    runner_status_code: RunnerState
    duration: int
    location: TaskLocation
    datasource: str | None
    error_msg: str | None


@dataclass(frozen=True)
class TaskStatus:
    """Druid's TaskStatus (``POST /taskStatus``)."""

    id: str
    status: TaskState
    duration: int
    error_msg: str | None
    location: TaskLocation


def location_of(row: Any) -> TaskLocation:
    if row.location_host is None and row.location_port == -1:
        return UNKNOWN_LOCATION
    return TaskLocation(row.location_host, row.location_port, row.location_tls_port)


def status_plus_for_status_endpoint(row: Any) -> TaskStatusPlus:
    """``/task/{id}/status``: queueInsertionTime is always the epoch, and a finished
    task shows runner state WAITING (the runner no longer knows it), as Druid does;
    the web console and Druid's own tests read it that way (issue #6333)."""
    runner = row.runner_status if row.active else RunnerState.WAITING
    return _status_plus(row, runner=runner, queue_time=EPOCH)


def status_plus_for_list(row: Any) -> TaskStatusPlus:
    """``/tasks``: complete rows show NONE; active rows known to the runner (PENDING,
    RUNNING) show their queue insertion time, WAITING rows the epoch."""
    if not row.active:
        return _status_plus(row, runner=RunnerState.NONE, queue_time=EPOCH)
    queue_time = EPOCH
    if row.runner_status is not RunnerState.WAITING and row.queue_inserted_at:
        queue_time = row.queue_inserted_at
    return _status_plus(row, runner=row.runner_status, queue_time=queue_time)


def statuses_for_list(rows: Iterable[TaskListRow]) -> list[TaskStatusPlus]:
    """``status_plus_for_list`` of every row, in one loop over the unpacked rows:
    the same values (a unit test compares the two) without four calls and twenty
    attribute reads per row (100 rows: 0.11 → 0.04 ms of CPU, timeit-style in process, SQLite)."""
    statuses: list[TaskStatusPlus] = []
    append = statuses.append
    new = tuple.__new__
    none, waiting = RunnerState.NONE, RunnerState.WAITING
    for (
        task_id,
        group_id,
        type_,
        created,
        queued,
        status,
        runner,
        duration,
        host,
        port,
        tls_port,
        datasource,
        error,
        active,
    ) in rows:
        if not active:
            runner, queue_time = none, EPOCH
        elif runner is waiting or not queued:
            queue_time = EPOCH
        else:
            queue_time = queued
        location = (
            UNKNOWN_LOCATION
            if host is None and port == -1
            else new(TaskLocation, (host, port, tls_port))
        )
        if error is not None and len(error) > ERROR_MSG_LIMIT:
            error = truncate_error_msg(error)
        append(
            new(
                TaskStatusPlus,
                (
                    task_id,
                    group_id,
                    type_,
                    created,
                    queue_time,
                    status,
                    runner,
                    duration,
                    location,
                    datasource,
                    error,
                ),
            )
        )
    return statuses


def _status_plus(
    row: Any, *, runner: RunnerState, queue_time: dt.datetime
) -> TaskStatusPlus:
    # Positional: a list builds one per row (TaskStatusPlus's field order).
    return TaskStatusPlus(
        row.task_id,
        row.group_id,
        row.type,
        row.created_at,
        queue_time,
        row.status,
        runner,
        row.duration_ms,
        location_of(row),
        row.datasource,
        truncate_error_msg(row.error_msg),
    )


def task_status(row: Any) -> TaskStatus:
    """``POST /taskStatus``: an active task is RUNNING while the runner has it."""
    return TaskStatus(
        id=row.task_id,
        status=TaskState.RUNNING if row.active else row.status,
        duration=row.duration_ms,
        error_msg=truncate_error_msg(row.error_msg),
        location=location_of(row),
    )
