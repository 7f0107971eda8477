"""``kill``: deletes unused segments of a datasource and interval (Druid's
KillUnusedSegmentsTask)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from overlord.errors import InvalidTaskSpec
from overlord.ingest import delete_segment_file
from overlord.segments import DataSegment
from overlord.states import TaskState
from overlord.taskactions import SegmentListUnused, SegmentNuke
from overlord.tasktypes.base import (
    JsonObject,
    LockNeed,
    TaskContext,
    TaskResult,
    TaskType,
    lock_type_from_context,
    random_letters,
)
from overlord.timeutil import Interval, InvalidTime, format_druid, parse_interval


class KillTaskType(TaskType):
    name = "kill"
    java_class = "org.apache.druid.indexing.common.task.KillUnusedSegmentsTask"

    def interval(self, payload: JsonObject) -> Interval:
        value = payload.get("interval")
        if not isinstance(value, str):
            # AbstractFixedIntervalTask's Preconditions.checkNotNull(interval, ...).
            raise InvalidTaskSpec(self.constructor_problem("interval"))
        try:
            interval = parse_interval(value)
        except InvalidTime as error:
            raise InvalidTaskSpec(str(error)) from error
        if interval.start == interval.end:
            raise InvalidTaskSpec(self.constructor_problem("interval empty"))
        return interval

    def make_id(self, payload: JsonObject, now: dt.datetime) -> str:
        interval = self.interval(payload)
        return "_".join(
            [
                self.name,
                self.datasource(payload),
                random_letters(),
                format_druid(interval.start),
                format_druid(interval.end),
                format_druid(now),
            ]
        )

    def lock_needs(self, payload: JsonObject) -> list[LockNeed]:
        return [LockNeed(self.interval(payload), lock_type_from_context(payload))]

    def run(self, context: TaskContext) -> TaskResult:
        """Delete the unused segments of the interval: files, then rows, in batches."""
        payload = context.payload
        datasource = self.datasource(payload)
        interval = self.interval(payload)
        batch_size = payload.get("batchSize") or DEFAULT_BATCH_SIZE
        limit = payload.get("limit")
        killed = batches = 0
        seen: set[str] = set()
        while not context.should_stop():
            wanted = batch_size if limit is None else min(batch_size, limit - killed)
            if wanted <= 0:
                break
            segments = context.action(
                SegmentListUnused(
                    datasource=datasource, interval=interval, limit=wanted
                )
            )
            if not segments:
                break
            ids = {str(segment.get("identifier")) for segment in segments}
            if ids & seen:
                raise RuntimeError(f"Segments {sorted(ids & seen)} were not removed")
            seen |= ids
            for segment in segments:
                _delete_from_deep_storage(context, segment)
            context.action(
                SegmentNuke(tuple(DataSegment.from_json(s) for s in segments))
            )
            killed += len(segments)
            batches += 1
            context.log(f"Killed [{len(segments)}] unused segments of [{datasource}]")
        context.write_report(
            {
                "killUnusedSegments": {
                    "type": "killUnusedSegments",
                    "taskId": context.task_id,
                    "payload": {
                        "numSegmentsKilled": killed,
                        "numBatchesProcessed": batches,
                        "numSegmentsMarkedAsUnused": 0,
                    },
                }
            }
        )
        if context.should_stop():
            return TaskResult(TaskState.FAILED, "Task was asked to stop")
        return TaskResult(TaskState.SUCCESS)


DEFAULT_BATCH_SIZE = 100


def _delete_from_deep_storage(context: TaskContext, segment: JsonObject) -> None:
    """Druid's ``local`` loadSpec: remove the segment's file and its empty parents
    inside the deep storage directory; a filesystem URI path (deep storage on
    another filesystem) is deleted where it is; other loadSpec types are left
    alone."""
    load_spec = segment.get("loadSpec")
    if not isinstance(load_spec, dict):
        return
    if "://" in str(load_spec.get("path", "")):
        # Segments the ingestion engine wrote to a filesystem URI (s3://, gs://,
        # hdfs://, file://…): their loadSpec path opens again wherever it is.
        try:
            delete_segment_file(load_spec)
        except (OSError, ValueError) as error:
            context.log(f"Not deleting [{load_spec.get('path')}]: {error}")
        return
    if load_spec.get("type") != "local":
        return
    path = Path(str(load_spec.get("path", "")))
    root = Path(context.deep_storage_dir()).resolve()
    target = path if path.is_absolute() else root / path
    target = target.resolve()
    if root not in target.parents:
        context.log(f"Not deleting [{target}]: outside deep storage [{root}]")
        return
    if target.is_dir():
        shutil.rmtree(target, ignore_errors=True)
    else:
        target.unlink(missing_ok=True)
    parent = target.parent
    while parent != root and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent
