"""``segmentAllocate`` (spec §1.15.4, §3.3): pending segments with Druid's id format,
lineage and the unique ``sequence_name_prev_id_sha1``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import struct
from typing import Any

from sqlalchemy.orm import Session

from overlord.errors import ActionFailed, InvalidInput
from overlord.services import lockbox
from overlord.services.granularity import bucket, finer_or_equal, parse_granularity
from overlord.store import locks as lock_store
from overlord.store import segments as segment_store
from overlord.timeutil import (
    Interval,
    InvalidTime,
    format_druid,
    parse_druid_datetime,
    to_millis,
)


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


def segment_id(
    datasource: str, interval: Interval, version: str, partition: int
) -> str:
    text = f"{datasource}_{format_druid(interval.start)}_{format_druid(interval.end)}_{version}"
    return text if partition == 0 else f"{text}_{partition}"


def allocate(
    session: Session,
    identity: tuple[str, str, str, int],
    action: dict[str, Any],
    now: dt.datetime,
) -> dict[str, Any] | None:
    """Allocate (or re-find) the pending segment of one row; None when impossible."""
    task_id, group_id, task_datasource, priority = identity
    datasource = action.get("dataSource")
    if datasource != task_datasource:
        raise ActionFailed(
            f"Task dataSource must match action dataSource, [{task_datasource}] != [{datasource}]."
        )
    sequence_name = action.get("sequenceName")
    if not isinstance(sequence_name, str):
        raise InvalidInput("Missing required creator property 'sequenceName'")
    try:
        timestamp = parse_druid_datetime(str(action.get("timestamp")))
    except InvalidTime as error:
        raise InvalidInput(str(error)) from error
    query = parse_granularity(action.get("queryGranularity"))
    preferred = parse_granularity(action.get("preferredSegmentGranularity"))
    previous = action.get("previousSegmentId")
    skip_lineage = action.get("skipSegmentLineageCheck") is True
    shard = action.get("shardSpecFactory") or {"type": "numbered"}
    if not isinstance(shard, dict) or shard.get("type") not in (
        "numbered",
        "numbered_overwrite",
    ):
        raise InvalidInput(f"Unsupported shardSpecFactory[{shard}]")
    lock_type = action.get("taskLockType") or "EXCLUSIVE"
    row_interval = bucket(query, timestamp)

    used = segment_store.used_segments_overlapping(session, datasource, row_interval)
    if used:
        chunk = Interval(used[0].start, used[0].end)
        candidates = [chunk] if chunk.contains(row_interval) else []
    else:
        candidates = [
            candidate
            for candidate in (bucket(g, timestamp) for g in finer_or_equal(preferred))
            if candidate.contains(row_interval)
        ]
    lock_store.lock_scheduler(session)
    for candidate in candidates:
        lock = lockbox.try_acquire(
            session,
            lockbox.LockRequest(
                task_id, group_id, datasource, candidate, lock_type, priority
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
            sequence_name=sequence_name,
            previous=previous if isinstance(previous, str) else None,
            skip_lineage=skip_lineage,
            overwrite=shard.get("type") == "numbered_overwrite",
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
) -> dict[str, Any] | None:
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
        document = json.loads(row.payload)
        if used_version is not None and document.get("version") != used_version:
            continue
        same_interval = row.start == interval.start and row.end == interval.end
        if skip_lineage and not same_interval:
            continue
        return document if same_interval else None

    pending = segment_store.pending_overlapping(session, datasource, interval)
    partitions = [_partition_of(json.loads(row.payload)) for row in pending]
    partitions += [_partition_of(json.loads(segment.payload)) for segment in used]
    if any((row.start, row.end) != (interval.start, interval.end) for row in pending):
        return None  # a conflicting granularity already allocated here
    first = 32768 if overwrite else 0
    partition = max(partitions) + 1 if partitions else first
    core = max((_core_of(json.loads(s.payload)) for s in used), default=0)
    pending_versions = sorted(json.loads(row.payload).get("version") for row in pending)
    version = used_version or (
        pending_versions[-1] if pending_versions else lock_version
    )
    document = {
        "dataSource": datasource,
        "interval": str(interval),
        "version": version,
        "shardSpec": {
            "type": "numbered",
            "partitionNum": partition,
            "partitions": core,
        },
    }
    new_id = segment_id(datasource, interval, version, partition)
    inserted = segment_store.insert_pending_segment(
        session,
        segment_id=new_id,
        datasource=datasource,
        interval=interval,
        sequence_name=sequence_name,
        sequence_prev_id="" if skip_lineage else (previous or ""),
        sha1=sequence_sha1(
            sequence_name, previous, interval, version, skip_lineage_check=skip_lineage
        ),
        payload=json.dumps(document, separators=(",", ":")),
        task_allocator_id=allocator,
        now=now,
    )
    return document if inserted else None


def _partition_of(document: dict[str, Any]) -> int:
    shard = document.get("shardSpec") or {}
    return int(shard.get("partitionNum", 0)) if isinstance(shard, dict) else 0


def _core_of(document: dict[str, Any]) -> int:
    shard = document.get("shardSpec") or {}
    return int(shard.get("partitions", 0)) if isinstance(shard, dict) else 0
