"""Druid's task actions (spec §1.15), one frozen dataclass per action ``type``.

``POST /action`` loads them with marshmallow (``overlord.schemas.actions``), task
code builds them directly, and ``overlord.services.actions`` performs them. Each
``to_json`` writes the action as a Druid peon posts it.

Leaf module: imports only :mod:`overlord.granularity`, :mod:`overlord.segments`
and :mod:`overlord.timeutil`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar

from overlord.granularity import Granularity, granularity_json
from overlord.segments import DataSegment, LockGranularity, LockType
from overlord.timeutil import Interval, format_druid

JsonObject = dict[str, Any]


class TaskAction:
    """A task action; ``type`` is its Druid type id."""

    type: ClassVar[str]

    def to_json(self) -> JsonObject:
        return {"type": self.type}


@dataclass(frozen=True)
class LockTryAcquire(TaskAction):
    """``TimeChunkLockTryAcquireAction``: a time-chunk lock now, or null."""

    type: ClassVar[str] = "lockTryAcquire"
    interval: Interval
    lock_type: LockType = LockType.EXCLUSIVE

    def to_json(self) -> JsonObject:
        return {
            "type": self.type,
            "lockType": self.lock_type.value,
            "interval": str(self.interval),
        }


@dataclass(frozen=True)
class LockAcquire(TaskAction):
    """``TimeChunkLockAcquireAction``: waits up to ``timeout_ms`` (0: no limit)."""

    type: ClassVar[str] = "lockAcquire"
    interval: Interval
    lock_type: LockType = LockType.EXCLUSIVE
    timeout_ms: int = 0

    def to_json(self) -> JsonObject:
        return {
            "type": self.type,
            "lockType": self.lock_type.value,
            "interval": str(self.interval),
            "timeoutMs": self.timeout_ms,
        }


@dataclass(frozen=True)
class LockRelease(TaskAction):
    """``LockReleaseAction``: drop this task's time-chunk lock of that interval."""

    type: ClassVar[str] = "lockRelease"
    interval: Interval

    def to_json(self) -> JsonObject:
        return {"type": self.type, "interval": str(self.interval)}


@dataclass(frozen=True)
class LockList(TaskAction):
    """``LockListAction``: every lock of this task, revoked ones included."""

    type: ClassVar[str] = "lockList"


class Visibility:
    """``segmentListUsed``'s ``visibility`` (Druid's ``Segments`` enum)."""

    ONLY_VISIBLE = "ONLY_VISIBLE"
    INCLUDING_OVERSHADOWED = "INCLUDING_OVERSHADOWED"
    ALL = (ONLY_VISIBLE, INCLUDING_OVERSHADOWED)


@dataclass(frozen=True)
class SegmentListUsed(TaskAction):
    """``RetrieveUsedSegmentsAction``; ``datasource`` None: the task's."""

    type: ClassVar[str] = "segmentListUsed"
    datasource: str | None
    intervals: tuple[Interval, ...]
    visibility: str = Visibility.ONLY_VISIBLE

    def to_json(self) -> JsonObject:
        return {
            "type": self.type,
            "dataSource": self.datasource,
            "intervals": [str(interval) for interval in self.intervals],
            "visibility": self.visibility,
        }


@dataclass(frozen=True)
class SegmentListUnused(TaskAction):
    """``RetrieveUnusedSegmentsAction``; ``limit`` None: no limit."""

    type: ClassVar[str] = "segmentListUnused"
    datasource: str | None
    interval: Interval
    versions: tuple[str, ...] | None = None
    limit: int | None = None
    max_used_status_last_updated_time: dt.datetime | None = None

    def to_json(self) -> JsonObject:
        last = self.max_used_status_last_updated_time
        return {
            "type": self.type,
            "dataSource": self.datasource,
            "interval": str(self.interval),
            "versions": None if self.versions is None else list(self.versions),
            "limit": self.limit,
            "maxUsedStatusLastUpdatedTime": None
            if last is None
            else format_druid(last),
        }


