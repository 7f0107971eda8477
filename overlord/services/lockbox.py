"""Druid's TaskLockbox rules over ``task_locks`` rows (spec §1.15.9, §2).

Posses: tasks of one group share a lock per interval. A request coexists with the
locks it is compatible with; otherwise it wins only if every incompatible lock has a
strictly lower priority, and then those locks are revoked. Callers hold the
scheduler lock (``store.locks.lock_scheduler``) so that grants are one at a time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from overlord.errors import ActionFailed
from overlord.segments import LockType
from overlord.store import locks as lock_store
from overlord.store import tasks as task_store
from overlord.store.locks import LockRow
from overlord.timeutil import Interval, format_druid


@dataclass(frozen=True)
class LockRequest:
    task_id: str
    group_id: str
    datasource: str
    interval: Interval
    lock_type: LockType
    priority: int


def _span(lock: LockRow) -> Interval:
    return Interval(lock.start, lock.end)


def _compatible(request: LockRequest, held: LockRow, held_all: list[LockRow]) -> bool:
    """The compatibility table of spec §1.15.9."""
    wanted, kind = request.lock_type, held.lock_type
    if wanted == "EXCLUSIVE" or kind == "EXCLUSIVE":
        return False
    if wanted == "SHARED" or kind == "SHARED":
        return wanted == kind
    if wanted == "REPLACE":
        return kind == "APPEND" and request.interval.contains(_span(held))
    # wanted == APPEND
    if kind == "APPEND":
        return True
    replaces = [lock for lock in held_all if lock.lock_type == "REPLACE"]
    return len(replaces) == 1 and _span(held).contains(request.interval)


def try_acquire(
    session: Session, request: LockRequest, now: dt.datetime
) -> LockRow | None:
    """Grant, reuse or refuse a time-chunk lock. A revoked lock of the group is
    returned as it is (the task learns it lost it).

    Raises:
        ActionFailed: the task is not active, the interval is empty, or a posse's
            priority differs.
    """
    if request.interval.start >= request.interval.end:
        raise ActionFailed("interval empty")
    if not task_store.is_active(session, request.task_id):
        raise ActionFailed(f"Unable to grant lock to inactive Task [{request.task_id}]")
    # Reuse: the group's posse of the same type whose interval contains the request.
    for lock in lock_store.locks_of_group(
        session, request.group_id, request.datasource
    ):
        if lock.lock_type != request.lock_type or not _span(lock).contains(
            request.interval
        ):
            continue
        if lock.revoked:
            return lock
        if lock.priority != request.priority:
            raise ActionFailed(
                f"priority[{request.priority}] of task[{request.task_id}] is different "
                f"from the existing lockPosse's priority[{lock.priority}]"
            )
        if lock.task_id == request.task_id:
            return lock
        return lock_store.insert_lock(
            session, dataclasses.replace(lock, task_id=request.task_id), now
        )
    held = [
        lock
        for lock in lock_store.overlapping_locks(
            session, request.datasource, request.interval.start, request.interval.end
        )
        if not lock.revoked
        and not (lock.group_id == request.group_id and _span(lock) == request.interval)
    ]
    incompatible = [lock for lock in held if not _compatible(request, lock, held)]
    if any(lock.priority >= request.priority for lock in incompatible):
        return None
    for lock in incompatible:
        lock_store.revoke_posse(
            session,
            group_id=lock.group_id,
            datasource=lock.datasource,
            lock_type=lock.lock_type,
            start=lock.start,
            end=lock.end,
        )
    return lock_store.insert_lock(
        session,
        LockRow(
            task_id=request.task_id,
            group_id=request.group_id,
            datasource=request.datasource,
            granularity="timeChunk",
            lock_type=request.lock_type,
            start=request.interval.start,
            end=request.interval.end,
            # A new posse's version is the moment it was granted.
            version=format_druid(now),
            priority=request.priority,
            partition_id=None,
            revoked=False,
        ),
        now,
    )


def release(session: Session, task_id: str, interval: Interval) -> None:
    """``lockRelease``: drop this task's time-chunk lock of exactly that interval."""
    lock_store.delete_task_lock(session, task_id, interval.start, interval.end)
