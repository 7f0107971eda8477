"""Pending-segment rules: the manual delete and its active-task guard."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from overlord.errors import InvalidInput
from overlord.services.tasks import dump_json
from overlord.store import audit as audit_store
from overlord.store import segments as segment_store
from overlord.store import tasks as task_store
from overlord.store.audit import AuditInfo
from overlord.timeutil import MAX_DATETIME, Interval, format_druid


def delete_pending_segments(
    session: Session,
    datasource: str,
    interval: Interval,
    *,
    now: dt.datetime,
    audit: AuditInfo,
) -> int:
    """Delete pending segments *created* within ``interval``, unless the interval
    reaches the creation time of an active task of the datasource.

    Raises:
        InvalidInput: Druid's refusal naming the earliest active task.
    """
    earliest = task_store.earliest_active_task(session, datasource)
    if earliest is not None:
        task_id, created = earliest
        if interval.overlaps(Interval(created, MAX_DATETIME)):
            raise InvalidInput(
                f"Cannot delete pendingSegments for datasource[{datasource}] as there "
                f"is at least one active task[{task_id}] created at"
                f"[{format_druid(created)}] that overlaps with the delete "
                f"interval[{interval}]. Please retry when there are no active tasks."
            )
    deleted = segment_store.delete_pending_segments_created_between(
        session, datasource, interval.start, interval.end
    )
    audit_store.insert_audit(
        session,
        key=datasource,
        kind="pendingSegments.delete",
        payload=dump_json({"interval": str(interval), "numDeleted": deleted}),
        info=audit,
        now=now,
    )
    return deleted
