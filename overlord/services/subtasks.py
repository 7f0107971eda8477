"""What Druid's parallel sub-tasks ask of their supervisor, kept in the store.

In Druid a ``single_phase_sub_task`` talks to its ``index_parallel`` supervisor over
HTTP (the supervisor's chat handler): it asks it for segment ids
(``/segment/allocate``, SinglePhaseParallelIndexTaskRunner.allocateNewSegment) and
posts it a PushedSegmentsReport; the supervisor keeps both in memory. Here either
task may run on any worker, so the supervisor's part is done in the store, in the
caller's transaction:

* ``allocate_for_supervisor``: a segment id under the supervisor's time-chunk lock
  (its version, partitions numbered across all its sub-tasks), as a pending segment
  allocated *by the supervisor* (so it goes when the supervisor ends);
* ``record_pushed_segments`` / ``pushed_segments_reports``: the reports.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy.orm import Session

from overlord.errors import ActionFailed, InvalidInput
from overlord.segments import LockType, SegmentIdWithShardSpec, ShardSpec
from overlord.services import lockbox
from overlord.services.allocation import sequence_sha1
from overlord.services.granularity import bucket, parse_granularity
from overlord.store import locks as lock_store
from overlord.store import reports as report_store
from overlord.store import segments as segment_store
from overlord.store import tasks as task_store
from overlord.tasktypes.base import JsonObject
from overlord.timeutil import InvalidTime, parse_druid_datetime


def supervisor_identity(
    session: Session, task: JsonObject
) -> tuple[str, str, str, int]:
    """Id, group, datasource and priority of the posting sub-task's supervisor.

    Raises:
        ActionFailed: no supervisor, or it is no longer running.
    """
    supervisor_id = task.get("supervisorTaskId")
    if not isinstance(supervisor_id, str) or not supervisor_id:
        raise ActionFailed("supervisorTaskId must not be null")
    # Locked: the supervisor cannot end (and delete the pending segments it
    # allocated) between this check and the caller's commit.
    row = task_store.get_task(session, supervisor_id, for_update=True)
    if row is None:
        # SurrogateAction's text for a surrogate the task storage does not have.
        raise ActionFailed(f"Can't find surrogate task[{supervisor_id}]")
    if not row.active:
        raise ActionFailed(f"Supervisor task[{supervisor_id}] is not running")
    return row.task_id, row.group_id, row.datasource, row.priority


def allocate_for_supervisor(
    session: Session, task: JsonObject, action: JsonObject, now: dt.datetime
) -> JsonObject | None:
    """SinglePhaseParallelIndexTaskRunner.allocateNewSegment (overwrite mode, a
    time-chunk lock): the chunk of ``timestamp`` at ``segmentGranularity``, the
    version of the supervisor's lock on it (taken now when the spec has no
    intervals), the next partition number of the chunk. The same ``sequenceName``
    and ``previousSegmentId`` get the same id back (a retried allocation). None when
    the lock cannot be had."""
    supervisor = supervisor_identity(session, task)
    supervisor_id, group_id, datasource, priority = supervisor
    if not task_store.is_active(session, str(task.get("id"))):
        raise ActionFailed(f"Task[{task.get('id')}] is not running")
    if action.get("dataSource") != datasource:
        raise ActionFailed(
            f"Task dataSource must match action dataSource, [{datasource}] != "
            f"[{action.get('dataSource')}]."
        )
    sequence_name = action.get("sequenceName")
    if not isinstance(sequence_name, str):
        raise InvalidInput("Missing required creator property 'sequenceName'")
    previous = action.get("previousSegmentId")
    previous = previous if isinstance(previous, str) else ""
    try:
        timestamp = parse_druid_datetime(str(action.get("timestamp")))
    except InvalidTime as error:
        raise InvalidInput(str(error)) from error
    chunk = bucket(parse_granularity(action.get("segmentGranularity")), timestamp)
    lock_name = action.get("lockType") or "EXCLUSIVE"
    if lock_name not in tuple(LockType):
        raise InvalidInput(f"Unknown lockType[{lock_name}]")
    lock_type = LockType(lock_name)

    lock_store.lock_scheduler(session)
    lock = lockbox.try_acquire(
        session,
        lockbox.LockRequest(
            supervisor_id, group_id, datasource, chunk, lock_type, priority
        ),
        now,
    )
    if lock is None:
        return None
    if lock.revoked:
        raise ActionFailed(f"Lock for interval [{chunk}] was revoked.")
    for row in segment_store.pending_for_sequence(
        session, datasource, sequence_name, previous
    ):
        if (row.start, row.end) == (chunk.start, chunk.end):
            document: JsonObject = json.loads(row.payload)
            return document
    partitions = [
        _partition_of(document)
        for document in (
            json.loads(row.payload)
            for row in segment_store.pending_overlapping(session, datasource, chunk)
        )
        if document.get("version") == lock.version
    ]
    partition = max(partitions) + 1 if partitions else 0
    allocated = SegmentIdWithShardSpec(
        datasource=datasource,
        interval=chunk,
        version=lock.version,
        # Druid's BuildingNumberedShardSpec: the supervisor sets the core partitions
        # when it publishes.
        shard_spec=ShardSpec.numbered(partition, 0),
    )
    inserted = segment_store.insert_pending_segment(
        session,
        allocated,
        sequence_name=sequence_name,
        sequence_prev_id=previous,
        sha1=sequence_sha1(
            sequence_name, previous, chunk, lock.version, skip_lineage_check=False
        ),
        task_allocator_id=supervisor_id,
        now=now,
    )
    document = allocated.to_json()
    return document if inserted else None


def _partition_of(document: dict[str, Any]) -> int:
    shard = document.get("shardSpec") or {}
    return int(shard.get("partitionNum", 0)) if isinstance(shard, dict) else 0


def record_pushed_segments(
    session: Session, task: JsonObject, report: JsonObject, now: dt.datetime
) -> None:
    """Keep a sub-task's PushedSegmentsReport for its supervisor. A retried report
    must equal the first (ParallelIndexPhaseRunner.collectReport).

    Raises:
        ActionFailed: no running supervisor, the sub-task itself was stopped, or a
            different second report.
    """
    supervisor_id = supervisor_identity(session, task)[0]
    task_id = str(task.get("id"))
    if not task_store.is_active(session, task_id):
        # Shut down meanwhile: its files are its own to remove, not the supervisor's.
        raise ActionFailed(f"Task[{task_id}] is not running")
    text = json.dumps(report, separators=(",", ":"), ensure_ascii=False)
    stored = report_store.put_pushed_segments_report(
        session,
        supervisor_task_id=supervisor_id,
        task_id=task_id,
        report=text,
        now=now,
    )
    if stored != text:
        raise ActionFailed(
            f"task[{task_id}] sent two or more reports and previous report"
            f"[{stored}] is different from the current one[{text}]"
        )


def pushed_segments_reports(
    session: Session, supervisor_task_id: str
) -> dict[str, JsonObject]:
    """The reports the supervisor's sub-tasks left, by sub-task id."""
    return {
        task_id: json.loads(text)
        for task_id, text in report_store.pushed_segments_reports(
            session, supervisor_task_id
        ).items()
    }
