"""Druid's worker views (``GET /workers``) from the workers table."""

from __future__ import annotations

import socket
from typing import Any

from sqlalchemy.orm import Session

from overlord.store import execution as execution_store
from overlord.timeutil import format_druid


def list_workers(session: Session) -> list[dict[str, Any]]:
    """ImmutableWorkerInfo documents, in Druid's key order."""
    running = execution_store.running_tasks_by_worker(session)
    documents = []
    for worker in execution_store.list_workers(session):
        tasks = running.get(worker.id, [])
        by_type: dict[str, int] = {}
        for row in tasks:
            by_type[row.type] = by_type.get(row.type, 0) + 1
        host = worker.host if worker.port < 0 else f"{worker.host}:{worker.port}"
        documents.append(
            {
                "worker": {
                    "scheme": "http",
                    "host": host,
                    "ip": _ip_of(worker.host),
                    "capacity": worker.capacity,
                    "version": worker.version,
                    "category": worker.category,
                },
                "currCapacityUsed": len(tasks),
                "currParallelIndexCapacityUsed": by_type.get("index_parallel", 0),
                "currCapacityUsedByTaskType": by_type,
                "availabilityGroups": [row.task_id for row in tasks],
                "runningTasks": [row.task_id for row in tasks],
                "lastCompletedTaskTime": format_druid(
                    worker.last_completed_task_at or worker.started_at
                ),
                "blacklistedUntil": None,
            }
        )
    return documents


def _ip_of(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host


def total_worker_capacity(session: Session) -> dict[str, int]:
    """``GET /totalWorkerCapacity``: the live workers' slots (no autoscaler: the
    maximum is the current capacity)."""
    workers = execution_store.list_workers(session)
    capacity = sum(worker.capacity for worker in workers)
    used = sum(
        len(rows) for rows in execution_store.running_tasks_by_worker(session).values()
    )
    return {
        "currentClusterCapacity": capacity,
        "maximumCapacityWithAutoScale": capacity,
        "usedClusterCapacity": used,
    }
