"""SQL of the runtime: readiness, claiming, leases, finishing, workers.

Every state change is a compare-and-set on ``active`` (and on the lease owner for a
worker's own writes), so a shutdown or the lease duty that already made a task
terminal is never overwritten. Lease times come from the database's clock
(``db.database_now``), never from a worker's.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Delete,
    Select,
    String,
    Table,
    Update,
    any_,
    bindparam,
    delete,
    func,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from overlord.states import RunnerState, TaskState
from overlord.store.headers import opaque_id_of
from overlord.store.models import PendingSegment, Task, TaskLock, Worker

# The worker loop's statements are built once, as Core statements on the tables
# with bind parameters: building an ORM statement per call, its cache key and the
# ORM's bulk-update pass were 40 % of the worker loop's CPU (py-spy --gil). Noop
# burst, 100 tasks, 4 slots, SQLite, worker loop's CPU per task: 6-7 → 3.5-4 ms.
_TASKS = cast(Table, Task.__table__)
_WORKERS = cast(Table, Worker.__table__)
_LOCKS = cast(Table, TaskLock.__table__)
_PENDING_SEGMENTS = cast(Table, PendingSegment.__table__)


@dataclass(frozen=True)
class WaitingTask:
    """What the scheduler needs of a WAITING task to decide it is ready."""

    task_id: str
    type: str
    group_id: str
    datasource: str
    priority: int
    payload: str


@functools.cache
def _waiting_tasks(limit: int) -> Select[Any]:
    return (
        select(
            _TASKS.c.task_id,
            _TASKS.c.type,
            _TASKS.c.group_id,
            _TASKS.c.datasource,
            _TASKS.c.priority,
            _TASKS.c.payload,
        )
        .where(_TASKS.c.active == true(), _TASKS.c.runner_status == RunnerState.WAITING)
        .order_by(_TASKS.c.created_at, _TASKS.c.id)
        .limit(limit)
    )


def waiting_tasks(session: Session, limit: int) -> list[WaitingTask]:
    """Active WAITING tasks, oldest first (Druid's queue order)."""
    rows = session.execute(_waiting_tasks(limit))
    return [
        WaitingTask(
            task_id=row.task_id,
            type=row.type,
            group_id=row.group_id,
            datasource=row.datasource,
            priority=row.priority,
            payload=row.payload,
        )
        for row in rows
    ]


_MARK_READY = (
    update(_TASKS)
    .where(
        _TASKS.c.task_id == bindparam("ready_task"),
        _TASKS.c.active == true(),
        _TASKS.c.runner_status == RunnerState.WAITING,
    )
    .values(
        runner_status=RunnerState.PENDING,
        queue_inserted_at=bindparam("ready_now", type_=_TASKS.c.queue_inserted_at.type),
    )
)


def mark_ready(session: Session, task_id: str, now: dt.datetime) -> bool:
    result = session.execute(_MARK_READY, {"ready_task": task_id, "ready_now": now})
    return bool(result.rowcount)  # type: ignore[attr-defined]


@functools.cache
def _claim_candidates(limit: int, skip_locked: bool) -> Select[Any]:
    candidates = (
        select(
            _TASKS.c.id,
            _TASKS.c.task_id,
            _TASKS.c.type,
            _TASKS.c.payload,
            _TASKS.c.datasource,
            _TASKS.c.queue_inserted_at,
            _TASKS.c.request_headers,
        )
        .where(_TASKS.c.active == true(), _TASKS.c.runner_status == RunnerState.PENDING)
        .order_by(_TASKS.c.priority.desc(), _TASKS.c.created_at, _TASKS.c.id)
        .limit(limit)
    )
    if skip_locked:
        candidates = candidates.with_for_update(skip_locked=True)
    return candidates


_CLAIM_VALUES = update(_TASKS).values(
    runner_status=RunnerState.RUNNING,
    worker_id=bindparam("claim_worker", type_=_TASKS.c.worker_id.type),
    lease_expires_at=bindparam("claim_lease", type_=_TASKS.c.lease_expires_at.type),
    started_at=bindparam("claim_now", type_=_TASKS.c.started_at.type),
    location_host=bindparam("claim_host", type_=_TASKS.c.location_host.type),
    location_port=bindparam("claim_port", type_=_TASKS.c.location_port.type),
    location_tls_port=bindparam(
        "claim_tls_port", type_=_TASKS.c.location_tls_port.type
    ),
)
_CLAIM = _CLAIM_VALUES.where(
    _TASKS.c.id == bindparam("claim_id"),
    _TASKS.c.active == true(),
    _TASKS.c.runner_status == RunnerState.PENDING,
)


@functools.cache
def _claim_statement_pg() -> Any:
    """PostgreSQL's claim: the candidates (``_claim_candidates``, skipping rows
    another claimer holds) made RUNNING for this worker in the same statement,
    returning what the task processes need. The outer conditions are checked
    again on the locked row version."""
    tasks = _TASKS.c
    chosen = (
        select(tasks.id)
        .where(tasks.active == true(), tasks.runner_status == RunnerState.PENDING)
        .order_by(tasks.priority.desc(), tasks.created_at, tasks.id)
        .limit(bindparam("claim_limit"))
        .with_for_update(skip_locked=True)
    )
    return _CLAIM_VALUES.where(
        tasks.id.in_(chosen),
        tasks.active == true(),
        tasks.runner_status == RunnerState.PENDING,
    ).returning(
        tasks.id,
        tasks.task_id,
        tasks.type,
        tasks.payload,
        tasks.datasource,
        tasks.queue_inserted_at,
        tasks.request_headers,
        tasks.priority,
        tasks.created_at,
    )


@dataclass(frozen=True)
class ClaimedTask:
    """A task this worker just claimed: what its process needs to run it, and what
    the worker's metrics need of it (datasource, ready time)."""

    task_id: str
    type: str
    payload: str
    datasource: str
    ready_at: dt.datetime | None
    # The X-Opaque-Id of its submit, for the lines logged about it.
    opaque_id: str | None = None


def claim_next_tasks(
    session: Session,
    *,
    limit: int,
    worker_id: str,
    host: str,
    port: int,
    now: dt.datetime,
    lease_until: dt.datetime,
    skip_locked: bool,
    tls: bool = False,
) -> list[ClaimedTask]:
    """Claim up to ``limit`` of the highest-priority, oldest PENDING tasks for
    ``worker_id``, with the type and payload their processes run (and the
    datasource and ready time the worker's metrics record).

    The location is Druid's TaskLocation: a TLS server reports ``port`` -1 and its
    port as ``tlsPort``.

    ``FOR UPDATE SKIP LOCKED`` lets concurrent claimers pass each other on
    PostgreSQL and MariaDB ≥ 10.6; the compare-and-set UPDATE is what guarantees,
    on every backend (SQLite included), that a task is claimed once. The payload
    comes with the claim so that the task's process need not read its row again,
    and the submit's X-Opaque-Id so that the log lines about the task carry it.
    """
    params = {
        "claim_worker": worker_id,
        "claim_lease": lease_until,
        "claim_now": now,
        "claim_host": host,
        "claim_port": -1 if tls else port,
        "claim_tls_port": port if tls else -1,
    }
    if session.get_bind().dialect.name == "postgresql":
        # One UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING:
        # one round trip per claim step where a SELECT and an UPDATE per task
        # were made (the worker's loop is serial: each round trip delays every
        # slot's next task). With end_task's one statement and the pipelined log
        # lines: bench.runtime, PostgreSQL, runs interleaved on a busy machine,
        # 1 slot 86/58 → 121/155 noop tasks/s, 4 slots 110/62 → 120/126.
        rows = sorted(
            session.execute(_claim_statement_pg(), {**params, "claim_limit": limit}),
            key=lambda row: (-row.priority, row.created_at, row.id),
        )
        return [_claimed(row) for row in rows]
    claimed = []
    for row in session.execute(_claim_candidates(limit, skip_locked)).all():
        result = session.execute(
            _CLAIM,
            {"claim_id": row.id, **params},
        )
        if result.rowcount:  # type: ignore[attr-defined]
            claimed.append(_claimed(row))
    return claimed


def _claimed(row: Any) -> ClaimedTask:
    """A claimed row (either claim statement's columns) as the worker takes it."""
    return ClaimedTask(
        row.task_id,
        row.type,
        row.payload,
        row.datasource,
        row.queue_inserted_at,
        opaque_id_of(row.request_headers),
    )


def renew_leases(
    session: Session, worker_id: str, task_ids: Sequence[str], lease_until: dt.datetime
) -> None:
    if not task_ids:
        return
    session.execute(
        update(Task)
        .where(
            Task.task_id.in_(list(task_ids)),
            Task.worker_id == worker_id,
            Task.active == true(),
        )
        .values(lease_expires_at=lease_until)
        .execution_options(synchronize_session=False)
    )


def stopped_task_ids(
    session: Session, worker_id: str, task_ids: Sequence[str]
) -> set[str]:
    """Which of this worker's running tasks are no longer its own and active
    (shut down, or failed by the lease duty)."""
    if not task_ids:
        return set()
    still_running = set(
        session.scalars(
            select(Task.task_id).where(
                Task.task_id.in_(list(task_ids)),
                Task.worker_id == worker_id,
                Task.active == true(),
            )
        )
    )
    return set(task_ids) - still_running


def end_task(
    session: Session,
    task_id: str,
    *,
    status: TaskState,
    error_msg: str | None,
    now: dt.datetime,
    worker_id: str | None = None,
    duration_ms: int | None = None,
    shutdown: bool = False,
) -> bool:
    """The one way a task ends: a compare-and-set to a final state, then its locks
    and the pending segments it allocated released, all in the caller's transaction.

    The set only happens while the task is active (and, given ``worker_id``, still
    that worker's: a worker finishing its own task), so whichever of completion,
    shutdown, lease expiry or the scheduler comes first wins and the others change
    nothing (False). ``shutdown`` records the request time (OpenSearch's cancel
    reads it); ``duration_ms`` is left as it is when None.
    """
    params: dict[str, Any] = {
        "end_task": task_id,
        "end_status": status,
        "end_error": error_msg,
        "end_now": now,
    }
    if worker_id is not None:
        params["end_worker"] = worker_id
    if duration_ms is not None:
        params["end_duration"] = duration_ms
    if session.get_bind().dialect.name == "postgresql":
        # The three statements as one (see _end_statement_pg): two round trips
        # fewer per ended task in the worker's serial loop.
        ended = session.execute(
            _end_statement_pg(worker_id is not None, duration_ms is not None, shutdown),
            params,
        ).scalar_one()
        return bool(ended)
    end, release_locks, release_segments = _end_statements(
        worker_id is not None, duration_ms is not None, shutdown
    )
    result = session.execute(end, params)
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    session.execute(release_locks, {"end_task": task_id})
    session.execute(release_segments, {"end_task": task_id})
    return True


@functools.cache
def _end_statements(
    by_worker: bool, with_duration: bool, shutdown: bool
) -> tuple[Update, Delete, Delete]:
    """end_task's three statements, one set per variant."""
    tasks = _TASKS.c
    conditions = [tasks.task_id == bindparam("end_task"), tasks.active == true()]
    if by_worker:
        conditions.append(tasks.worker_id == bindparam("end_worker"))
    now = bindparam("end_now", type_=tasks.finished_at.type)
    values: dict[str, Any] = {
        "status": bindparam("end_status", type_=tasks.status.type),
        "runner_status": RunnerState.NONE,
        "active": False,
        "error_msg": bindparam("end_error", type_=tasks.error_msg.type),
        "finished_at": now,
        "lease_expires_at": None,
    }
    if with_duration:
        values["duration_ms"] = bindparam("end_duration", type_=tasks.duration_ms.type)
    if shutdown:
        values["shutdown_requested_at"] = now
    end = update(_TASKS).where(*conditions).values(**values)
    release_locks = delete(_LOCKS).where(_LOCKS.c.task_id == bindparam("end_task"))
    # Druid ≥ 30 deletes the pending segments a task allocated (by
    # ``task_allocator_id``) when the task leaves the lockbox. The datasource comes
    # from the task row, so the (dataSource, task_allocator_id) index serves it.
    segments = _PENDING_SEGMENTS.c
    release_segments = delete(_PENDING_SEGMENTS).where(
        segments.dataSource
        == select(tasks.datasource)
        .where(tasks.task_id == bindparam("end_task"))
        .scalar_subquery(),
        segments.task_allocator_id == bindparam("end_task"),
    )
    return end, release_locks, release_segments


@functools.cache
def _end_statement_pg(by_worker: bool, with_duration: bool, shutdown: bool) -> Any:
    """PostgreSQL: end_task's three statements as one::

        WITH ended AS (UPDATE tasks SET … WHERE task_id = :end_task AND active …
                       RETURNING task_id, datasource),
             locks AS (DELETE FROM task_locks WHERE task_id IN (SELECT … FROM ended)),
             segments AS (DELETE FROM pending_segments USING ended WHERE …)
        SELECT count(*) FROM ended

    The DELETEs see only what ``ended`` returned: nothing when the compare-and-set
    lost, exactly as the separate statements ran only after it won. Every
    data-modifying CTE runs to completion whether read or not."""
    end, _, _ = _end_statements(by_worker, with_duration, shutdown)
    tasks = _TASKS.c
    ended = end.returning(tasks.task_id, tasks.datasource).cte("ended")
    locks = (
        delete(_LOCKS)
        .where(_LOCKS.c.task_id.in_(select(ended.c.task_id)))
        .cte("released_locks")
    )
    segments = _PENDING_SEGMENTS.c
    released = (
        delete(_PENDING_SEGMENTS)
        .where(
            segments.dataSource == ended.c.datasource,
            segments.task_allocator_id == ended.c.task_id,
        )
        .cte("released_segments")
    )
    return select(func.count()).select_from(ended).add_cte(locks).add_cte(released)


# Ids per IN (…) list of the set-based statements below.
_ID_CHUNK = 500


def shut_down_datasource_tasks(
    session: Session, datasource: str, *, error_msg: str, now: dt.datetime
) -> list[str]:
    """``end_task`` (FAILED, shutdown) for every active task of a datasource in a
    few set-based statements; returns the ids it ended, oldest created first.

    One statement per task-sized step made shutdownAllTasks of 25 k active tasks
    take 100 k statements (16 s on SQLite, 50 s on PostgreSQL).
    """
    values: dict[str, Any] = {
        "status": TaskState.FAILED,
        "runner_status": RunnerState.NONE,
        "active": False,
        "error_msg": error_msg,
        "finished_at": now,
        "lease_expires_at": None,
        "shutdown_requested_at": now,
    }
    of_datasource = (Task.datasource == datasource, Task.active == true())
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        # One UPDATE … RETURNING: exactly the rows this compare-and-set ended.
        # On the Core connection, with created_at as the driver gives it (a sort
        # key only: SQLite's fixed-width text sorts as the times do): the ORM's
        # row loading and 25 k datetime conversions were a third of a 25 k-task
        # shutdownAllTasks on SQLite.
        rows = (
            session.connection()
            .execute(
                update(Task)
                .where(*of_datasource)
                .values(**values)
                .returning(Task.task_id, type_coerce(Task.created_at, String), Task.id)
            )
            .all()
        )
        ended = [row[0] for row in sorted(rows, key=lambda r: (r[1], r[2]))]
    else:
        # MariaDB has no UPDATE … RETURNING: lock the rows, then end exactly those.
        ended = list(
            session.scalars(
                select(Task.task_id)
                .where(*of_datasource)
                .order_by(Task.created_at, Task.id)
                .with_for_update()
            )
        )
        for chunk in _chunks(ended):
            session.execute(
                update(Task)
                .where(Task.task_id.in_(chunk), Task.active == true())
                .values(**values)
                .execution_options(synchronize_session=False)
            )
    # PostgreSQL takes the ids as one array parameter, SQLite as one JSON array:
    # two statements in all instead of two per 500 ids (shutdownAllTasks of 25 k
    # tasks ÷ one UPDATE of the same rows, bench.issue10: PostgreSQL 2.68 →
    # 1.66; SQLite, which spent a fifth of the request compiling 100 IN lists,
    # 2.30 → 1.48 with the ended rows read without the ORM).
    chunks = [ended] if dialect in ("postgresql", "sqlite") else _chunks(ended)
    connection = session.connection()
    for chunk in chunks:
        connection.execute(
            delete(TaskLock).where(_among(TaskLock.task_id, chunk, dialect))
        )
        connection.execute(
            delete(PendingSegment).where(
                PendingSegment.dataSource == datasource,
                _among(PendingSegment.task_allocator_id, chunk, dialect),
            )
        )
    return ended


def _among(column: Any, ids: Sequence[str], dialect: str) -> Any:
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(String)))
    if dialect == "sqlite":
        each = func.json_each(bindparam(None, json.dumps(list(ids)), type_=String))
        return column.in_(select(each.table_valued("value").c.value))
    return column.in_(ids)


