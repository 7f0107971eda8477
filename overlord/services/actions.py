"""Task actions (Druid's ``POST /action``, spec §1.15): the one place tasks touch
locks and segments. The HTTP endpoint and a running task's TaskContext share it.

Every action is idempotent under retries (Druid's peons retry on 5xx).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from overlord import tasktypes
from overlord.errors import ActionFailed, InvalidInput
from overlord.segments import DataSegment
from overlord.services import allocation, coordinator, lockbox
from overlord.services.locks import lock_json
from overlord.store import locks as lock_store
from overlord.store import segments as segment_store
from overlord.store import tasks as task_store
from overlord.taskactions import (
    LockAcquire,
    LockList,
    LockRelease,
    LockTryAcquire,
    SegmentAllocate,
    SegmentInsertion,
    SegmentListUnused,
    SegmentListUsed,
    SegmentNuke,
    SegmentTransactionalInsert,
    SurrogateAction,
    TaskAction,
)
from overlord.tasktypes.base import JsonObject
from overlord.timeutil import Interval

Json = Any


@dataclass(frozen=True)
class TaskIdentity:
    """Who performs an action: taken from the posted task JSON (Druid builds its
    action client from the body, not from the stored task)."""

    task_id: str
    group_id: str
    datasource: str
    priority: int


def _task_identity(task: JsonObject) -> TaskIdentity:
    type_name = task.get("type")
    task_type = tasktypes.lookup(type_name) if isinstance(type_name, str) else None
    if task_type is None:
        raise InvalidInput(
            f"Could not resolve type id '{type_name}' as a subtype of Task"
        )
    task_id = task.get("id")
    if not isinstance(task_id, str) or not task_id:
        raise InvalidInput("Task 'id' must not be null")
    return TaskIdentity(
        task_id,
        task_type.group_id(task, task_id),
        task_type.datasource(task),
        task_type.priority(task),
    )


def perform_action(
    session: Session, task: JsonObject, action: TaskAction, now: dt.datetime
) -> Json:
    """Run one action for ``task`` and return its ``result`` value (JSON).

    Raises:
        InvalidInput: the posted task cannot act (HTTP 400).
        ActionFailed: the action could not be done (HTTP 500; peons retry).
    """
    if isinstance(action, SurrogateAction):
        return _surrogate(session, action, now)
    handler = _HANDLERS[type(action)]
    return handler(session, _task_identity(task), action, now)


def _surrogate(session: Session, action: SurrogateAction, now: dt.datetime) -> Json:
    """Druid's SurrogateAction: ``taskAction`` performed as the stored task
    ``surrogateId`` (a parallel sub-task allocating under its supervisor's locks)."""
    row = task_store.get_task(session, action.surrogate_id)
    if row is None:
        raise ActionFailed(f"Can't find surrogate task[{action.surrogate_id}]")
    return perform_action(session, json.loads(row.payload), action.task_action, now)


def _lock_request(
    identity: TaskIdentity, action: LockTryAcquire | LockAcquire
) -> lockbox.LockRequest:
    return lockbox.LockRequest(
        task_id=identity.task_id,
        group_id=identity.group_id,
        datasource=identity.datasource,
        interval=action.interval,
        lock_type=action.lock_type,
        priority=identity.priority,
    )


def _lock_try_acquire(
    session: Session, identity: TaskIdentity, action: Any, now: dt.datetime
) -> Json:
    lock_store.lock_scheduler(session)
    lock = lockbox.try_acquire(session, _lock_request(identity, action), now)
    return None if lock is None else lock_json(lock)


def _lock_release(
    session: Session, identity: TaskIdentity, action: Any, now: dt.datetime
) -> Json:
    assert isinstance(action, LockRelease)
    lockbox.release(session, identity.task_id, action.interval)
    return None


def _lock_list(
    session: Session, identity: TaskIdentity, action: Any, now: dt.datetime
) -> Json:
    return [
        lock_json(lock) for lock in lock_store.locks_of_task(session, identity.task_id)
    ]


def _segment_list_used(
    session: Session, identity: TaskIdentity, action: Any, now: dt.datetime
) -> Json:
    assert isinstance(action, SegmentListUsed)
    rows = segment_store.segments_in_intervals(
        session,
        action.datasource or identity.datasource,
        list(action.intervals),
        used=True,
        limit=None,
    )
    return [json.loads(row.payload) for row in rows]


def _segment_list_unused(
    session: Session, identity: TaskIdentity, action: Any, now: dt.datetime
) -> Json:
    assert isinstance(action, SegmentListUnused)
    rows = segment_store.segments_in_intervals(
        session,
        action.datasource or identity.datasource,
        [action.interval],
        used=False,
        limit=action.limit,
    )
    return [json.loads(row.payload) for row in rows]


def _check_covered(
    session: Session, task_id: str, segments: tuple[DataSegment, ...]
) -> None:
    locks = [
        lock for lock in lock_store.locks_of_task(session, task_id) if not lock.revoked
    ]
    for segment in segments:
        if not any(
            lock.datasource == segment.datasource
            and Interval(lock.start, lock.end).contains(segment.interval)
            for lock in locks
        ):
            raise ActionFailed(
                f"Segments[{[str(s.id) for s in segments]}] are not covered by "
                f"locks[{[lock_json(lock) for lock in locks]}] for task[{task_id}]"
            )


def _segment_nuke(
    session: Session, identity: TaskIdentity, action: Any, now: dt.datetime
) -> Json:
    assert isinstance(action, SegmentNuke)
    _check_covered(session, identity.task_id, action.segments)
    segment_store.delete_segments(session, [str(s.id) for s in action.segments])
    return None


def _segment_insert(
    session: Session, identity: TaskIdentity, action: Any, now: dt.datetime
) -> Json:
    assert isinstance(action, SegmentTransactionalInsert | SegmentInsertion)
    segments = action.segments
    _check_covered(session, identity.task_id, segments)
    inserted = [
        segment
        for segment in segments
        if segment_store.insert_segment_if_absent(session, segment, now=now)
    ]
    coordinator.mark_overshadowed_unused(session, segments, now)
    # Druid's IndexerSQLMetadataStorageCoordinator skips ids already in
    # druid_segments and answers with the segments it inserted: a retried publish
    # (RemoteTaskActionClient retries every 5xx) succeeds with "segments": [].
    # Without ``identifier``, as overlord has always answered (clients read only
    # ``success`` and the count).
    return {"segments": [segment.to_json() for segment in inserted], "success": True}


def _segment_allocate(
    session: Session, identity: TaskIdentity, action: Any, now: dt.datetime
) -> Json:
    assert isinstance(action, SegmentAllocate)
    allocated = allocation.allocate(
        session,
        task_id=identity.task_id,
        group_id=identity.group_id,
        task_datasource=identity.datasource,
        priority=identity.priority,
        action=action,
        now=now,
    )
    return None if allocated is None else allocated.to_json()


Handler = Callable[[Session, TaskIdentity, Any, dt.datetime], Json]

_HANDLERS: dict[type[TaskAction], Handler] = {
    SegmentAllocate: _segment_allocate,
    LockTryAcquire: _lock_try_acquire,
    LockAcquire: _lock_try_acquire,
    LockRelease: _lock_release,
    LockList: _lock_list,
    SegmentListUsed: _segment_list_used,
    SegmentListUnused: _segment_list_unused,
    SegmentNuke: _segment_nuke,
    SegmentTransactionalInsert: _segment_insert,
    SegmentInsertion: _segment_insert,
}
