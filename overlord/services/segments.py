"""Pending-segment rules: the manual delete and its active-task guard."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

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


def list_pending_segments(
    session: Session, datasource: str, limit: int = 1000
) -> list[dict[str, Any]]:
    """The pending segments of a datasource as the console shows them, newest
    first (Druid's API has no such list; this serves overlord's own page)."""
    documents = []
    for row in segment_store.pending_segments_of(session, datasource, limit):
        try:
            allocated = json.loads(row.payload)
        except ValueError:
            allocated = {}
        shard = allocated.get("shardSpec") if isinstance(allocated, dict) else None
        documents.append(
            {
                "id": row.id,
                "interval": str(Interval(row.start, row.end)),
                "version": allocated.get("version")
                if isinstance(allocated, dict)
                else None,
                "partitionNum": shard.get("partitionNum")
                if isinstance(shard, dict)
                else None,
                "sequenceName": row.sequence_name,
                "taskAllocatorId": row.task_allocator_id,
                "createdDate": format_druid(row.created_date)
                if row.created_date is not None
                else None,
            }
        )
    return documents
