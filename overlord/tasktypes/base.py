"""What a Druid task type is to overlord: id format, datasource, group, priority.

Task types import neither the store, the database layer, SQLAlchemy nor flask; they
reach stored state only through the task actions of the context the runtime gives
them (a later issue).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from overlord.errors import InvalidTaskSpec
from overlord.jackson import JAVA_INT_MAX, JAVA_INT_MIN
from overlord.segments import LockType
from overlord.states import TaskState
from overlord.taskactions import TaskAction
from overlord.timeutil import Interval, format_druid

JsonObject = dict[str, Any]

# Druid's Tasks.java default priorities.
PRIORITY_REALTIME = 75
PRIORITY_BATCH_INDEX = 50
PRIORITY_MERGE = 25
PRIORITY_DEFAULT = 0


def random_letters(count: int = 8) -> str:
    """Druid's IdUtils random suffix: letters ``a`` to ``p``."""
    return "".join(random.choice("abcdefghijklmnop") for _ in range(count))


@dataclass(frozen=True)
class TaskResult:
    """What a task's code returns: Druid's final TaskStatus."""

    status: TaskState
    error_msg: str | None = None


SUCCESS = TaskResult(TaskState.SUCCESS)


@dataclass(frozen=True)
class LockNeed:
    """A time-chunk lock a task must hold before it may run (Druid's isReady)."""

    interval: Interval
    lock_type: LockType = LockType.EXCLUSIVE


class NotReady(Exception):
    """``isReady`` threw: the task fails with Druid's readiness message."""


class TaskContext(Protocol):
    """What the runtime hands a task's code: its identity, a stop signal, logging,
    reports and task actions (the same service code as ``POST /action``)."""

    task_id: str
    payload: JsonObject

    def should_stop(self) -> bool: ...

    def sleep(self, seconds: float) -> bool:
        """Sleep unless stopped; False when the task was asked to stop."""
        ...

    def log(self, message: str) -> None: ...

    def write_report(self, report: JsonObject) -> None: ...

    def action(self, action: TaskAction) -> Any:
        """Perform a task action; its ``result`` as JSON."""
        ...

    def deep_storage_dir(self) -> str: ...

    # What Druid's tasks reach over HTTP: the Overlord's task API (a supervisor's
    # TaskMonitor submits, polls and kills its sub-tasks through it) and the
    # supervisor's chat handler (its sub-tasks allocate segments and report the
    # segments they pushed). Here all of them go through the store.

    def submit_task(self, task: JsonObject) -> str:
        """Submit a task as ``POST /task`` does; its id."""
        ...

    def task_statuses(self, task_ids: list[str]) -> dict[str, TaskResult]:
        """``POST /taskStatus``: the status of each id that exists."""
        ...

    def shutdown_task(self, task_id: str) -> None:
        """``POST /task/{id}/shutdown`` (nothing when it already finished)."""
        ...

    def task_slots(self) -> int:
        """Task slots of the live workers (``/totalWorkerCapacity``)."""
        ...

    def allocate_from_supervisor(self, request: JsonObject) -> JsonObject | None:
        """A sub-task's segment id from its supervisor (overwrite mode)."""
        ...

    def report_to_supervisor(self, report: JsonObject) -> None:
        """A sub-task's PushedSegmentsReport to its supervisor."""
        ...

    def sub_task_reports(self) -> dict[str, JsonObject]:
        """A supervisor's reports from its sub-tasks, by sub-task id."""
        ...

    def task_reports(self, task_ids: list[str]) -> dict[str, JsonObject]:
        """``GET /task/{id}/reports`` of each id that has one (a running task's
        live report)."""
        ...


def lock_type_from_context(payload: JsonObject) -> LockType:
    """``taskLockType``, else ``useSharedLock``, else EXCLUSIVE (spec §5.4)."""
    context = payload.get("context")
    if isinstance(context, dict):
        explicit = context.get("taskLockType")
        if isinstance(explicit, str) and explicit.upper() in tuple(LockType):
            return LockType(explicit.upper())
        if context.get("useSharedLock") is True:
            return LockType.SHARED
    return LockType.EXCLUSIVE


class TaskType:
    """One Druid task ``type``. Subclasses override what differs from Druid's defaults."""

    name: ClassVar[str]
    # The Java class Druid deserialises this type into: it names the type in
    # Jackson's constructor errors.
    java_class: ClassVar[str]
    default_priority: ClassVar[int] = PRIORITY_DEFAULT

    def constructor_problem(self, problem: str) -> str:
        """Jackson's text for an exception thrown by the task's constructor."""
        return f"Cannot construct instance of `{self.java_class}`, problem: {problem}"

    def datasource(self, payload: JsonObject) -> str:
        value = payload.get("dataSource")
        if not isinstance(value, str) or not value:
            # AbstractTask's Preconditions.checkNotNull(dataSource, "dataSource").
            raise InvalidTaskSpec(self.constructor_problem("dataSource"))
        return value

    def make_id(self, payload: JsonObject, now: dt.datetime) -> str:
        """Druid's AbstractTask.getOrMakeId: ``<type>_<ds>_<rand>_<now>``."""
        return "_".join(
            [self.name, self.datasource(payload), random_letters(), format_druid(now)]
        )

    def group_id(self, payload: JsonObject, task_id: str) -> str:
        value = payload.get("groupId")
        return value if isinstance(value, str) and value else task_id

    def lock_needs(self, payload: JsonObject) -> list[LockNeed]:
        """Locks to hold before running; none by default.

        Raises:
            NotReady: readiness itself failed.
        """
        return []

    def is_ready(self, payload: JsonObject) -> bool:
        """Readiness beyond locks (noop's ``isReadyResult``).

        Raises:
            NotReady: the task can never become ready.
        """
        return True

    def run(self, context: TaskContext) -> TaskResult:
        """Run the task in its own process."""
        raise NotImplementedError(f"task type [{self.name}] cannot run yet")

    def priority(self, payload: JsonObject) -> int:
        """``context.priority`` when given, else the type's default."""
        context = payload.get("context")
        if isinstance(context, dict) and "priority" in context:
            value = context["priority"]
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise InvalidTaskSpec(
                    f"Invalid value for context parameter [priority]: [{value}]"
                )
            try:
                priority = int(value)
            except ValueError as error:
                raise InvalidTaskSpec(
                    f"Invalid value for context parameter [priority]: [{value}]"
                ) from error
            # A Java int in Druid; beyond it the insert failed (a 500).
            if not JAVA_INT_MIN <= priority <= JAVA_INT_MAX:
                raise InvalidTaskSpec(
                    f"Invalid value for context parameter [priority]: [{value}]"
                )
            return priority
        return self.default_priority
