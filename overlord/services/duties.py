"""Periodic duties any server runs: stale pending segments (Druid's coordinator duty
KillStalePendingSegments, spec §4)."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session

from overlord.store import segments as segment_store
from overlord.store import tasks as task_store
from overlord.timeutil import MIN_DATETIME, format_druid, minus_clamped

log = logging.getLogger(__name__)


def stale_pending_segments_cutoff(
    session: Session, *, now: dt.datetime, buffer: dt.timedelta
) -> dt.datetime:
    """Druid's rule: the earliest creation time among active tasks and the newest
    complete task (now when there are none), minus the buffer (P1D). Pending
    segments of active tasks are never older than that."""
    candidates = [
        created
        for created in (
            task_store.earliest_active_created(session),
            task_store.latest_complete_created(session),
        )
        if created is not None
    ]
    return minus_clamped(min(candidates, default=now), buffer)


def kill_stale_pending_segments(
    session: Session, *, now: dt.datetime, buffer: dt.timedelta
) -> dict[str, int]:
    """Delete, per datasource, pending segments created before the cutoff.

    Unlike Druid (issue #9245) every datasource with pending segments is cleaned,
    not only those with published segments.
    """
    cutoff = stale_pending_segments_cutoff(session, now=now, buffer=buffer)
    removed: dict[str, int] = {}
    for datasource in segment_store.pending_segment_datasources(session):
        count = segment_store.delete_pending_segments_created_between(
            session, datasource, MIN_DATETIME, cutoff
        )
        if count:
            removed[datasource] = count
            log.info(
                "Killed [%d] pending segments created before [%s] for datasource[%s]",
                count,
                format_druid(cutoff),
                datasource,
            )
    return removed
