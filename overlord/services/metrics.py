"""What ``GET /metrics`` reads from the store, and what a worker records when a
task starts or ends (overlord.metrics holds the metric families)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from overlord import metrics
from overlord.services.workers import total_worker_capacity
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


def record_task_start(session: Session, task_id: str, started: dt.datetime) -> None:
    """Dispatch latency of a task a worker just claimed (``started``: the claim's
    database time)."""
    timings = task_store.task_timings(session, task_id)
    if timings is None:
        return
    task_type, datasource, _, ready_at, _, _ = timings
    if ready_at is not None:
        seconds = max((started - ready_at).total_seconds(), 0.0)
        metrics.task_dispatched(task_type, datasource, seconds)


def record_task_end(session: Session, task_id: str) -> None:
    """Run time and outcome of a task whose process a worker just reaped."""
    timings = task_store.task_timings(session, task_id)
    if timings is None:
        return
    task_type, datasource, status, _, started_at, finished_at = timings
    if status.value not in ("SUCCESS", "FAILED") or started_at is None:
        return
    seconds = max(((finished_at or started_at) - started_at).total_seconds(), 0.0)
    metrics.task_ended(task_type, datasource, status.value, seconds)
