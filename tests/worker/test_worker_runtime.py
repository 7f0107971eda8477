"""Tasks really run: real worker processes on every backend."""

from __future__ import annotations

import signal
import time

from flask.testing import FlaskClient
from sqlalchemy import func, select

from overlord.db import Database
from overlord.store.models import PendingSegment, Task, TaskLock
from overlord.timeutil import utcnow
from tests.factories import make_pending_segment
from tests.worker.conftest import BASE, Processes, status, submit, wait_for

LOST_WORKER = (
    "The worker that this task was assigned disappeared and did not report cleanup "
    "within timeout[PT2S]. See overlord and middleManager/indexer logs for more "
    "details."
)


def _log(client: FlaskClient, task_id: str) -> str:
    response = client.get(f"{BASE}/task/{task_id}/log")
    return response.get_data(as_text=True) if response.status_code == 200 else ""


def test_noop_burst_on_two_workers_all_succeed_and_none_runs_twice(
    client: FlaskClient, processes: Processes
) -> None:
    processes.worker(2)
    processes.worker(2)
    task_ids = [
        submit(client, {"type": "noop", "dataSource": "burst", "runTime": 1})
        for _ in range(200)
    ]

    def all_done() -> bool:
        body = client.get(f"{BASE}/tasks?datasource=burst&state=complete").json
        return len(body) == 200

    wait_for(all_done, 240, interval=0.5)
    for task_id in task_ids:
        assert status(client, task_id)["statusCode"] == "SUCCESS"
        assert _log(client, task_id).count("Running noop task") == 1


def test_sigkilled_worker_task_fails_within_lease_and_unclaimed_task_runs_later(
    client: FlaskClient, processes: Processes
) -> None:
    lease = {"OVERLORD_TASK_LEASE": "PT2S"}
    victim = processes.worker(1, "--no-duties", **lease)
    processes.worker(0, **lease)  # another process running the duties
    running = submit(client, {"type": "noop", "runTime": 60000})
    wait_for(lambda: status(client, running)["runnerStatusCode"] == "RUNNING", 30)
    queued = submit(client, {"type": "noop", "runTime": 1})

    victim.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    failed = wait_for(
        lambda: (s := status(client, running))["statusCode"] == "FAILED" and s, 9
    )

    assert time.monotonic() - killed_at <= 9  # lease 2 s, 3x slack + duty period
    assert failed["errorMsg"] == LOST_WORKER
    assert status(client, queued)["statusCode"] == "RUNNING"
    processes.worker(1, **lease)
    wait_for(lambda: status(client, queued)["statusCode"] == "SUCCESS", 30)


def test_shutdown_of_running_noop_is_observed_within_a_second(
    client: FlaskClient, processes: Processes
) -> None:
    processes.worker(1)
    task_id = submit(client, {"type": "noop", "runTime": 60000})
    wait_for(lambda: "Running noop task" in _log(client, task_id), 30)

    assert client.post(f"{BASE}/task/{task_id}/shutdown").status_code == 200
    stopped_at = time.monotonic()
    wait_for(lambda: "Noop task was asked to stop" in _log(client, task_id), 3)

    assert time.monotonic() - stopped_at <= 3  # the bound is 1 s; 3x slack
    final = status(client, task_id)
    assert (final["statusCode"], final["errorMsg"]) == (
        "FAILED",
        "Shutdown request from user",
    )


def test_shutdown_all_tasks_stops_every_task_of_the_datasource(
    client: FlaskClient, processes: Processes
) -> None:
    processes.worker(2)
    ids = [
        submit(client, {"type": "noop", "dataSource": "d", "runTime": 60000})
        for _ in range(3)
    ]
    other = submit(client, {"type": "noop", "dataSource": "other", "runTime": 1})
    wait_for(lambda: status(client, ids[0])["runnerStatusCode"] == "RUNNING", 30)

    response = client.post(f"{BASE}/datasources/d/shutdownAllTasks")

    assert response.json == {"dataSource": "d"}
    for task_id in ids:
        assert status(client, task_id)["errorMsg"] == "Shutdown request from user"
    wait_for(lambda: status(client, other)["statusCode"] == "SUCCESS", 30)


