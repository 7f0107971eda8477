"""Druid's Coordinator metadata views (``MetadataResource``) and the overshadowed
segments rule its duty applies, over the segments table."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy.orm import Session

from overlord.segments import DataSegment
from overlord.store import segments as segment_store


def used_datasources(session: Session) -> list[str]:
    """Names of the datasources with used segments."""
    return segment_store.used_datasources(session)


def used_segments(session: Session, datasource: str) -> list[dict[str, Any]] | None:
    """The DataSegment JSON of a datasource's used segments; None when it has none."""
    rows = segment_store.used_segments_of(session, datasource)
    if not rows:
        return None
    return [json.loads(row.payload) for row in rows]


def mark_overshadowed_unused(
    session: Session, published: tuple[DataSegment, ...], now: dt.datetime
) -> int:
    """Mark unused the used segments that the just published ones overshadow: an
    older version inside the interval of a newer published segment.

    Druid's Coordinator does this in its MarkOvershadowedSegmentsAsUnused duty a
    little later; overlord runs no Coordinator, so it happens in the publishing
    transaction (the overshadowed segments are then what ``kill`` removes).
    """
    overshadowed: list[str] = []
    for segment in published:
        interval = segment.interval
        for row in segment_store.used_segments_overlapping(
            session, segment.datasource, interval
        ):
            if (
                row.version < segment.version
                and interval.start <= row.start
                and row.end <= interval.end
            ):
                overshadowed.append(row.id)
    return segment_store.mark_unused(session, sorted(set(overshadowed)), now)
