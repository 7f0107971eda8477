"""``noop``: sleeps ``runTime`` ms and succeeds (Druid's NoopTask, with the older
``isReadyResult`` knob for readiness tests)."""

from __future__ import annotations

import datetime as dt
import uuid

from overlord.errors import InvalidTaskSpec
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

READY_RESULTS = ("YES", "NO", "EXCEPTION")
# NoopTask: runTime 0 or absent means 2500 ms.
DEFAULT_RUN_TIME_MS = 2500


class NoopTaskType(TaskType):
    name = "noop"
    java_class = "org.apache.druid.indexing.common.task.NoopTask"
    # NoopTask reports the batch default, 50.
    default_priority = PRIORITY_BATCH_INDEX

    def validate(self, payload: JsonObject) -> None:
        for key in ("runTime", "isReadyTime"):
            value = payload.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int)
            ):
                raise InvalidTaskSpec(
                    f"Cannot deserialize value of type `long` from "
                    f"{_json_kind(value)}: not a valid `long` value ({key})"
                )
        ready = payload.get("isReadyResult")
        if ready is not None and ready not in READY_RESULTS:
            raise InvalidTaskSpec(
                f"Cannot deserialize value of type `NoopTask$IsReadyResult` from "
                f"String {_quoted(ready)}: not one of the values accepted for Enum "
                f"class: [{', '.join(READY_RESULTS)}]"
            )

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


def _json_kind(value: object) -> str:
    if isinstance(value, str):
        return f"String {_quoted(value)}"
    if isinstance(value, float):
        return "Floating-point value"
    if isinstance(value, list):
        return "Array value (token `JsonToken.START_ARRAY`)"
    if isinstance(value, dict):
        return "Object value (token `JsonToken.START_OBJECT`)"
    return "value"


def _quoted(value: object) -> str:
    return f'"{value}"'
