"""Task states as Druid names them, and the rules between them (pure functions).

Leaf module: imports nothing from overlord.
"""

from __future__ import annotations

import enum


class TaskState(enum.StrEnum):
    """Druid's TaskState, stored per task. Only these three ever reach a client:
    Airflow's DruidHook raises on any other ``status.status`` value."""

    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"

    @property
    def is_complete(self) -> bool:
        return self is not TaskState.RUNNING


class RunnerState(enum.StrEnum):
    """Druid's RunnerTaskState: where an active task is in the runner.

    WAITING: active, its locks not yet granted or not ready; PENDING: ready, not yet
    claimed by a worker; RUNNING: claimed by a worker; NONE: finished.
    """

    WAITING = "WAITING"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    NONE = "NONE"


class ListState(enum.StrEnum):
    """The ``state`` filter of ``GET /tasks``, in the order Druid's error text lists them."""

    PENDING = "pending"
    WAITING = "waiting"
    RUNNING = "running"
    COMPLETE = "complete"


SHUTDOWN_BY_USER = "Shutdown request from user"

# Newest Druid TaskStatus keeps long errorMsg values readable: the first and last
# 512 characters around a marker saying how many were left out.
ERROR_MSG_LIMIT = 1024
ERROR_MSG_KEEP = 512


def truncate_error_msg(message: str | None) -> str | None:
    """Druid's TaskStatus errorMsg truncation (newest rule)."""
    if message is None or len(message) <= ERROR_MSG_LIMIT:
        return message
    omitted = len(message) - 2 * ERROR_MSG_KEEP
    return (
        f"{message[:ERROR_MSG_KEEP]}...{omitted} characters omitted..."
        f"{message[-ERROR_MSG_KEEP:]}"
    )
