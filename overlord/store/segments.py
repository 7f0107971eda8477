"""SQL for pending segments and published segments."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlalchemy.orm import Session

from overlord.store.models import PendingSegment


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
