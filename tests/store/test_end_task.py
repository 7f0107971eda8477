"""One way to end a task: every path (completion, shutdown, shutdown of a whole
datasource, lease expiry, the scheduler, a stopping worker) goes through
``store.execution.end_task`` and ends a task exactly once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from overlord.db import Database
from overlord.services import scheduler
from overlord.services import tasks as task_service
from overlord.services.execution import finish_task
from overlord.states import SHUTDOWN_BY_USER, RunnerState, TaskState
from overlord.store.audit import AuditInfo
from overlord.store.models import PendingSegment, Task, TaskLock
from overlord.tasktypes.base import TaskResult
from overlord.timeutil import utcnow
from tests.factories import make_lock, make_pending_segment, make_task
from tests.statements import record_statements

LEASE = dt.timedelta(seconds=30)
AUDIT = AuditInfo(ip="127.0.0.1")
DAY = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def seed(session: Session, *, runner: RunnerState, **task: Any) -> None:
    """Task "t" of datasource wiki (a lock, a pending segment it allocated) beside
    task "other" of datasource books (the same), so each test sees that only "t"'s
    rows go."""
    now = utcnow()
    for task_id, datasource in (("t", "wiki"), ("other", "books")):
        row = make_task(
            session,
            task_id=task_id,
            datasource=datasource,
            runner_status=runner if task_id == "t" else RunnerState.RUNNING,
            worker_id="w1",
            started_at=now - dt.timedelta(seconds=2),
            lease_expires_at=now + LEASE,
            **(task if task_id == "t" else {}),
        )
        make_lock(session, row)
        make_pending_segment(
            session,
            datasource=datasource,
            created=now,
            start=DAY,
            end=DAY + dt.timedelta(days=1),
            task_allocator_id=task_id,
        )


def state(db: Database) -> dict[str, Any]:
    with db.transaction() as session:
        task = session.execute(
            select(Task.status, Task.runner_status, Task.active, Task.error_msg).where(
                Task.task_id == "t"
            )
        ).one()
        return {
            "task": tuple(task),
            "locks": sorted(session.scalars(select(TaskLock.task_id))),
            "pending": sorted(
                session.scalars(select(PendingSegment.task_allocator_id))
            ),
        }


def complete(session: Session) -> bool:
    return finish_task(
        session,
        task_id="t",
        worker_id="w1",
        result=TaskResult(TaskState.SUCCESS, None),
        started=utcnow() - dt.timedelta(seconds=1),
        now=utcnow(),
    )


def shut_down(session: Session) -> bool:
    task_service.shutdown_task(session, "t", now=utcnow(), audit=AUDIT)
    return True


def shut_down_all(session: Session) -> bool:
    return "t" in task_service.shutdown_all_tasks(
        session, "wiki", now=utcnow(), audit=AUDIT
    )


def expire_lease(session: Session) -> bool:
    # The lease of "t" runs out before "other"'s: only "t" is expired.
    later = utcnow() + LEASE + dt.timedelta(seconds=1)
    with_other_renewed(session, later + LEASE)
    return scheduler.fail_expired_leases(session, db_now=later, lease=LEASE) == ["t"]


def with_other_renewed(session: Session, until: dt.datetime) -> None:
    session.get_one(Task, task_id_key(session, "other")).lease_expires_at = until
    session.flush()


def task_id_key(session: Session, task_id: str) -> int:
    return int(session.scalars(select(Task.id).where(Task.task_id == task_id)).one())


def give_up(session: Session) -> bool:
    scheduler.give_up_tasks(
        session, ["t"], worker_id="w1", message="worker stopped", now=utcnow()
    )
    return True


LOST = scheduler.lost_worker_message(LEASE)
PATHS = [
    pytest.param(
        complete,
        RunnerState.RUNNING,
        (TaskState.SUCCESS, RunnerState.NONE, False, None),
        id="completion",
    ),
    pytest.param(
        shut_down,
        RunnerState.RUNNING,
        (TaskState.FAILED, RunnerState.NONE, False, SHUTDOWN_BY_USER),
        id="shutdown",
    ),
    pytest.param(
        shut_down_all,
        RunnerState.RUNNING,
        (TaskState.FAILED, RunnerState.NONE, False, SHUTDOWN_BY_USER),
        id="shutdown-all",
    ),
    pytest.param(
        expire_lease,
        RunnerState.RUNNING,
        (TaskState.FAILED, RunnerState.NONE, False, LOST),
        id="lease-expiry",
    ),
    pytest.param(
        give_up,
        RunnerState.RUNNING,
        (TaskState.FAILED, RunnerState.NONE, False, "worker stopped"),
        id="worker-gives-up",
    ),
]


@pytest.mark.parametrize(("end", "runner", "expected"), PATHS)
def test_each_path_ends_the_task_once_and_releases_its_locks_and_pending_segments(
    db: Database,
    end: Callable[[Session], bool],
    runner: RunnerState,
    expected: tuple[Any, ...],
) -> None:
    with db.transaction() as session:
        seed(session, runner=runner)

    with db.transaction() as session:
        assert end(session)
    after_first = state(db)
    # A second end by every other path changes nothing: the first one won.
    with db.transaction() as session:
        late_completion = complete(session)
        late_lease_expiry = scheduler.fail_expired_leases(
            session, db_now=utcnow() + LEASE * 10, lease=LEASE
        )
    after_second = state(db)

    assert after_first == {
        "task": expected,
        "locks": ["other"],
        "pending": ["other"],
    }
    assert late_completion is False
    assert "t" not in late_lease_expiry
    assert after_second["task"] == expected


def test_scheduler_fails_a_task_whose_readiness_throws_once(db: Database) -> None:
    payload = '{"type":"noop","id":"t","dataSource":"wiki","isReadyResult":"EXCEPTION"}'
    with db.transaction() as session:
        seed(session, runner=RunnerState.WAITING, payload=payload)

    with db.transaction() as session:
        promoted = scheduler.promote_waiting_tasks(session, utcnow())
    with db.transaction() as session:
        promoted_again = scheduler.promote_waiting_tasks(session, utcnow())

    assert (promoted, promoted_again) == (0, 0)
    assert state(db) == {
        "task": (
            TaskState.FAILED,
            RunnerState.NONE,
            False,
            scheduler.not_ready_message("Not ready. Never will be ready. Go away!"),
        ),
        "locks": ["other"],
        "pending": ["other"],
    }


def test_a_worker_cannot_finish_a_task_another_worker_owns(db: Database) -> None:
    with db.transaction() as session:
        seed(session, runner=RunnerState.RUNNING)

    with db.transaction() as session:
        finished = finish_task(
            session,
            task_id="t",
            worker_id="w2",
            result=TaskResult(TaskState.SUCCESS, None),
            started=None,
            now=utcnow(),
        )

    assert finished is False
    assert state(db) == {
        "task": (TaskState.RUNNING, RunnerState.RUNNING, True, None),
        "locks": ["other", "t"],
        "pending": ["other", "t"],
    }


@pytest.mark.parametrize(
    "shutdown",
    [
        pytest.param(shut_down, id="shutdown"),
        pytest.param(shut_down_all, id="shutdown-all"),
    ],
)
def test_shutdown_deletes_the_tasks_locks_with_one_statement(
    db: Database, shutdown: Callable[[Session], bool]
) -> None:
    with db.transaction() as session:
        seed(session, runner=RunnerState.RUNNING)

    with record_statements(db.engine) as statements, db.transaction() as session:
        shutdown(session)

    # On PostgreSQL the DELETE is a CTE of the ending UPDATE's statement.
    lock_deletes = [text for text in statements if "DELETE FROM task_locks" in text]
    assert len(lock_deletes) == 1


def test_lease_expiry_logs_one_line_per_task_with_its_opaque_id(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    with db.transaction(write=True) as session:
        seed(
            session,
            runner=RunnerState.RUNNING,
            request_headers='{"X-Opaque-Id": "job-7"}',
        )
    later = utcnow() + LEASE + dt.timedelta(seconds=1)

    with (
        caplog.at_level("WARNING", logger="overlord.services.scheduler"),
        db.transaction(write=True) as session,
    ):
        failed = scheduler.fail_expired_leases(session, db_now=later, lease=LEASE)

    assert failed == ["t", "other"]
    assert [
        (r.getMessage(), r.task_id, r.opaque_id)  # type: ignore[attr-defined]
        for r in caplog.records
    ] == [
        (
            "task t FAILED: the lease of its worker expired opaque_id=job-7",
            "t",
            "job-7",
        ),
        ("task other FAILED: the lease of its worker expired", "other", None),
    ]
