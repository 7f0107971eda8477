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
    by_type: dict[tuple[str, str], int] = {}
    for (state, _, task_type), count in task_store.active_task_counts(session).items():
        by_type[state, task_type] = by_type.get((state, task_type), 0) + count
    return metrics.StoreState(
        active_tasks=by_type,
        workers=len(execution_store.list_workers(session)),
        capacity=capacity["currentClusterCapacity"],
        used=capacity["usedClusterCapacity"],
    )


def emit_task_counts(session: Session) -> None:
    """One emission period of Druid's task and task slot count metrics (serve's
    embedded worker runs it, so one process per serve adds to them): active tasks
    by runner state, datasource and type, and the live workers' slots by
    category, as Druid's TaskSlotCountStatsMonitor counts them (total: every
    worker's capacity; idle: free slots of enabled workers; used: running tasks)."""
    running = execution_store.running_tasks_by_worker(session)
    slots: dict[str, tuple[int, int, int]] = {}
    for worker in execution_store.list_workers(session):
        used = len(running.get(worker.id, ()))
        idle = max(worker.capacity - used, 0) if worker.enabled else 0
        total_, idle_, used_ = slots.get(worker.category, (0, 0, 0))
        slots[worker.category] = (total_ + worker.capacity, idle_ + idle, used_ + used)
    metrics.emit_task_counts(task_store.active_task_counts(session), slots)


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