@dataclass(frozen=True)
class SegmentAllocate(TaskAction):
    """``SegmentAllocateAction`` (spec §1.15.4). ``overwrite``: the
    ``numbered_overwrite`` shardSpecFactory (partitions from 32768)."""

    type: ClassVar[str] = "segmentAllocate"
    datasource: str
    timestamp: dt.datetime
    query_granularity: Granularity
    preferred_segment_granularity: Granularity
    sequence_name: str
    previous_segment_id: str | None = None
    skip_segment_lineage_check: bool = False
    overwrite: bool = False
    lock_granularity: LockGranularity = LockGranularity.TIME_CHUNK
    task_lock_type: LockType = LockType.EXCLUSIVE

    def to_json(self) -> JsonObject:
        return {
            "type": self.type,
            "dataSource": self.datasource,
            "timestamp": format_druid(self.timestamp),
            "queryGranularity": granularity_json(self.query_granularity),
            "preferredSegmentGranularity": granularity_json(
                self.preferred_segment_granularity
            ),
            "sequenceName": self.sequence_name,
            "previousSegmentId": self.previous_segment_id,
            "skipSegmentLineageCheck": self.skip_segment_lineage_check,
            "shardSpecFactory": {
                "type": "numbered_overwrite" if self.overwrite else "numbered"
            },
            "lockGranularity": self.lock_granularity.value,
            "taskLockType": self.task_lock_type.value,
        }


@dataclass(frozen=True)
class SegmentTransactionalInsert(TaskAction):
    """``SegmentTransactionalInsertAction`` (spec §1.15.5): publish in one
    transaction. The metadata fields are kept as posted (no streaming here)."""

    type: ClassVar[str] = "segmentTransactionalInsert"
    segments: tuple[DataSegment, ...]
    segments_to_be_overwritten: tuple[DataSegment, ...] | None = None
    start_metadata: Any = None
    end_metadata: Any = None
    datasource: str | None = None

    def to_json(self) -> JsonObject:
        overwritten = self.segments_to_be_overwritten
        return {
            "type": self.type,
            "segments": [segment.to_json() for segment in self.segments],
            "segmentsToBeOverwritten": None
            if overwritten is None
            else [segment.to_json() for segment in overwritten],
            "startMetadata": self.start_metadata,
            "endMetadata": self.end_metadata,
            "dataSource": self.datasource,
        }


@dataclass(frozen=True)
class SegmentInsertion(TaskAction):
    """``SegmentInsertAction``: the older publish without metadata."""

    type: ClassVar[str] = "segmentInsertion"
    segments: tuple[DataSegment, ...]

    def to_json(self) -> JsonObject:
        return {
            "type": self.type,
            "segments": [segment.to_json() for segment in self.segments],
        }


@dataclass(frozen=True)
class SegmentNuke(TaskAction):
    """``SegmentNukeAction``: delete the rows of these (unused) segments."""

    type: ClassVar[str] = "segmentNuke"
    segments: tuple[DataSegment, ...]

    def to_json(self) -> JsonObject:
        return {
            "type": self.type,
            "segments": [segment.to_json() for segment in self.segments],
        }


@dataclass(frozen=True)
class SurrogateAction(TaskAction):
    """Druid's ``SurrogateAction``: ``task_action`` performed as the task
    ``surrogate_id`` (a parallel sub-task acting under its supervisor's locks)."""

    type: ClassVar[str] = "surrogateAction"
    surrogate_id: str
    task_action: TaskAction

    def to_json(self) -> JsonObject:
        return {
            "type": self.type,
            "surrogateId": self.surrogate_id,
            "taskAction": self.task_action.to_json(),
        }


ACTION_TYPES: tuple[type[TaskAction], ...] = (
    LockAcquire,
    LockTryAcquire,
    LockRelease,
    LockList,
    SegmentListUsed,
    SegmentListUnused,
    SegmentAllocate,
    SegmentTransactionalInsert,
    SegmentInsertion,
    SegmentNuke,
    SurrogateAction,
)
