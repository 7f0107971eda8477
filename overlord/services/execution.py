"""Running one task in its own process: the TaskContext handed to the task type's
code, its log and report writes, and the final compare-and-set status write.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from overlord import tasktypes
from overlord.db import Database
from overlord.errors import ActionFailed, DatabaseBusy, TaskNotFound
from overlord.services import subtasks
from overlord.services import tasks as task_service
from overlord.services import workers as worker_service
from overlord.states import TaskState
from overlord.store import execution as execution_store
from overlord.store import reports as report_store
from overlord.store.audit import AuditInfo
from overlord.taskactions import TaskAction
from overlord.tasktypes.base import JsonObject, TaskResult
from overlord.timeutil import format_druid, utcnow

log = logging.getLogger(__name__)

RUN_FAILED = "Failed to run task. See overlord logs for more details."
LOG_FLUSH_SECONDS = 0.5


def log_line(task_id: str, message: str, now: dt.datetime) -> bytes:
    """One line of a task's log, as the task's own lines and the claim's look."""
    return f"{format_druid(now)} INFO [{task_id}] {message}\n".encode()


class ExecutionContext:
    """The TaskContext of a running task (see ``tasktypes.base.TaskContext``)."""

    def __init__(
        self,
        open_database: Callable[[], Database],
        task_id: str,
        payload: JsonObject,
        stop: threading.Event,
        *,
        log_limit: int,
        deep_storage: str,
        perform_action: Callable[[Session, JsonObject, TaskAction, dt.datetime], Any],
    ) -> None:
        self._open_database = open_database
        self.task_id = task_id
        self.payload = payload
        self._stop = stop
        self._buffer: list[bytes] = []
        self._logged = 0
        self._log_limit = log_limit
        self._last_flush = time.monotonic()
        self._deep_storage = deep_storage
        self._perform_action = perform_action

    @functools.cached_property
    def database(self) -> Database:
        """The store, opened on first use: a task that never touches it (noop)
        creates no engine. Noop burst, 4 slots, CPU per task process (forkserver
        and its children, 100 tasks in a row, spare ahead): 19 → 14.5 ms."""
        return self._open_database()

    def close(self) -> None:
        """Close the store's connections, if it was opened."""
        if "database" in self.__dict__:
            self.database.dispose()

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def sleep(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            self._stop.wait(min(remaining, LOG_FLUSH_SECONDS))
            self.flush_logs(force=False)
        return False

    def log(self, message: str) -> None:
        line = log_line(self.task_id, message, utcnow())
        if self._logged + len(line) > self._log_limit:
            return  # the per-task cap: later lines are dropped
        self._logged += len(line)
        self._buffer.append(line)
        self.flush_logs(force=False)

    def flush_logs(self, *, force: bool) -> None:
        if not self._buffer:
            return
        if not force and time.monotonic() - self._last_flush < LOG_FLUSH_SECONDS:
            return
        content = b"".join(self._buffer)
        self._last_flush = time.monotonic()
        try:
            self.database.run(
                lambda session: report_store.append_log(
                    session, self.task_id, content, utcnow()
                ),
                write=True,
            )
        except (DBAPIError, DatabaseBusy) as error:
            if force:
                raise
            # The store is unreachable for now: keep the lines for the next flush.
            log.warning("task log not written yet: %s", error)
            return
        self._buffer.clear()

    def unwritten_log_size(self) -> int:
        return sum(len(line) for line in self._buffer)

    def take_unwritten_log(self) -> bytes:
        """The buffered log lines, for the worker to write with the final status."""
        content = b"".join(self._buffer)
        self._buffer.clear()
        return content

    def write_report(self, report: JsonObject) -> None:
        text = json.dumps(report, separators=(",", ":"), ensure_ascii=False)
        self.database.run(
            lambda session: report_store.put_report(
                session, self.task_id, text, utcnow()
            ),
            write=True,
        )

    def action(self, action: TaskAction) -> Any:
        return self.database.run(
            lambda session: self._perform_action(
                session, self.payload, action, utcnow()
            ),
            write=True,
        )

    def deep_storage_dir(self) -> str:
        return self._deep_storage

    # -- the Overlord's task API and the supervisor's part, through the store ----

    def _write(self, step: Callable[[Session], Any]) -> Any:
        return self.database.run(step, write=True)

    def submit_task(self, task: JsonObject) -> str:
        def step(session: Session) -> Any:
            if task.get("supervisorTaskId") == self.task_id:
                # A sub-task of this running task: the row lock makes a shutdown
                # of this supervisor (which ends its sub-tasks in its own
                # transaction) come wholly before or after, so no sub-task is
                # left behind a stopped supervisor. ActionFailed when stopped.
                subtasks.supervisor_identity(session, task)
            # Druid's OverlordClient.runTask from inside a task: no user to audit.
            return task_service.submit_task(
                session, task, now=utcnow(), audit=AuditInfo(author=self.task_id)
            )

        submission = self._write(step)
        return str(submission.task_id)

    def task_statuses(self, task_ids: list[str]) -> dict[str, TaskResult]:
        statuses = self.database.run(
            lambda session: task_service.get_task_statuses(session, task_ids)
        )
        return {
            task_id: TaskResult(status.status, status.error_msg)
            for task_id, status in statuses.items()
        }

    def shutdown_task(self, task_id: str) -> None:
        def step(session: Session) -> None:
            try:
                task_service.shutdown_task(
                    session,
                    task_id,
                    now=utcnow(),
                    audit=AuditInfo(author=self.task_id),
                )
            except TaskNotFound:
                return

        self._write(step)

    def task_slots(self) -> int:
        capacity = self.database.run(worker_service.total_worker_capacity)
        return int(capacity["currentClusterCapacity"])

    def allocate_from_supervisor(self, request: JsonObject) -> JsonObject | None:
        result: JsonObject | None = self._write(
            lambda session: subtasks.allocate_for_supervisor(
                session, self.payload, request, utcnow()
            )
        )
        return result

    def report_to_supervisor(self, report: JsonObject) -> None:
        self._write(
            lambda session: subtasks.record_pushed_segments(
                session, self.payload, report, utcnow()
            )
        )

    def task_reports(self, task_ids: list[str]) -> dict[str, JsonObject]:
        texts = self.database.run(
            lambda session: {
                task_id: report_store.get_report(session, task_id)
                for task_id in task_ids
            }
        )
        return {task_id: json.loads(text) for task_id, text in texts.items() if text}

    def sub_task_reports(self) -> dict[str, JsonObject]:
        reports: dict[str, JsonObject] = self.database.run(
            lambda session: subtasks.pushed_segments_reports(session, self.task_id)
        )
        return reports


def run_task_code(context: ExecutionContext, task_type_name: str) -> TaskResult:
    """Run the type's code; an exception is a FAILED status with its message."""
    task_type = tasktypes.lookup(task_type_name)
    if task_type is None:
        return TaskResult(TaskState.FAILED, f"Unknown task type [{task_type_name}]")
    try:
        return task_type.run(context)
    except ActionFailed as error:
        context.log(f"Task action failed: {error}")
        return TaskResult(TaskState.FAILED, str(error))
    except Exception as error:
        context.log("Task failed:\n" + traceback.format_exc())
        message = f"{type(error).__name__}: {error}"
        # The traceback is in the task's log; the process log says that it failed.
        log.warning("task %s failed: %s", context.task_id, message)
        return TaskResult(TaskState.FAILED, message)


@dataclass(frozen=True)
class ReportedEnd:
    """A task whose process sent its result: what the worker writes for it."""

    task_id: str
    result: TaskResult
    log: bytes
    started: dt.datetime | None


def finish_reported_tasks(
    session: Session,
    reports: Sequence[ReportedEnd],
    *,
    worker_id: str,
    now: dt.datetime,
) -> list[str]:
    """What a worker writes for tasks whose processes sent their results: the
    log lines they had not written yet (one pipelined executemany for all), then
    each final status (``finish_task``, without the worker's completion time:
    ``touch_worker_completion`` once per transaction). Returns the ids whose
    final status this wrote (a shutdown or the lease duty may have come first)."""
    report_store.append_logs(
        session, [(end.task_id, end.log) for end in reports if end.log], now
    )
    return [
        end.task_id
        for end in reports
        if finish_task(
            session,
            task_id=end.task_id,
            worker_id=worker_id,
            result=end.result,
            started=end.started,
            now=now,
            touch_worker=False,
        )
    ]


def finish_task(
    session: Session,
    *,
    task_id: str,
    worker_id: str,
    result: TaskResult,
    started: dt.datetime | None,
    now: dt.datetime,
    touch_worker: bool = True,
) -> bool:
    """Write the final status if the task is still active and this worker's: a
    shutdown or the lease duty that came first wins. Its locks and pending segments
    are released with it (``store.execution.end_task``)."""
    duration = int((now - started) // dt.timedelta(milliseconds=1)) if started else 0
    finished = execution_store.end_task(
        session,
        task_id,
        status=result.status,
        error_msg=result.error_msg,
        now=now,
        worker_id=worker_id,
        duration_ms=max(duration, 0),
    )
    if finished and touch_worker:
        execution_store.touch_worker_completion(session, worker_id, now)
    return finished
