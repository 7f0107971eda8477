"""What ``GET /metrics`` reads from the store, and what a worker records when a
task starts or ends, from what it claimed and committed (overlord.metrics holds
the metric families)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from overlord import metrics
from overlord.services.workers import total_worker_capacity
from overlord.states import TaskState
from overlord.store import execution as execution_store
from overlord.store import tasks as task_store


def store_state(session: Session) -> metrics.StoreState:
    """Active tasks by runner state and type, live workers and their slots: a
    grouped read of the active rows (an index) and of the workers table."""
    capacity = total_worker_capacity(session)
    return metrics.StoreState(
        active_tasks=task_store.active_task_counts(session),
        workers=len(execution_store.list_workers(session)),
        capacity=capacity["currentClusterCapacity"],
        used=capacity["usedClusterCapacity"],
    )


def record_task_start(
    task_type: str, datasource: str, ready_at: dt.datetime | None, started: dt.datetime
) -> None:
    """Dispatch latency of a task a worker just claimed (``ready_at``: when it
    became PENDING; ``started``: the claim's database time; both from the claim)."""
    if ready_at is not None:
        seconds = max((started - ready_at).total_seconds(), 0.0)
        metrics.task_dispatched(task_type, datasource, seconds)


def record_task_end(
    task_type: str, datasource: str, status: TaskState, seconds: float
) -> None:
    """Run time and outcome of a task whose end a worker just committed."""
    metrics.task_ended(task_type, datasource, status.value, max(seconds, 0.0))
