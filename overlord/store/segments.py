"""SQL for pending segments and published segments."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from overlord.store.models import PendingSegment, Segment
from overlord.timeutil import Interval


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
) -> list[Segment]:
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
    return list(session.scalars(statement))


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
    session: Session,
    *,
    segment_id: str,
    datasource: str,
    interval: Interval,
    version: str,
    payload: str,
    now: dt.datetime,
) -> bool:
    """Publish a segment once: a retried insert of the same id is a no-op."""
    if session.get(Segment, segment_id) is not None:
        return False
    session.add(
        Segment(
            id=segment_id,
            dataSource=datasource,
            created_date=now,
            start=interval.start,
            end=interval.end,
            partitioned=True,
            version=version,
            used=True,
            payload=payload,
            used_status_last_updated=now,
            upgraded_from_segment_id=None,
        )
    )
    session.flush()
    return True
