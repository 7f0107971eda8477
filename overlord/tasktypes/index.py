"""``index`` and ``index_parallel``: native batch ingestion (Druid's IndexTask and
ParallelIndexSupervisorTask), run in the task's own process.

``index_parallel`` runs sequentially in the supervisor task itself, as Druid does
with ``maxNumConcurrentSubTasks`` 1 (absent) or an input source that cannot be split
(``inline``). With more, it is Druid's ParallelIndexSupervisorTask in single-phase
mode (``SupervisorRun``): one ``single_phase_sub_task`` per input file (``local``)
or URI (``http``), at most ``maxNumConcurrentSubTasks`` at once, each an ordinary
task any worker claims; they push segments, report them (``SubTaskRun``), and the
supervisor publishes them all in one ``segmentTransactionalInsert``.

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

import json
import logging
import threading
import time
from collections.abc import Callable, Collection
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
from overlord.ingest.sources import local_files
from overlord.ingest.spec import LocalSource
from overlord.segments import DataSegment, SegmentIdWithShardSpec
from overlord.states import TaskState
from overlord.taskactions import (
    LockList,
    LockTryAcquire,
    SegmentAllocate,
    SegmentTransactionalInsert,
    SurrogateAction,
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

    def run(self, context: TaskContext) -> TaskResult:
        splits = parallel_splits(context.payload)
        if splits is None:
            return IndexRun(context).run()
        if context.task_slots() < 2:
            # Druid would wait for a free slot forever: the supervisor holds the only
            # one. Running the splits itself is what maxNumConcurrentSubTasks 1 does.
            context.log(
                "Fewer than 2 task slots: running sequentially in the supervisor task"
            )
            return IndexRun(context).run()
        return SupervisorRun(context, splits).run()


class SinglePhaseSubTaskType(IndexTaskType):
    """Druid's SinglePhaseSubTask: one split of a supervisor's input; it pushes
    segments and reports them to the supervisor instead of publishing them. Its
    locks are the supervisor's (Druid's sub-tasks act through a
    SurrogateTaskActionClient), so it needs none of its own to start."""

    name = "single_phase_sub_task"
    java_class = (
        "org.apache.druid.indexing.common.task.batch.parallel.SinglePhaseSubTask"
    )

    def lock_needs(self, payload: JsonObject) -> list[LockNeed]:
        return []

    def run(self, context: TaskContext) -> TaskResult:
        return SubTaskRun(context).run()


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
        self._phase: str | None = None

    # --- reports ------------------------------------------------------------------

    # Druid's IndexTask reads the input a first time when the spec has no
    # intervals; its SinglePhaseSubTask does not.
    determines_intervals = True

    @property
    def ingestion_state(self) -> str:
        """Druid's IngestionState: DETERMINE_PARTITIONS during the first pass."""
        if self.state == "BUILD_SEGMENTS" and self.ingestion is not None:
            return self.ingestion.phase
        return self.state

    def report(self, error_msg: str | None, *, live: bool = False) -> JsonObject:
        """Druid's ``ingestionStatsAndErrors`` (IngestionStatsAndErrors.java)."""
        ingestion = self.ingestion
        if ingestion is not None:
            build = ingestion.stats.to_json()
            determine = ingestion.determine_stats.to_json()
            events = ingestion.unparseable_events()
            determine_events = ingestion.determine_unparseable_events()
        else:
            build = determine = dict(_ZERO_STATS)
            events, determine_events = [], []
        # IndexTask.getTaskCompletionUnparseableEvents: both phases' lists (maybe
        # empty) when maxSavedParseExceptions > 0, else nothing.
        saving = ingestion is not None and ingestion.saves_parse_exceptions
        unparseable: JsonObject = (
            {"determinePartitions": determine_events, "buildSegments": events}
            if events or determine_events or saving
            else {}
        )
        row_stats: JsonObject = {
            "determinePartitions": determine,
            "buildSegments": build,
        }
        if live:
            return self._live_report(unparseable, row_stats)
        payload: JsonObject = {
            "ingestionState": self.ingestion_state,
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
        ``rowStats`` as ``totals`` and ``movingAverages`` of the current phase only
        (IndexTask.doGetRowStats without ``full``, as the Overlord asks a running
        task's liveReports). Druid's moving averages are 1/5/15-minute rates of its
        meters; here each window gives the mean rate per second since the phase
        began."""
        state = self.ingestion_state
        phase = (
            "determinePartitions"
            if state == "DETERMINE_PARTITIONS"
            else "buildSegments"
            if state in ("BUILD_SEGMENTS", "COMPLETED")
            else None
        )
        if phase is not None and phase != self._phase:
            self._phase, self._started = phase, time.monotonic()
        elapsed = max(time.monotonic() - self._started, 1e-3)
        averages: JsonObject = {}
        phase_totals: JsonObject = {}
        if phase is not None:
            rates = {key: value / elapsed for key, value in totals[phase].items()}
            averages[phase] = {window: dict(rates) for window in ("1m", "5m", "15m")}
            phase_totals[phase] = totals[phase]
        if not self.determines_intervals:
            # SinglePhaseSubTask.doGetUnparseableEvents: its one phase.
            unparseable = {"buildSegments": unparseable.get("buildSegments", [])}
        return {
            "ingestionStatsAndErrors": {
                "taskId": self.task_id,
                "payload": {
                    "ingestionState": state,
                    "unparseableEvents": unparseable,
                    "rowStats": {
                        "movingAverages": averages,
                        "totals": phase_totals,
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
            result = self._allocate_action(
                SegmentAllocate(
                    datasource=datasource,
                    timestamp=chunk.start,
                    query_granularity=parse_granularity(
                        granularity_spec.get("queryGranularity", "NONE")
                    ),
                    preferred_segment_granularity=parse_granularity(
                        granularity_spec.get("segmentGranularity", "DAY")
                    ),
                    sequence_name=self.sequence_name(),
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

    def sequence_name(self) -> str:
        return self.task_id

    def _allocate_action(self, action: SegmentAllocate) -> Any:
        return self.context.action(action)

    # --- the run ------------------------------------------------------------------

    def run(self) -> TaskResult:
        context = self.context
        try:
            spec = build_spec(self.payload)
        except InvalidTaskSpec as error:
            return self._fail(str(error))
        spec_json: JsonObject = self.payload["spec"]
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
                determine_intervals=self.determines_intervals,
            )
            reporter.start()
            try:
                segments = self.ingestion.run()
            finally:
                done.set()
                reporter.join()
            if context.should_stop():
                raise IngestStopped
            return self._finish(segments)
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

    def _finish(self, segments: list[SegmentDescription]) -> TaskResult:
        """What a run does with the segments it pushed: publish them."""
        return self._publish(
            [segment.to_json() for segment in segments],
            lambda: _delete_files(segments),
        )

    def _publish(
        self, documents: list[JsonObject], discard: Callable[[], None]
    ) -> TaskResult:
        try:
            result = self.context.action(
                SegmentTransactionalInsert(
                    tuple(DataSegment.from_json(document) for document in documents)
                )
            )
        except BaseException:
            discard()
            raise
        if not isinstance(result, dict) or not result.get("success"):
            discard()
            message = (
                result.get("errorMsg") if isinstance(result, dict) else None
            ) or "Failed to publish segments."
            return self._fail(str(message))
        self.published = len(documents)
        self.state = "COMPLETED"
        self.context.log(f"Published [{len(documents)}] segments")
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


# --- index_parallel with sub-tasks (single-phase) -------------------------------------

# How often the supervisor polls its sub-tasks' statuses (Druid's
# taskStatusCheckPeriodMs defaults to 1000 ms).
SUB_TASK_POLL_SECONDS = 0.2
# ParallelIndexTuningConfig.DEFAULT_MAX_RETRY.
DEFAULT_MAX_RETRY = 3
PHASE = "segment generation"
# ParallelIndexSupervisorTask.TASK_PHASE_FAILURE_MSG.
PHASE_FAILED = f"Failed in phase[{PHASE}]. See task logs for details."
_ZERO_STATS = {
    "processed": 0,
    "processedBytes": 0,
    "processedWithError": 0,
    "thrownAway": 0,
    "unparseable": 0,
}


def parallel_splits(payload: JsonObject) -> list[JsonObject] | None:
    """The sub-tasks' input sources (SplittableInputSource.createSplits then
    withSplit), or None when the supervisor runs the input itself: Druid's
    ``isParallelMode`` is false with ``maxNumConcurrentSubTasks`` ≤ 1 or a source that
    cannot be split (``inline``). One file (``local``) or URI (``http``) per split:
    Druid's default ``splitHintSpec`` would group small files up to 1 GiB, here each
    file is its own sub-task (as with ``maxNumFiles: 1``)."""
    limit = _get(payload, "spec", "tuningConfig", "maxNumConcurrentSubTasks")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 1:
        return None
    source = _get(payload, "spec", "ioConfig", "inputSource")
    if not isinstance(source, dict):
        return None
    if source.get("type") == "local":
        try:
            spec = build_spec(payload)
            if not isinstance(spec.source, LocalSource):
                return None
            files = local_files(spec.source)
        except (InvalidTaskSpec, IngestError):
            return None  # the sequential run fails with the message
        splits: list[JsonObject] = [
            {"type": "local", "files": [path]} for path in files
        ]
    elif source.get("type") == "http" and isinstance(source.get("uris"), list):
        splits = [{**source, "uris": [uri]} for uri in source["uris"]]
    else:
        return None
    return splits or None


def _row_totals(report: JsonObject) -> tuple[JsonObject, list[Any]]:
    """buildSegments totals and unparseable events of a sub-task's own report, its
    completion report (``rowStats.buildSegments``) or a live one
    (``rowStats.totals.buildSegments``)."""
    payload = _get(report, "ingestionStatsAndErrors", "payload") or {}
    totals = (
        _get(payload, "rowStats", "buildSegments")
        or _get(payload, "rowStats", "totals", "buildSegments")
        or {}
    )
    events = _get(payload, "unparseableEvents", "buildSegments") or []
    return (totals if isinstance(totals, dict) else {}), (
        events if isinstance(events, list) else []
    )


class SupervisorRun(IndexRun):
    """ParallelIndexSupervisorTask with SinglePhaseParallelIndexTaskRunner: submit a
    sub-task per split (at most ``maxNumConcurrentSubTasks`` active), poll them,
    and publish every pushed segment at once when all succeeded.

    A failed sub-task is retried as Druid's TaskMonitor does: a new task of the same
    ``subtaskSpecId`` with ``numAttempts`` one more, while the spec's tries so far are
    fewer than ``tuningConfig.maxRetry`` (default 3; so at most ``maxRetry`` tries in
    all, and 0 or 1 means none). Lineage-based allocation (the spec id is the
    sequence name) gives the new attempt the segment ids the failed one had. When a
    spec has no tries left the supervisor fails with Druid's phase message after its
    other sub-tasks are shut down; nothing is published and the pushed files are
    removed.
    """

    def __init__(self, context: TaskContext, splits: list[JsonObject]) -> None:
        super().__init__(context)
        self.splits = splits
        self.limit = int(
            self.payload["spec"]["tuningConfig"]["maxNumConcurrentSubTasks"]
        )
        max_retry = _get(self.payload, "spec", "tuningConfig", "maxRetry")
        self.max_retry = (
            max_retry
            if isinstance(max_retry, int) and not isinstance(max_retry, bool)
            else DEFAULT_MAX_RETRY
        )
        self.reports: dict[str, JsonObject] = {}
        # Running sub-task id → the number of its split (its spec).
        self.running: dict[str, int] = {}
        self.submitted: list[str] = []
        # Tries so far of each spec, and the sub-task that succeeded for it.
        self.tries: dict[int, int] = {}
        self.succeeded: dict[int, str] = {}
        # Live reports of running sub-tasks that have not reported to it yet.
        self.live_reports: dict[str, JsonObject] = {}

    # --- reports: the sub-tasks' row stats summed ------------------------------------

    def report(self, error_msg: str | None, *, live: bool = False) -> JsonObject:
        """Druid's parallel report: ``rowStats.totals.buildSegments`` summed over the
        sub-tasks' reports, their unparseable events joined; a live one adds the
        running sub-tasks' live figures (ParallelIndexSupervisorTask
        doGetRowStatsAndUnparseableEventsParallelSinglePhase)."""
        totals = dict(_ZERO_STATS)
        events: list[Any] = []
        sources = [report.get("taskReport") or {} for report in self.reports.values()]
        if live:
            sources += self.live_reports.values()
        for source in sources:
            figures, found = _row_totals(source)
            for key in totals:
                value = figures.get(key)
                if isinstance(value, int):
                    totals[key] += value
            events.extend(found)
        payload: JsonObject = {
            "ingestionState": self.state,
            "unparseableEvents": {"buildSegments": events},
            "rowStats": {"totals": {"buildSegments": totals}},
        }
        if not live:
            payload.update(
                {
                    "errorMsg": error_msg,
                    "segmentAvailabilityConfirmed": False,
                    "segmentAvailabilityWaitTimeMs": 0,
                    "recordsProcessed": None,
                }
            )
            if self.published is not None:
                payload["segmentsPublished"] = self.published
        return {
            "ingestionStatsAndErrors": {
                "type": "ingestionStatsAndErrors",
                "taskId": self.task_id,
                "payload": payload,
            }
        }

    # --- sub-tasks ----------------------------------------------------------------------

    def _sub_task(self, number: int, attempts: int) -> JsonObject:
        """SinglePhaseSubTaskSpec.newSubTask(numAttempts): the supervisor's spec
        with the split as its input source, its group and context."""
        spec = self.payload["spec"]
        split = self.splits[number]
        return {
            "type": SinglePhaseSubTaskType.name,
            "groupId": self.payload.get("groupId") or self.task_id,
            "supervisorTaskId": self.task_id,
            "subtaskSpecId": self._spec_id(number),
            "numAttempts": attempts,
            "spec": {
                **spec,
                "ioConfig": {**(spec.get("ioConfig") or {}), "inputSource": split},
            },
            "context": dict(self.payload.get("context") or {}),
        }

    def _stop_sub_tasks(self) -> None:
        for task_id in list(self.running):
            try:
                self.context.shutdown_task(task_id)
            except Exception as error:  # the store may be briefly unreachable
                self.context.log(f"Could not stop sub task[{task_id}]: {error}")
        self.running.clear()

    def _own_reports(self) -> dict[str, JsonObject]:
        """The reports of the sub-tasks this run submitted (a task posted by hand
        with this supervisor's id gets nothing published)."""
        reports = self.context.sub_task_reports()
        return {t: reports[t] for t in self.submitted if t in reports}

    def _spec_id(self, number: int) -> str:
        return f"{self.task_id}_{number}"

    def _submit(self, number: int) -> str:
        """TaskMonitor.submitTask: a new attempt at spec ``number``."""
        attempts = self.tries.get(number, 0)
        try:
            task_id = self.context.submit_task(self._sub_task(number, attempts))
        except ActionFailed:
            # This supervisor was shut down (its sub-tasks with it) meanwhile.
            self.context.log(f"Not submitting spec[{self._spec_id(number)}]")
            raise IngestStopped from None
        self.tries[number] = attempts + 1
        self.running[task_id] = number
        self.submitted.append(task_id)
        split = self.splits[number]
        self.context.log(
            f"Submitted sub task[{task_id}] for spec[{self._spec_id(number)}] "
            f"{json.dumps(split.get('files') or split.get('uris'))}"
        )
        return task_id

    def _discard_pushed(self, keep: Collection[str] = ()) -> None:
        """Remove the files the sub-tasks pushed, but those of ``keep`` (the
        sub-tasks whose segments are published): a failed attempt may have reported
        files its retry then wrote again at the same paths."""
        reports = self._own_reports()
        kept = {
            str(segment.get("loadSpec"))
            for task_id in keep
            for segment in (reports.get(task_id) or {}).get("segments") or []
        }
        for task_id, report in reports.items():
            if task_id in keep:
                continue
            for segment in report.get("segments") or []:
                if str(segment.get("loadSpec")) not in kept:
                    _delete_file(segment)

    def run(self) -> TaskResult:
        context = self.context
        self.state = "BUILD_SEGMENTS"
        context.log(
            f"Running [{len(self.splits)}] sub tasks, at most [{self.limit}] at once"
        )
        try:
            failed = self._run_sub_tasks()
            if failed is not None:
                self._stop_sub_tasks()
                context.log(f"Failed because of the failed sub task[{failed}]")
                self._discard_pushed()
                return self._fail(PHASE_FAILED)
            reports = self._own_reports()
            winners = [self.succeeded[n] for n in sorted(self.succeeded)]
            missing = [t for t in winners if t not in reports]
            if missing:
                # ParallelIndexPhaseRunner's check on a succeeded sub-task.
                raise IngestError(f"Missing reports from task[{missing[0]}]!")
            self.reports = {t: reports[t] for t in winners}
            # Reports of failed attempts (one killed after it reported): their
            # files go, but where a retry wrote the same paths.
            self._discard_pushed(keep=winners)
            return self._publish_all()
        except IngestStopped:
            self._stop_sub_tasks()
            self._discard_pushed()
            return self._fail(STOPPED)
        except BaseException as error:
            self._stop_sub_tasks()
            self._discard_pushed()
            if isinstance(error, ActionFailed | IngestError):
                return self._fail(str(error))
            raise

    def _run_sub_tasks(self) -> str | None:
        """Submit and watch the sub-tasks; the id of the first failed one, or None
        when all succeeded."""
        context = self.context
        submitted = 0
        last_report = 0.0
        while True:
            self._check_stop()
            while len(self.running) < self.limit and submitted < len(self.splits):
                self._submit(submitted)
                submitted += 1
            if not self.running:
                return None
            statuses = context.task_statuses([self.task_id, *self.running])
            own = statuses.pop(self.task_id, None)
            if own is not None and own.status is not TaskState.RUNNING:
                # Shut down: its sub-tasks failed with it; none is to be retried.
                raise IngestStopped
            for task_id, status in statuses.items():
                if status.status is TaskState.SUCCESS:
                    self.succeeded[self.running.pop(task_id)] = task_id
                    context.log(f"Sub task[{task_id}] succeeded")
                elif status.status is TaskState.FAILED:
                    number = self.running.pop(task_id)
                    tries = self.tries[number]
                    context.log(f"Sub task[{task_id}] failed: {status.error_msg}")
                    # TaskMonitor: retry while numTries() < maxRetry.
                    if tries >= self.max_retry:
                        context.log(
                            f"spec[{self._spec_id(number)}] failed after "
                            f"[{tries}] tries"
                        )
                        return task_id
                    context.log(
                        f"We still have more chances[{tries}/{self.max_retry}] to "
                        f"process the spec[{self._spec_id(number)}]."
                    )
                    self._submit(number)
            if time.monotonic() - last_report >= LIVE_REPORT_SECONDS:
                last_report = time.monotonic()
                self.reports = self._own_reports()
                self.live_reports = context.task_reports(
                    [t for t in self.running if t not in self.reports]
                )
                self._write_report(None, live=True)
            if self.running and not context.sleep(SUB_TASK_POLL_SECONDS):
                raise IngestStopped

    def _publish_all(self) -> TaskResult:
        """Every reported segment in one segmentTransactionalInsert. Overwriting,
        the core partitions of each chunk are the segments pushed into it (Druid
        annotates the sub-tasks' BuildingNumberedShardSpecs so at publish)."""
        documents: list[JsonObject] = []
        for report in self.reports.values():
            documents.extend(report.get("segments") or [])
        append = _get(self.payload, "spec", "ioConfig", "appendToExisting") is True
        if not append:
            counts: dict[tuple[str, str], int] = {}
            for document in documents:
                key = (str(document["interval"]), str(document["version"]))
                counts[key] = counts.get(key, 0) + 1
            documents = [
                {
                    **document,
                    "shardSpec": {
                        **document["shardSpec"],
                        "partitions": counts[
                            (str(document["interval"]), str(document["version"]))
                        ],
                    },
                }
                for document in documents
            ]
        documents.sort(
            key=lambda d: (d["interval"], d["version"], d["shardSpec"]["partitionNum"])
        )
        if self.context.should_stop():
            raise IngestStopped
        return self._publish(documents, self._discard_pushed)


class SubTaskRun(IndexRun):
    """SinglePhaseSubTask: ingest one split, push its segments, report them to the
    supervisor (a PushedSegmentsReport with the sub-task's own report), publish
    nothing. Segment ids come from the supervisor: overwriting, through its
    coordinating allocator (the supervisor's lock version, partitions numbered
    across its sub-tasks); appending, through ``segmentAllocate`` as the
    supervisor (Druid's SurrogateAction), ``subtaskSpecId`` being the sequence."""

    determines_intervals = False

    def __init__(self, context: TaskContext) -> None:
        super().__init__(context)
        self.supervisor_id = self.payload.get("supervisorTaskId")

    def sequence_name(self) -> str:
        spec_id = self.payload.get("subtaskSpecId")
        return spec_id if isinstance(spec_id, str) and spec_id else self.task_id

    def _allocate_action(self, action: SegmentAllocate) -> Any:
        return self.context.action(SurrogateAction(str(self.supervisor_id), action))

    def allocator(self, spec_json: JsonObject) -> Callable[[Interval, int], Allocation]:
        granularity_spec = _get(spec_json, "dataSchema", "granularitySpec") or {}
        if _get(spec_json, "ioConfig", "appendToExisting") is True:
            return self._allocate_by_action(granularity_spec)
        datasource = self.payload["spec"]["dataSchema"]["dataSource"]

        def allocate(chunk: Interval, index: int) -> Allocation:
            self._check_stop()
            result = self.context.allocate_from_supervisor(
                {
                    "dataSource": datasource,
                    "timestamp": format_druid(chunk.start),
                    "segmentGranularity": granularity_spec.get(
                        "segmentGranularity", "DAY"
                    ),
                    "sequenceName": self.sequence_name(),
                    "previousSegmentId": self._previous,
                    "lockType": self.lock_type,
                }
            )
            if result is None:
                raise IngestError(f"Cannot acquire a lock for interval[{chunk}]")
            shard = result.get("shardSpec") or {}
            self._previous = str(SegmentIdWithShardSpec.from_json(result).id)
            return Allocation(str(result["version"]), int(shard["partitionNum"]), 0)

        return allocate

    def report(self, error_msg: str | None, *, live: bool = False) -> JsonObject:
        """SinglePhaseSubTask's reports: buildSegments only; the completion report
        says COMPLETED even for a failure, as Druid's does."""
        if live:
            return super().report(error_msg, live=True)
        ingestion = self.ingestion
        totals = ingestion.stats.to_json() if ingestion is not None else _ZERO_STATS
        events = ingestion.unparseable_events() if ingestion is not None else []
        return {
            "ingestionStatsAndErrors": {
                "type": "ingestionStatsAndErrors",
                "taskId": self.task_id,
                "payload": {
                    "ingestionState": "COMPLETED",
                    "unparseableEvents": {"buildSegments": events},
                    "rowStats": {"buildSegments": dict(totals)},
                    "errorMsg": error_msg,
                    "segmentAvailabilityConfirmed": False,
                    "segmentAvailabilityWaitTimeMs": 0,
                    "recordsProcessed": None,
                },
            }
        }

    def _finish(self, segments: list[SegmentDescription]) -> TaskResult:
        own = self.report(None)
        try:
            self.context.report_to_supervisor(
                {
                    "type": "pushed_segments",
                    "taskId": self.task_id,
                    "oldSegments": [],
                    "segments": [segment.to_json() for segment in segments],
                    "taskReport": own,
                }
            )
        except BaseException:
            _delete_files(segments)
            raise
        self.state = "COMPLETED"
        self.context.log(
            f"Pushed [{len(segments)}] segments, reported to supervisor "
            f"task[{self.supervisor_id}]"
        )
        self._write_report(None)
        return TaskResult(TaskState.SUCCESS)


def _delete_file(segment: JsonObject) -> None:
    load_spec = segment.get("loadSpec")
    if isinstance(load_spec, dict):
        try:
            delete_segment_file(load_spec)
        except OSError:
            return