def _chunks(ids: Sequence[str]) -> list[Sequence[str]]:
    return [ids[start : start + _ID_CHUNK] for start in range(0, len(ids), _ID_CHUNK)]


@dataclass(frozen=True)
class ExpiredTask:
    """A claimed task whose lease ran out."""

    task_id: str
    opaque_id: str | None


def expired_lease_tasks(session: Session, db_now: dt.datetime) -> list[ExpiredTask]:
    """Claimed tasks whose lease ran out (their worker is gone or cut off), with
    their submit's X-Opaque-Id for the line logged when they fail."""
    rows = session.execute(
        select(Task.task_id, Task.request_headers)
        .where(
            Task.active == true(),
            Task.runner_status == RunnerState.RUNNING,
            Task.lease_expires_at < db_now,
        )
        .order_by(Task.id)
    )
    return [ExpiredTask(row.task_id, opaque_id_of(row.request_headers)) for row in rows]


# -- workers ------------------------------------------------------------------


def register_worker(session: Session, worker: Worker) -> None:
    session.merge(worker)
    session.flush()


def heartbeat_worker(session: Session, worker_id: str, db_now: dt.datetime) -> bool:
    result = session.execute(
        update(Worker)
        .where(Worker.id == worker_id)
        .values(last_heartbeat_at=db_now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


_TOUCH_WORKER = (
    update(_WORKERS)
    .where(_WORKERS.c.id == bindparam("touch_worker"))
    .values(
        last_completed_task_at=bindparam(
            "touch_now", type_=_WORKERS.c.last_completed_task_at.type
        )
    )
)


def touch_worker_completion(session: Session, worker_id: str, now: dt.datetime) -> None:
    session.execute(_TOUCH_WORKER, {"touch_worker": worker_id, "touch_now": now})


def remove_worker(session: Session, worker_id: str) -> None:
    session.execute(
        delete(Worker)
        .where(Worker.id == worker_id)
        .execution_options(synchronize_session=False)
    )


def remove_silent_workers(session: Session, before: dt.datetime) -> int:
    result = session.execute(
        delete(Worker)
        .where(Worker.last_heartbeat_at < before)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def list_workers(session: Session) -> list[Worker]:
    """Workers with task slots. Duties-only processes register no row; the filter
    also hides capacity-0 rows older versions wrote, until their lease ends."""
    return list(
        session.scalars(
            select(Worker)
            .where(Worker.capacity > 0)
            .order_by(Worker.started_at, Worker.id)
        )
    )


def running_tasks_by_worker(session: Session) -> dict[str, list[Any]]:
    rows = session.execute(
        select(Task.worker_id, Task.task_id, Task.type)
        .where(Task.active == true(), Task.runner_status == RunnerState.RUNNING)
        .order_by(Task.started_at, Task.id)
    )
    grouped: dict[str, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.worker_id, []).append(row)
    return grouped


NOTIFY_CHANNEL = "overlord_tasks"


def notify_workers(session: Session) -> None:
    """Wake workers on PostgreSQL (LISTEN/NOTIFY, delivered at commit); elsewhere
    workers poll."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(NOTIFY_CHANNEL, "")))
