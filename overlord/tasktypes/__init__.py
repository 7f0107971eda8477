"""The registry of Druid task types: ``type`` → its TaskType. One module per type.

Imports neither the store, the database layer, SQLAlchemy nor flask.
"""

from __future__ import annotations

from overlord.tasktypes.base import TaskType
from overlord.tasktypes.index import (
    IndexParallelTaskType,
    IndexTaskType,
    SinglePhaseSubTaskType,
)
from overlord.tasktypes.kill import KillTaskType
from overlord.tasktypes.noop import NoopTaskType

REGISTRY: dict[str, TaskType] = {
    task_type.name: task_type
    for task_type in (
        NoopTaskType(),
        KillTaskType(),
        IndexTaskType(),
        IndexParallelTaskType(),
        SinglePhaseSubTaskType(),
    )
}


def lookup(name: str) -> TaskType | None:
    return REGISTRY.get(name)


def known_type_names() -> list[str]:
    return sorted(REGISTRY)
