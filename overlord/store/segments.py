"""SQL for pending segments and published segments.

Reads hand services frozen rows (``SegmentRow``, ``PendingSegmentRow``), never ORM
objects.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, delete, insert, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from overlord.segments import DataSegment, SegmentIdWithShardSpec
from overlord.store.models import PendingSegment, Segment
from overlord.timeutil import Interval


@dataclass(frozen=True)
class SegmentRow:
    """A published segment: its key columns and its DataSegment JSON."""

    id: str
    datasource: str
    start: dt.datetime
    end: dt.datetime
    version: str
    used: bool
    payload: str


@dataclass(frozen=True)
class PendingSegmentRow:
    """An allocated, not yet published segment id and its SegmentIdWithShardSpec."""

    id: str
    datasource: str
    start: dt.datetime
    end: dt.datetime
    sequence_name: str
    sequence_prev_id: str
    task_allocator_id: str | None
    payload: str
    created_date: dt.datetime | None = None


def _segment_rows(segments: Iterable[Segment]) -> list[SegmentRow]:
    return [
        SegmentRow(
            id=row.id,
            datasource=row.dataSource,
            start=row.start,
            end=row.end,
            version=row.version,
            used=bool(row.used),
            payload=row.payload,
        )
        for row in segments
    ]


def _pending_rows(rows: Iterable[PendingSegment]) -> list[PendingSegmentRow]:
    return [
        PendingSegmentRow(
            id=row.id,
            datasource=row.dataSource,
            start=row.start,
            end=row.end,
            sequence_name=row.sequence_name,
            sequence_prev_id=row.sequence_prev_id,
            task_allocator_id=row.task_allocator_id,
            payload=row.payload,
            created_date=row.created_date,
        )
        for row in rows
    ]


def delete_pending_segments_created_between(
    session: Session, datasource: str, start: dt.datetime, end: dt.datetime
) -> int:
    """Delete a datasource's pending segments whose ``created_date`` is in [start, end).

    Druid keys this cleanup on the allocation time, not the segment interval.
    """
    result = session.execute(
        delete(PendingSegment)
        .where(
            PendingSegment.dataSource == datasource,
            PendingSegment.created_date >= start,
            PendingSegment.created_date < end,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def pending_segment_datasources(session: Session) -> list[str]:
    return list(
        session.scalars(
            select(PendingSegment.dataSource)
            .distinct()
            .order_by(PendingSegment.dataSource)
        )
    )


def segments_in_intervals(
    session: Session,
    datasource: str,
    intervals: list[Interval],
    *,
    used: bool,
    limit: int | None,
) -> list[SegmentRow]:
    """Segments of a datasource inside any of the intervals, oldest first."""
    condition = or_(
        *[and_(Segment.start >= i.start, Segment.end <= i.end) for i in intervals]
    )
    statement = (
        select(Segment)
        .where(Segment.dataSource == datasource, Segment.used.is_(used), condition)
        .order_by(Segment.start, Segment.id)
    )
    if limit is not None:
        statement = statement.limit(limit)
    return _segment_rows(session.scalars(statement))


def delete_segments(session: Session, segment_ids: list[str]) -> int:
    if not segment_ids:
        return 0
    result = session.execute(
        delete(Segment)
        .where(Segment.id.in_(segment_ids))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def insert_segment_if_absent(
    session: Session, segment: DataSegment, *, now: dt.datetime
) -> bool:
    """Publish a segment once; False when its id is already published.

    An ``INSERT`` inside a savepoint, the primary key deciding: a retried publish
    and a concurrent publish of the same id (peons retry every 5xx, spec §1.15.1)
    both end with one row, and the duplicate leaves the transaction usable. A
    read-then-insert would race: both readers see no row, the second insert fails.
    The payload is the DataSegment JSON with its ``identifier``, as Druid stores it.
    """
    values = {
        "id": str(segment.id),
        "dataSource": segment.datasource,
        "created_date": now,
        "start": segment.interval.start,
        "end": segment.interval.end,
        "partitioned": segment.shard_spec.partitioned,
        "version": segment.version,
        "used": True,
        "payload": json.dumps(segment.to_json(identifier=True), separators=(",", ":")),
        "used_status_last_updated": now,
        "upgraded_from_segment_id": None,
    }
    try:
        with session.begin_nested():
            session.connection().execute(_INSERT_SEGMENT, values)
    except IntegrityError:
        return False
    return True


_INSERT_SEGMENT = insert(Segment)


def used_segments_overlapping(
    session: Session, datasource: str, interval: Interval
) -> list[SegmentRow]:
    return _segment_rows(
        session.scalars(
            select(Segment)
            .where(
                Segment.dataSource == datasource,
                Segment.used == true(),
                Segment.start < interval.end,
                Segment.end > interval.start,
            )
            .order_by(Segment.start, Segment.id)
        )
    )


def pending_for_sequence(
    session: Session, datasource: str, sequence_name: str, previous_id: str | None
) -> list[PendingSegmentRow]:
    """Pending rows of one sequence (and previous id, unless lineage is skipped)."""
    statement = select(PendingSegment).where(
        PendingSegment.dataSource == datasource,
        PendingSegment.sequence_name == sequence_name,
    )
    if previous_id is not None:
        statement = statement.where(PendingSegment.sequence_prev_id == previous_id)
    return _pending_rows(
        session.scalars(statement.order_by(PendingSegment.created_date))
    )


def pending_overlapping(
    session: Session, datasource: str, interval: Interval
) -> list[PendingSegmentRow]:
    return _pending_rows(
        session.scalars(
            select(PendingSegment).where(
                PendingSegment.dataSource == datasource,
                PendingSegment.start < interval.end,
                PendingSegment.end > interval.start,
            )
        )
    )


def insert_pending_segment(
    session: Session,
    segment: SegmentIdWithShardSpec,
    *,
    sequence_name: str,
    sequence_prev_id: str,
    sha1: str,
    task_allocator_id: str,
    now: dt.datetime,
) -> bool:
    """Insert a pending segment; False when its id or sha1 key already exists (a
    concurrent duplicate: the caller's retry finds it)."""
    try:
        with session.begin_nested():
            session.add(
                PendingSegment(
                    id=str(segment.id),
                    dataSource=segment.datasource,
                    created_date=now,
                    start=segment.interval.start,
                    end=segment.interval.end,
                    sequence_name=sequence_name,
                    sequence_prev_id=sequence_prev_id,
                    sequence_name_prev_id_sha1=sha1,
                    upgraded_from_segment_id=None,
                    task_allocator_id=task_allocator_id,
                    payload=json.dumps(segment.to_json(), separators=(",", ":")),
                )
            )
            session.flush()
    except IntegrityError:
        return False
    return True


def used_datasources(session: Session) -> list[str]:
    """Datasources with at least one used segment, by name."""
    return list(
        session.scalars(
            select(Segment.dataSource)
            .where(Segment.used == true())
            .distinct()
            .order_by(Segment.dataSource)
        )
    )


def used_segments_of(session: Session, datasource: str) -> list[SegmentRow]:
    """Every used segment of a datasource, by start then id."""
    return _segment_rows(
        session.scalars(
            select(Segment)
            .where(Segment.dataSource == datasource, Segment.used == true())
            .order_by(Segment.start, Segment.id)
        )
    )


def mark_unused(session: Session, segment_ids: list[str], now: dt.datetime) -> int:
    """Mark segments unused (``used_status_last_updated`` = now)."""
    if not segment_ids:
        return 0
    result = session.execute(
        update(Segment)
        .where(Segment.id.in_(segment_ids), Segment.used == true())
        .values(used=False, used_status_last_updated=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def pending_segments_of(
    session: Session, datasource: str, limit: int
) -> list[PendingSegmentRow]:
    """A datasource's pending segments, newest first (the console's list)."""
    rows = session.scalars(
        select(PendingSegment)
        .where(PendingSegment.dataSource == datasource)
        .order_by(PendingSegment.created_date.desc(), PendingSegment.id)
        .limit(limit)
    )
    return _pending_rows(rows)