def test_lock_blocked_task_waits_then_runs_when_blocker_is_shut_down(
    client: FlaskClient, processes: Processes
) -> None:
    processes.worker(2)
    holder = submit(client, {"type": "noop", "dataSource": "wiki", "runTime": 60000})
    wait_for(lambda: status(client, holder)["runnerStatusCode"] == "RUNNING", 30)
    holder_json = client.get(f"{BASE}/task/{holder}").json["payload"]
    granted = client.post(
        f"{BASE}/action",
        json={
            "task": holder_json,
            "action": {"type": "lockTryAcquire", "interval": "2024-01-01/2024-01-02"},
        },
    )
    assert granted.status_code == 200
    assert granted.json["result"]["interval"] == (
        "2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z"
    )
    # kill has priority 0, the noop 50: it cannot preempt the holder's lock.
    kill = submit(
        client,
        {"type": "kill", "dataSource": "wiki", "interval": "2024-01-01/2024-01-03"},
    )
    # A task submitted after the kill and needing no lock runs to SUCCESS: the
    # scheduler has passed over the kill meanwhile, which must still be WAITING.
    later = submit(client, {"type": "noop", "dataSource": "elsewhere", "runTime": 1})
    wait_for(lambda: status(client, later)["statusCode"] == "SUCCESS", 30)
    assert status(client, kill)["runnerStatusCode"] == "WAITING"

    client.post(f"{BASE}/task/{holder}/shutdown")

    wait_for(lambda: status(client, kill)["statusCode"] == "SUCCESS", 30)
    report = client.get(f"{BASE}/task/{kill}/reports").json
    assert report == {
        "killUnusedSegments": {
            "type": "killUnusedSegments",
            "taskId": kill,
            "payload": {
                "numSegmentsKilled": 0,
                "numBatchesProcessed": 0,
                "numSegmentsMarkedAsUnused": 0,
            },
        }
    }


def test_pending_segments_of_a_task_are_deleted_when_it_ends(
    client: FlaskClient, processes: Processes, db: Database
) -> None:
    processes.worker(1)
    task_id = submit(client, {"type": "noop", "dataSource": "wiki", "runTime": 60000})
    wait_for(lambda: status(client, task_id)["runnerStatusCode"] == "RUNNING", 30)
    now = utcnow()
    with db.transaction() as session:
        make_pending_segment(
            session, created=now, start=now, end=now, task_allocator_id=task_id
        )
        make_pending_segment(
            session, created=now, start=now, end=now, task_allocator_id="someone_else"
        )

    client.post(f"{BASE}/task/{task_id}/shutdown")

    with db.transaction() as session:
        allocators = session.scalars(select(PendingSegment.task_allocator_id)).all()
        locks = session.scalar(select(func.count()).select_from(TaskLock))
    assert allocators == ["someone_else"]
    assert locks == 0


def test_duty_removes_stale_pending_segments_but_never_an_active_tasks(
    client: FlaskClient, processes: Processes, db: Database
) -> None:
    import datetime as dt

    now = utcnow()
    active = submit(
        client, {"type": "noop", "dataSource": "wiki", "isReadyResult": "NO"}
    )
    with db.transaction() as session:
        created = session.scalar(select(Task.created_at).where(Task.task_id == active))
        assert created is not None
        stale = make_pending_segment(
            session, created=created - dt.timedelta(days=3), start=now, end=now
        )
        recent = make_pending_segment(
            session,
            created=created - dt.timedelta(hours=1),
            start=now,
            end=now,
            task_allocator_id=active,
        )
        stale_id, recent_id = stale.id, recent.id

    processes.worker(0, OVERLORD_PENDING_SEGMENTS_CLEANUP_PERIOD="PT1S")

    def remaining() -> list[str]:
        with db.transaction() as session:
            return list(session.scalars(select(PendingSegment.id)))

    wait_for(lambda: remaining() == [recent_id], 15)
    assert stale_id not in remaining()
    assert status(client, active)["runnerStatusCode"] == "WAITING"
