"""``segmentAllocate`` (spec §1.15.4, §3.3): pending segments with Druid's id format,
lineage and the unique ``sequence_name_prev_id_sha1``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import struct

from sqlalchemy.orm import Session

from overlord.errors import ActionFailed
from overlord.segments import SegmentIdWithShardSpec, ShardSpec
from overlord.services import lockbox
from overlord.services.granularity import bucket, finer_or_equal
from overlord.store import locks as lock_store
from overlord.store import segments as segment_store
from overlord.store.segments import PendingSegmentRow, SegmentRow
from overlord.taskactions import SegmentAllocate
from overlord.timeutil import Interval, to_millis


def sequence_sha1(
    sequence_name: str,
    previous_segment_id: str | None,
    interval: Interval,
    version: str,
    *,
    skip_lineage_check: bool,
) -> str:
    """Druid's PendingSegmentRecord key: upper-case hex SHA-1 of the sequence name,
    0xFF, the previous id (or the interval's start and end millis as little-endian
    longs when the lineage check is skipped), 0xFF, the version."""
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(sequence_name.encode())
    digest.update(b"\xff")
    if skip_lineage_check:
        digest.update(struct.pack("<q", to_millis(interval.start)))
        digest.update(struct.pack("<q", to_millis(interval.end)))
    else:
        digest.update((previous_segment_id or "").encode())
    digest.update(b"\xff")
    digest.update(version.encode())
    return digest.hexdigest().upper()


def allocate(
    session: Session,
    *,
    task_id: str,
    group_id: str,
    task_datasource: str,
    priority: int,
    action: SegmentAllocate,
    now: dt.datetime,
) -> SegmentIdWithShardSpec | None:
    """Allocate (or re-find) the pending segment of one row; None when impossible."""
    datasource = action.datasource
    if datasource != task_datasource:
        raise ActionFailed(
            f"Task dataSource must match action dataSource, [{task_datasource}] != [{datasource}]."
        )
    timestamp = action.timestamp
    row_interval = bucket(action.query_granularity, timestamp)

    used = segment_store.used_segments_overlapping(session, datasource, row_interval)
    if used:
        chunk = Interval(used[0].start, used[0].end)
        candidates = [chunk] if chunk.contains(row_interval) else []
    else:
        candidates = [
            candidate
            for candidate in (
                bucket(g, timestamp)
                for g in finer_or_equal(action.preferred_segment_granularity)
            )
            if candidate.contains(row_interval)
        ]
    lock_store.lock_scheduler(session)
    for candidate in candidates:
        lock = lockbox.try_acquire(
            session,
            lockbox.LockRequest(
                task_id,
                group_id,
                datasource,
                candidate,
                action.task_lock_type,
                priority,
            ),
            now,
        )
        if lock is None:
            continue
        if lock.revoked:
            raise ActionFailed(
                f"The lock for interval[{candidate}] is preempted and no longer valid"
            )
        result = _allocate_in_chunk(
            session,
            datasource=datasource,
            interval=candidate,
            lock_version=lock.version,
            sequence_name=action.sequence_name,
            previous=action.previous_segment_id,
            skip_lineage=action.skip_segment_lineage_check,
            overwrite=action.overwrite,
            allocator=task_id,
            now=now,
        )
        if result is not None:
            return result
    return None


def _allocate_in_chunk(
    session: Session,
    *,
    datasource: str,
    interval: Interval,
    lock_version: str,
    sequence_name: str,
    previous: str | None,
    skip_lineage: bool,
    overwrite: bool,
    allocator: str,
    now: dt.datetime,
) -> SegmentIdWithShardSpec | None:
    used = segment_store.used_segments_overlapping(session, datasource, interval)
    versions = {segment.version for segment in used}
    if len(versions) > 1:
        return None
    used_version = next(iter(versions), None)
    # Idempotency: the same sequence (and previous id) gets the same segment back.
    for row in segment_store.pending_for_sequence(
        session,
        datasource,
        sequence_name,
        None if skip_lineage else (previous or ""),
    ):
        found = _pending(row)
        if used_version is not None and found.version != used_version:
            continue
        same_interval = row.start == interval.start and row.end == interval.end
        if skip_lineage and not same_interval:
            continue
        return found if same_interval else None

    pending = segment_store.pending_overlapping(session, datasource, interval)
    partitions = [_pending(row).shard_spec.partition_num for row in pending]
    partitions += [_shard(segment).partition_num for segment in used]
    if any((row.start, row.end) != (interval.start, interval.end) for row in pending):
        return None  # a conflicting granularity already allocated here
    first = 32768 if overwrite else 0
    partition = max(partitions) + 1 if partitions else first
    core = max((_shard(s).partitions for s in used), default=0)
    pending_versions = sorted(_pending(row).version for row in pending)
    version = used_version or (
        pending_versions[-1] if pending_versions else lock_version
    )
    allocated = SegmentIdWithShardSpec(
        datasource=datasource,
        interval=interval,
        version=version,
        shard_spec=ShardSpec.numbered(partition, core),
    )
    inserted = segment_store.insert_pending_segment(
        session,
        allocated,
        sequence_name=sequence_name,
        sequence_prev_id="" if skip_lineage else (previous or ""),
        sha1=sequence_sha1(
            sequence_name, previous, interval, version, skip_lineage_check=skip_lineage
        ),
        task_allocator_id=allocator,
        now=now,
    )
    return allocated if inserted else None


def _pending(row: PendingSegmentRow) -> SegmentIdWithShardSpec:
    return SegmentIdWithShardSpec.from_json(json.loads(row.payload))


def _shard(row: SegmentRow) -> ShardSpec:
    document = json.loads(row.payload)
    return ShardSpec.from_json(document.get("shardSpec"))
