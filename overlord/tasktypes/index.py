"""``index`` and ``index_parallel``: native batch ingestion (Druid's IndexTask and
ParallelIndexSupervisorTask), run in the task's own process.

``index_parallel`` runs sequentially in the supervisor task itself, as Druid does
with ``maxNumConcurrentSubTasks`` 1; a larger value runs the same way here (no
sub-tasks yet).

Locks, as Druid's IndexTask takes them:

* ``granularitySpec.intervals`` given: one time-chunk lock per segment-granularity
  bucket, taken in readiness; each segment takes the version of its chunk's lock;
* no intervals, ``appendToExisting`` false: a time-chunk lock per chunk met while
  writing (``lockTryAcquire``), the lock's version, partitions numbered from 0;
* ``appendToExisting`` true: ``segmentAllocate`` per partition (new partitions of
  the chunk's existing version).

Every segment is published in one ``segmentTransactionalInsert`` at the end; a task
that fails or is shut down publishes nothing and removes the files it wrote.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from overlord.errors import ActionFailed, InvalidTaskSpec
from overlord.granularity import bucket, parse_granularity
from overlord.ingest import (
    Allocation,
    IngestError,
    Ingestion,
    IngestSpec,
    IngestStopped,
    SegmentDescription,
    delete_segment_file,
)
from overlord.segments import SegmentIdWithShardSpec
from overlord.states import TaskState
from overlord.taskactions import (
    LockList,
    LockTryAcquire,
    SegmentAllocate,
    SegmentTransactionalInsert,
)
from overlord.tasktypes.base import (
    PRIORITY_BATCH_INDEX,
    JsonObject,
    LockNeed,
    NotReady,
    TaskContext,
    TaskResult,
    TaskType,
    lock_type_from_context,
)
from overlord.timeutil import Interval, InvalidTime, format_druid, parse_interval

log = logging.getLogger(__name__)

# How often a running task rewrites its live report.
LIVE_REPORT_SECONDS = 1.0
STOPPED = "Task was stopped before it finished."


def _get(document: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def spec_problem(error: Exception) -> str:
    """The errorMsg of a spec the engine cannot build."""
    if isinstance(error, KeyError):
        return f"Cannot run the ingestion spec: missing field [{error.args[0]}]"
    return f"Cannot run the ingestion spec: {error}"


def build_spec(payload: JsonObject) -> IngestSpec:
    """The engine's spec from the stored payload.

    Raises:
        InvalidTaskSpec: the engine cannot handle it (with a clear message).
    """
    try:
        return IngestSpec.from_json(payload["spec"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise InvalidTaskSpec(spec_problem(error)) from error


def lock_buckets(payload: JsonObject) -> list[Interval]:
    """The segment-granularity buckets of ``granularitySpec.intervals`` (Druid's
    AbstractBatchIndexTask.tryTimeChunkLock), or none when intervals are absent."""
    granularity_spec = _get(payload, "spec", "dataSchema", "granularitySpec") or {}
    texts = (
        granularity_spec.get("intervals")
        if isinstance(granularity_spec, dict)
        else None
    )
    if not texts:
        return []
    try:
        granularity = parse_granularity(
            granularity_spec.get("segmentGranularity", "DAY")
        )
        intervals = [parse_interval(text) for text in texts]
    except (InvalidTime, ValueError, TypeError) as error:
        raise NotReady(spec_problem(error)) from error
    buckets: dict[Any, Interval] = {}
    for interval in intervals:
        when = interval.start
        while when < interval.end:
            chunk = bucket(granularity, when)
            buckets[chunk.start] = chunk
            if chunk.end <= when:
                break
            when = chunk.end
    return [buckets[start] for start in sorted(buckets)]


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

    def lock_needs(self, payload: JsonObject) -> list[LockNeed]:
        lock_type = lock_type_from_context(payload)
        return [LockNeed(chunk, lock_type) for chunk in lock_buckets(payload)]

    def run(self, context: TaskContext) -> TaskResult:
        return IndexRun(context).run()


class IndexParallelTaskType(IndexTaskType):
    name = "index_parallel"
    java_class = "org.apache.druid.indexing.common.task.batch.parallel.ParallelIndexSupervisorTask"


class IndexRun:
    """One run of an ``index`` / ``index_parallel`` task in its process."""

    def __init__(self, context: TaskContext) -> None:
        self.context = context
        self.payload = context.payload
        self.task_id = context.task_id
        self.state = "NOT_STARTED"
        self.ingestion: Ingestion | None = None
        self.published: int | None = None
        self.lock_type = lock_type_from_context(self.payload)
        self._versions: dict[Any, str] = {}
        self._previous: str | None = None
        self._report_lock = threading.Lock()
        self._started = time.monotonic()

    # --- reports ------------------------------------------------------------------

    def report(self, error_msg: str | None, *, live: bool = False) -> JsonObject:
        """Druid's ``ingestionStatsAndErrors`` (IngestionStatsAndErrors.java)."""
        ingestion = self.ingestion
        build = (
            ingestion.stats.to_json()
            if ingestion is not None
            else {
                "processed": 0,
                "processedBytes": 0,
                "processedWithError": 0,
                "thrownAway": 0,
                "unparseable": 0,
            }
        )
        empty = dict.fromkeys(build, 0)
        events = ingestion.unparseable_events() if ingestion is not None else []
        unparseable: JsonObject = (
            {"determinePartitions": [], "buildSegments": events} if events else {}
        )
        row_stats: JsonObject = {"determinePartitions": empty, "buildSegments": build}
        if live:
            return self._live_report(unparseable, row_stats)
        payload: JsonObject = {
            "ingestionState": self.state,
            "unparseableEvents": unparseable,
            "rowStats": row_stats,
            "errorMsg": error_msg,
            "segmentAvailabilityConfirmed": False,
            "segmentAvailabilityWaitTimeMs": 0,
            "recordsProcessed": None,
        }
        # segmentsRead is only set when re-ingesting Druid segments (null: omitted).
        if self.published is not None:
            payload["segmentsPublished"] = self.published
        return {
            "ingestionStatsAndErrors": {
                "type": "ingestionStatsAndErrors",
                "taskId": self.task_id,
                "payload": payload,
            }
        }

    def _live_report(self, unparseable: JsonObject, totals: JsonObject) -> JsonObject:
        """A running task's report (IndexTask.doGetLiveReports): state, events and
        ``rowStats`` as ``totals`` and ``movingAverages`` per phase. Druid's moving
        averages are 1/5/15-minute rates of its meters; here each window gives the
        mean rate per second since the phase began."""
        elapsed = max(time.monotonic() - self._started, 1e-3)
        rates = {key: value / elapsed for key, value in totals["buildSegments"].items()}
        return {
            "ingestionStatsAndErrors": {
                "taskId": self.task_id,
                "payload": {
                    "ingestionState": self.state,
                    "unparseableEvents": unparseable,
                    "rowStats": {
                        "movingAverages": {
                            "buildSegments": {
                                window: dict(rates) for window in ("1m", "5m", "15m")
                            }
                        },
                        "totals": totals,
                    },
                },
                "type": "ingestionStatsAndErrors",
            }
        }

    def _write_report(self, error_msg: str | None, *, live: bool = False) -> None:
        with self._report_lock:
            self.context.write_report(self.report(error_msg, live=live))

    def _live_reports(self, done: threading.Event) -> None:
        while not done.wait(LIVE_REPORT_SECONDS):
            try:
                self._write_report(None, live=True)
            except Exception as error:  # the store may be briefly unreachable
                # Not context.log: its buffer belongs to the task's main thread.
                log.warning("live report of %s not written: %s", self.task_id, error)

    # --- allocation -----------------------------------------------------------------

    def _check_stop(self) -> None:
        # A shut-down task asks for no lock or segment any more.
        if self.context.should_stop():
            raise IngestStopped

    def _locked_version(self, chunk: Interval) -> Allocation:
        version = self._versions.get(chunk.start)
        if version is None:
            raise IngestError(f"No lock covers interval[{chunk}]")
        return Allocation(version, 0)

    def allocator(self, spec_json: JsonObject) -> Callable[[Interval, int], Allocation]:
        append = _get(spec_json, "ioConfig", "appendToExisting") is True
        granularity_spec = _get(spec_json, "dataSchema", "granularitySpec") or {}
        if append:
            return self._allocate_by_action(granularity_spec)
        if granularity_spec.get("intervals"):
            for lock in self.context.action(LockList()) or []:
                if not lock.get("revoked"):
                    span = parse_interval(lock["interval"])
                    for chunk in lock_buckets(self.payload):
                        if span.contains(chunk):
                            self._versions[chunk.start] = lock["version"]

            def locked(chunk: Interval, index: int) -> Allocation:
                return Allocation(self._locked_version(chunk).version, index)

            return locked

        def lazily_locked(chunk: Interval, index: int) -> Allocation:
            self._check_stop()
            version = self._versions.get(chunk.start)
            if version is None:
                lock = self.context.action(LockTryAcquire(chunk, self.lock_type))
                if lock is None or lock.get("revoked"):
                    raise IngestError(f"Cannot acquire a lock for interval[{chunk}]")
                version = str(lock["version"])
                self._versions[chunk.start] = version
            return Allocation(version, index)

        return lazily_locked

    def _allocate_by_action(
        self, granularity_spec: JsonObject
    ) -> Callable[[Interval, int], Allocation]:
        datasource = self.payload["spec"]["dataSchema"]["dataSource"]

        def allocate(chunk: Interval, index: int) -> Allocation:
            self._check_stop()
            result = self.context.action(
                SegmentAllocate(
                    datasource=datasource,
                    timestamp=chunk.start,
                    query_granularity=parse_granularity(
                        granularity_spec.get("queryGranularity", "NONE")
                    ),
                    preferred_segment_granularity=parse_granularity(
                        granularity_spec.get("segmentGranularity", "DAY")
                    ),
                    sequence_name=self.task_id,
                    previous_segment_id=self._previous,
                    task_lock_type=self.lock_type,
                )
            )
            if result is None:
                # Druid's BatchAppenderatorDriver text.
                raise IngestError(
                    "Could not allocate segment for row with timestamp"
                    f"[{format_druid(chunk.start)}]"
                )
            allocated = SegmentIdWithShardSpec.from_json(result)
            self._previous = str(allocated.id)
            return Allocation(
                allocated.version,
                allocated.shard_spec.partition_num,
                allocated.shard_spec.partitions,
            )

        return allocate

    # --- the run ------------------------------------------------------------------

    def run(self) -> TaskResult:
        context = self.context
        try:
            spec = build_spec(self.payload)
        except InvalidTaskSpec as error:
            return self._fail(str(error))
        spec_json: JsonObject = self.payload["spec"]
        if (_get(spec_json, "tuningConfig", "maxNumConcurrentSubTasks") or 1) > 1:
            context.log(
                "maxNumConcurrentSubTasks > 1: running sequentially in this task "
                "(sub-tasks are not supported yet)"
            )
        self.state = "BUILD_SEGMENTS"
        self._started = time.monotonic()
        done = threading.Event()
        reporter = threading.Thread(
            target=self._live_reports, args=(done,), name="live-report", daemon=True
        )
        segments: list[SegmentDescription] = []
        try:
            self.ingestion = Ingestion(
                spec,
                storage=context.deep_storage_dir(),
                version=self.task_id,
                allocate=self.allocator(spec_json),
                should_stop=context.should_stop,
                log=context.log,
            )
            reporter.start()
            try:
                segments = self.ingestion.run()
            finally:
                done.set()
                reporter.join()
            if context.should_stop():
                raise IngestStopped
            return self._publish(segments)
        except IngestStopped:
            _delete_files(segments)
            return self._fail(STOPPED)
        except (IngestError, ActionFailed) as error:
            _delete_files(segments)
            return self._fail(str(error))
        except Exception as error:
            _delete_files(segments)
            self._fail(f"{type(error).__name__}: {error}")
            raise

    def _publish(self, segments: list[SegmentDescription]) -> TaskResult:
        try:
            result = self.context.action(
                SegmentTransactionalInsert(
                    tuple(segment.to_data_segment() for segment in segments)
                )
            )
        except BaseException:
            _delete_files(segments)
            raise
        if not isinstance(result, dict) or not result.get("success"):
            _delete_files(segments)
            message = (
                result.get("errorMsg") if isinstance(result, dict) else None
            ) or "Failed to publish segments."
            return self._fail(str(message))
        self.published = len(segments)
        self.state = "COMPLETED"
        self.context.log(f"Published [{len(segments)}] segments")
        self._write_report(None)
        return TaskResult(TaskState.SUCCESS)

    def _fail(self, message: str) -> TaskResult:
        self.context.log(f"Ingestion failed: {message}")
        self._write_report(message)
        return TaskResult(TaskState.FAILED, message)


def _delete_files(segments: list[SegmentDescription]) -> None:
    for segment in segments:
        try:
            delete_segment_file(segment.load_spec)
        except OSError:
            continue
