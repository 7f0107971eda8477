"""Task actions (Druid's ``POST /action``, spec §1.15): the one place tasks touch
locks and segments. The HTTP endpoint and a running task's TaskContext share it.

Every action is idempotent under retries (Druid's peons retry on 5xx).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy.orm import Session

from overlord import tasktypes
from overlord.errors import ActionFailed, InvalidInput
from overlord.services import allocation, coordinator, lockbox
from overlord.services.locks import lock_json
from overlord.store import locks as lock_store
from overlord.store import segments as segment_store
from overlord.store import tasks as task_store
from overlord.tasktypes.base import JsonObject
from overlord.timeutil import Interval, InvalidTime, format_druid, parse_interval

Json = Any


def _interval(value: Any, key: str = "interval") -> Interval:
    if not isinstance(value, str):
        raise InvalidInput(f"Missing required creator property '{key}'")
    try:
        return parse_interval(value)
    except InvalidTime as error:
        raise InvalidInput(str(error)) from error


def _task_identity(task: JsonObject) -> tuple[str, str, str, int]:
    """Id, group, datasource and priority from the posted task JSON (Druid builds
    its action client from the body, not from the stored task)."""
    type_name = task.get("type")
    task_type = tasktypes.lookup(type_name) if isinstance(type_name, str) else None
    if task_type is None:
        raise InvalidInput(
            f"Could not resolve type id '{type_name}' as a subtype of Task"
        )
    task_id = task.get("id")
    if not isinstance(task_id, str) or not task_id:
        raise InvalidInput("Task 'id' must not be null")
    return (
        task_id,
        task_type.group_id(task, task_id),
        task_type.datasource(task),
        task_type.priority(task),
    )


def perform_action(
    session: Session, task: JsonObject, action: JsonObject, now: dt.datetime
) -> Json:
    """Run one action for ``task`` and return its ``result`` value.

    Raises:
        InvalidInput: malformed action (HTTP 400).
        ActionFailed: the action could not be done (HTTP 500; peons retry).
    """
    kind = action.get("type")
    if kind == "surrogateAction":
        return _surrogate(session, action, now)
    handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
    if handler is None:
        raise InvalidInput(
            f"Could not resolve type id '{kind}' as a subtype of `TaskAction`: "
            f"known type ids = [{', '.join(sorted(_HANDLERS))}]"
        )
    identity = _task_identity(task)
    return handler(session, identity, action, now)


def _surrogate(session: Session, action: JsonObject, now: dt.datetime) -> Json:
    """Druid's SurrogateAction: ``taskAction`` performed as the stored task
    ``surrogateId`` (a parallel sub-task allocating under its supervisor's locks)."""
    surrogate_id = action.get("surrogateId")
    if not isinstance(surrogate_id, str) or not surrogate_id:
        raise InvalidInput("Missing required creator property 'surrogateId'")
    inner = action.get("taskAction")
    if not isinstance(inner, dict):
        raise InvalidInput("Missing required creator property 'taskAction'")
    row = task_store.get_task(session, surrogate_id)
    if row is None:
        raise ActionFailed(f"Can't find surrogate task[{surrogate_id}]")
    return perform_action(session, json.loads(row.payload), inner, now)


def _lock_request(
    identity: tuple[str, str, str, int], action: JsonObject
) -> lockbox.LockRequest:
    task_id, group_id, datasource, priority = identity
    lock_type = action.get("lockType") or "EXCLUSIVE"
    if lock_type not in lockbox.LOCK_TYPES:
        raise InvalidInput(f"Unknown lockType[{lock_type}]")
    return lockbox.LockRequest(
        task_id=task_id,
        group_id=group_id,
        datasource=datasource,
        interval=_interval(action.get("interval")),
        lock_type=lock_type,
        priority=priority,
    )


def _lock_try_acquire(
    session: Session, identity: Any, action: JsonObject, now: dt.datetime
) -> Json:
    lock_store.lock_scheduler(session)
    lock = lockbox.try_acquire(session, _lock_request(identity, action), now)
    return None if lock is None else lock_json(lock)


def _lock_release(
    session: Session, identity: Any, action: JsonObject, now: dt.datetime
) -> Json:
    lockbox.release(session, identity[0], _interval(action.get("interval")))
    return None


def _lock_list(
    session: Session, identity: Any, action: JsonObject, now: dt.datetime
) -> Json:
    return [lock_json(lock) for lock in lock_store.locks_of_task(session, identity[0])]


def _segment_list(used: bool) -> Any:
    def handler(
        session: Session, identity: Any, action: JsonObject, now: dt.datetime
    ) -> Json:
        datasource = action.get("dataSource") or identity[2]
        intervals = action.get("intervals")
        if intervals is None and action.get("interval") is not None:
            intervals = [action["interval"]]
        if not isinstance(intervals, list) or not intervals:
            raise InvalidInput("no intervals given")
        limit = action.get("limit")
        rows = segment_store.segments_in_intervals(
            session,
            datasource,
            [_interval(text, "intervals") for text in intervals],
            used=used,
            limit=limit if isinstance(limit, int) and limit > 0 else None,
        )
        return [json.loads(row.payload) for row in rows]

    return handler


def segment_id_of(segment: JsonObject) -> str:
    """``<ds>_<start>_<end>_<version>[_<partitionNum>]`` (Druid's SegmentId)."""
    interval = _interval(segment.get("interval"))
    shard = segment.get("shardSpec") or {}
    partition = shard.get("partitionNum", 0) if isinstance(shard, dict) else 0
    text = (
        f"{segment.get('dataSource')}_{format_druid(interval.start)}_"
        f"{format_druid(interval.end)}_{segment.get('version')}"
    )
    return text if not partition else f"{text}_{partition}"


def _check_covered(session: Session, task_id: str, segments: list[JsonObject]) -> None:
    locks = [
        lock for lock in lock_store.locks_of_task(session, task_id) if not lock.revoked
    ]
    for segment in segments:
        span = _interval(segment.get("interval"))
        if not any(
            lock.datasource == segment.get("dataSource")
            and Interval(lock.start, lock.end).contains(span)
            for lock in locks
        ):
            raise ActionFailed(
                f"Segments[{[segment_id_of(s) for s in segments]}] are not covered by "
                f"locks[{[lock_json(lock) for lock in locks]}] for task[{task_id}]"
            )


def _segments_of(action: JsonObject) -> list[JsonObject]:
    segments = action.get("segments")
    if not isinstance(segments, list) or not all(isinstance(s, dict) for s in segments):
        raise InvalidInput("'segments' must be a list of segments")
    return segments


def _segment_nuke(
    session: Session, identity: Any, action: JsonObject, now: dt.datetime
) -> Json:
    segments = _segments_of(action)
    _check_covered(session, identity[0], segments)
    segment_store.delete_segments(session, [segment_id_of(s) for s in segments])
    return None


def _segment_insert(
    session: Session, identity: Any, action: JsonObject, now: dt.datetime
) -> Json:
    segments = _segments_of(action)
    _check_covered(session, identity[0], segments)
    inserted = []
    for segment in segments:
        interval = _interval(segment.get("interval"))
        segment_id = segment_id_of(segment)
        document = {key: value for key, value in segment.items() if key != "identifier"}
        document["identifier"] = segment_id
        if segment_store.insert_segment_if_absent(
            session,
            segment_id=segment_id,
            datasource=str(segment.get("dataSource")),
            interval=interval,
            version=str(segment.get("version")),
            payload=json.dumps(document, separators=(",", ":")),
            now=now,
        ):
            inserted.append(segment)
    coordinator.mark_overshadowed_unused(
        session, segments, [_interval(s.get("interval")) for s in segments], now
    )
    # Druid's IndexerSQLMetadataStorageCoordinator skips ids already in
    # druid_segments and answers with the segments it inserted: a retried publish
    # (RemoteTaskActionClient retries every 5xx) succeeds with "segments": [].
    return {"segments": inserted, "success": True}


def _segment_allocate(
    session: Session, identity: Any, action: JsonObject, now: dt.datetime
) -> Json:
    return allocation.allocate(session, identity, action, now)


_HANDLERS: dict[str, Any] = {
    "segmentAllocate": _segment_allocate,
    "lockTryAcquire": _lock_try_acquire,
    "lockAcquire": _lock_try_acquire,
    "lockRelease": _lock_release,
    "lockList": _lock_list,
    "segmentListUsed": _segment_list(True),
    "segmentListUnused": _segment_list(False),
    "segmentNuke": _segment_nuke,
    "segmentTransactionalInsert": _segment_insert,
    "segmentInsertion": _segment_insert,
    "surrogateAction": None,  # see _surrogate
}
