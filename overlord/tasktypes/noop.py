"""``noop``: sleeps ``runTime`` ms and succeeds (Druid's NoopTask, with the older
``isReadyResult`` knob for readiness tests)."""

from __future__ import annotations

import datetime as dt
import uuid

from overlord.states import TaskState
from overlord.tasktypes.base import (
    PRIORITY_BATCH_INDEX,
    SUCCESS,
    JsonObject,
    NotReady,
    TaskContext,
    TaskResult,
    TaskType,
)
from overlord.timeutil import format_druid

# NoopTask: runTime 0 or absent means 2500 ms.
DEFAULT_RUN_TIME_MS = 2500


class NoopTaskType(TaskType):
    name = "noop"
    java_class = "org.apache.druid.indexing.common.task.NoopTask"
    # NoopTask reports the batch default, 50.
    default_priority = PRIORITY_BATCH_INDEX

    def datasource(self, payload: JsonObject) -> str:
        value = payload.get("dataSource")
        return value if isinstance(value, str) and value else "none"

    def make_id(self, payload: JsonObject, now: dt.datetime) -> str:
        # NoopTask's own rule, not AbstractTask's.
        return f"noop_{format_druid(now)}_{uuid.uuid4()}"

    def is_ready(self, payload: JsonObject) -> bool:
        result = payload.get("isReadyResult", "YES")
        if result == "EXCEPTION":
            raise NotReady("Not ready. Never will be ready. Go away!")
        return bool(result != "NO")

    def run(self, context: TaskContext) -> TaskResult:
        run_time = context.payload.get("runTime") or DEFAULT_RUN_TIME_MS
        context.log(f"Running noop task[{context.task_id}] for [{run_time}] ms")
        if not context.sleep(run_time / 1000):
            context.log("Noop task was asked to stop")
            return TaskResult(TaskState.FAILED, "Task was stopped before it finished.")
        return SUCCESS
