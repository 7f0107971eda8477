"""``index`` and ``index_parallel``: native batch ingestion (running them is a later
issue; here they are accepted, identified and prioritised as Druid does)."""

from __future__ import annotations

from typing import Any

from overlord.errors import InvalidTaskSpec
from overlord.tasktypes.base import PRIORITY_BATCH_INDEX, JsonObject, TaskType


def _get(document: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


class IndexTaskType(TaskType):
    name = "index"
    java_class = "org.apache.druid.indexing.common.task.IndexTask"
    default_priority = PRIORITY_BATCH_INDEX

    def validate(self, payload: JsonObject) -> None:
        if not isinstance(payload.get("spec"), dict):
            raise InvalidTaskSpec("spec must not be null")
        self.datasource(payload)

    def datasource(self, payload: JsonObject) -> str:
        value = _get(payload, "spec", "dataSchema", "dataSource")
        if not isinstance(value, str) or not value:
            raise InvalidTaskSpec(
                "dataSource cannot be null or empty. Please provide a dataSource."
            )
        return value

    def group_id(self, payload: JsonObject, task_id: str) -> str:
        explicit = payload.get("groupId")
        if isinstance(explicit, str) and explicit:
            return explicit
        # Appending index tasks of one datasource share a lock group.
        if (
            self.name == "index"
            and _get(payload, "spec", "ioConfig", "appendToExisting") is True
        ):
            return f"index_append_{self.datasource(payload)}"
        return task_id


class IndexParallelTaskType(IndexTaskType):
    name = "index_parallel"
    java_class = "org.apache.druid.indexing.common.task.batch.parallel.ParallelIndexSupervisorTask"
