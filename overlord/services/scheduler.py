"""The task queue's rules (Druid's TaskQueue manage loop and runner), as steps any
server or worker may run, each in its own short transaction:

* ``promote_waiting_tasks``: WAITING → PENDING once ``isReady`` and locks allow;
* ``claim_tasks``: PENDING → RUNNING for free worker slots, with a lease;
* ``fail_expired_leases``: RUNNING tasks of vanished workers → FAILED.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from overlord import tasktypes
from overlord.errors import ActionFailed
from overlord.logs import TaskLog
from overlord.services import lockbox
from overlord.services.execution import log_line
from overlord.states import TaskState
from overlord.store import execution as execution_store
from overlord.store import locks as lock_store
from overlord.store import reports as report_store
from overlord.tasktypes.base import LockNeed, NotReady
from overlord.timeutil import Interval, format_period

log = logging.getLogger(__name__)

PROMOTION_BATCH = 200


def lost_worker_message(lease: dt.timedelta) -> str:
    return (
        "The worker that this task was assigned disappeared and did not report "
        f"cleanup within timeout[{format_period(lease)}]. See overlord and "
        "middleManager/indexer logs for more details."
    )


def not_ready_message(reason: str) -> str:
    return (
        f"Encountered error[{reason}] while waiting for task to be ready. "
        "See Overlord logs for more details."
    )


def promote_waiting_tasks(session: Session, now: dt.datetime) -> int:
    """Try to make WAITING tasks PENDING, oldest first; returns how many moved.

    Holds the scheduler lock for the transaction, so lock grants are serial across
    every process sharing the store.
    """
    waiting = execution_store.waiting_tasks(session, PROMOTION_BATCH)
    if not waiting:
        return 0
    lock_store.lock_scheduler(session)
    promoted = 0
    for row in waiting:
        task_type = tasktypes.lookup(row.type)
        if task_type is None:  # refused at submit; only a hand-edited row gets here
            continue
        payload = json.loads(row.payload)
        try:
            ready = task_type.is_ready(payload) and _acquire_all(
                session, row, task_type.lock_needs(payload), now
            )
        except (NotReady, ActionFailed) as error:
            execution_store.end_task(
                session,
                row.task_id,
                status=TaskState.FAILED,
                error_msg=not_ready_message(str(error)),
                now=now,
            )
            continue
        if ready and execution_store.mark_ready(session, row.task_id, now):
            promoted += 1
    return promoted


def _acquire_all(
    session: Session,
    row: execution_store.WaitingTask,
    needs: list[LockNeed],
    now: dt.datetime,
) -> bool:
    """Take every lock a task needs, or none: Druid releases what isReady took
    when it is not ready."""
    granted: list[Interval] = []
    for need in needs:
        lock = lockbox.try_acquire(
            session,
            lockbox.LockRequest(
                task_id=row.task_id,
                group_id=row.group_id,
                datasource=row.datasource,
                interval=need.interval,
                lock_type=need.lock_type,
                priority=row.priority,
            ),
            now,
        )
        if lock is None or lock.revoked:
            for taken in granted:
                lockbox.release(session, row.task_id, taken)
            return False
        granted.append(need.interval)
    return True


@dataclass(frozen=True)
class Claim:
    task_id: str


def claim_task(
    session: Session,
    *,
    worker_id: str,
    host: str,
    port: int,
    db_now: dt.datetime,
    lease: dt.timedelta,
    skip_locked: bool,
    tls: bool = False,
) -> Claim | None:
    claimed = claim_tasks(
        session,
        limit=1,
        worker_id=worker_id,
        host=host,
        port=port,
        db_now=db_now,
        lease=lease,
        skip_locked=skip_locked,
        tls=tls,
    )
    return Claim(claimed[0].task_id) if claimed else None


def claim_tasks(
    session: Session,
    *,
    limit: int,
    worker_id: str,
    host: str,
    port: int,
    db_now: dt.datetime,
    lease: dt.timedelta,
    skip_locked: bool,
    tls: bool = False,
) -> list[execution_store.ClaimedTask]:
    """Claim up to ``limit`` PENDING tasks (one per free slot) in the caller's
    transaction."""
    claimed = execution_store.claim_next_tasks(
        session,
        limit=limit,
        worker_id=worker_id,
        host=host,
        port=port,
        now=db_now,
        lease_until=db_now + lease,
        skip_locked=skip_locked,
        tls=tls,
    )
    # The log exists from the moment the task is RUNNING, as Druid streams a
    # running peon's log: GET /task/{id}/log answers this line, not 404, while
    # the task's process is still starting.
    message = claim_log_message(worker_id, host, port)
    report_store.append_logs(
        session,
        [(task.task_id, log_line(task.task_id, message, db_now)) for task in claimed],
        db_now,
    )
    return claimed


def claim_log_message(worker_id: str, host: str, port: int) -> str:
    return f"Task is RUNNING on worker[{worker_id}] at location[{host}:{port}]"


def fail_expired_leases(
    session: Session, *, db_now: dt.datetime, lease: dt.timedelta
) -> list[str]:
    """Druid's lost-worker rule: a claimed task whose lease expired is FAILED with
    the lost-worker message; unclaimed tasks are untouched; nothing is retried."""
    message = lost_worker_message(lease)
    failed = []
    for task in execution_store.expired_lease_tasks(session, db_now):
        if execution_store.end_task(
            session,
            task.task_id,
            status=TaskState.FAILED,
            error_msg=message,
            now=db_now,
        ):
            failed.append(task.task_id)
            TaskLog(log, task.task_id, task.opaque_id).warning(
                "task %s FAILED: the lease of its worker expired", task.task_id
            )
    return failed


def give_up_tasks(
    session: Session,
    task_ids: list[str],
    *,
    worker_id: str,
    message: str,
    now: dt.datetime,
) -> None:
    """FAILED, inactive, locks and pending segments released: for tasks a stopping
    worker could not finish (only those still active and its own)."""
    for task_id in task_ids:
        execution_store.end_task(
            session,
            task_id,
            status=TaskState.FAILED,
            error_msg=message,
            now=now,
            worker_id=worker_id,
        )
