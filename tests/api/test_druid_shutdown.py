"""POST /task/{id}/shutdown and POST /datasources/{ds}/shutdownAllTasks
(spec §0.9, §1.8, §1.9): statuses, locks, audit rows and the exact bodies."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from overlord.db import Database
from overlord.states import RunnerState, TaskState
from overlord.store.models import AuditEntry, PendingSegment, Task, TaskLock
from tests.factories import (
    make_complete_task,
    make_lock,
    make_pending_segment,
    make_task,
)

BASE = "/druid/indexer/v1"
CREATED = dt.datetime(2024, 3, 4, 5, 6, 7, 890000, tzinfo=dt.UTC)
SHUTDOWN = "Shutdown request from user"
TEXT = "text/plain; charset=UTF-8"


def task_rows(db: Database) -> dict[str, tuple[Any, ...]]:
    """task_id → (status, runner_status, active, error_msg) of every task."""
    with db.transaction() as session:
        return {
            row.task_id: (row.status, row.runner_status, row.active, row.error_msg)
            for row in session.execute(
                select(
                    Task.task_id,
                    Task.status,
                    Task.runner_status,
                    Task.active,
                    Task.error_msg,
                )
            )
        }


def lock_owners(db: Database) -> list[str]:
    with db.transaction() as session:
        return list(
            session.scalars(select(TaskLock.task_id).order_by(TaskLock.task_id))
        )


def audit_rows(db: Database) -> list[tuple[Any, ...]]:
    with db.transaction() as session:
        return [
            (row.audit_key, row.type, row.payload, row.author, row.comment, row.ip)
            for row in session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        ]


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="waiting"),
        pytest.param(
            {"runner_status": RunnerState.PENDING, "queue_inserted_at": CREATED},
            id="pending",
        ),
        pytest.param(
            {
                "runner_status": RunnerState.RUNNING,
                "queue_inserted_at": CREATED,
                "location_host": "worker-1",
                "location_port": 8100,
            },
            id="running",
        ),
    ],
)
def test_shutdown_active_task_fails_it_and_releases_its_locks(
    client: FlaskClient, db: Database, fields: dict[str, Any]
) -> None:
    with db.transaction() as session:
        task = make_task(session, task_id="t1", created_at=CREATED, **fields)
        make_lock(session, task)
        make_lock(
            session,
            task,
            start=dt.datetime(2024, 2, 1, tzinfo=dt.UTC),
            end=dt.datetime(2024, 2, 2, tzinfo=dt.UTC),
        )
        other = make_task(session, task_id="t2", created_at=CREATED)
        make_lock(
            session,
            other,
            start=dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
            end=dt.datetime(2024, 3, 2, tzinfo=dt.UTC),
        )

    response = client.post(
        f"{BASE}/task/t1/shutdown",
        headers={"X-Druid-Author": "alice", "X-Druid-Comment": "stop it"},
    )

    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert response.get_data(as_text=True) == '{"task":"t1"}'
    location = (
        {"host": "worker-1", "port": 8100, "tlsPort": -1}
        if "location_host" in fields
        else {"host": None, "port": -1, "tlsPort": -1}
    )
    assert client.get(f"{BASE}/task/t1/status").json == {
        "task": "t1",
        "status": {
            "id": "t1",
            "groupId": "t1",
            "type": "noop",
            "createdTime": "2024-03-04T05:06:07.890Z",
            "queueInsertionTime": "1970-01-01T00:00:00.000Z",
            "statusCode": "FAILED",
            "status": "FAILED",
            "runnerStatusCode": "WAITING",
            "duration": -1,
            "location": location,
            "dataSource": "wiki",
            "errorMsg": SHUTDOWN,
        },
    }
    assert task_rows(db) == {
        "t1": (TaskState.FAILED, RunnerState.NONE, False, SHUTDOWN),
        "t2": (TaskState.RUNNING, RunnerState.WAITING, True, None),
    }
    assert lock_owners(db) == ["t2"]
    assert audit_rows(db) == [
        ("t1", "task.shutdown", '{"id":"t1"}', "alice", "stop it", "127.0.0.1")
    ]


@pytest.mark.parametrize(
    ("status", "error_msg"),
    [
        pytest.param(TaskState.SUCCESS, None, id="success"),
        pytest.param(TaskState.FAILED, "boom", id="failed"),
    ],
)
def test_shutdown_finished_task_returns_200_and_keeps_its_status(
    client: FlaskClient, db: Database, status: TaskState, error_msg: str | None
) -> None:
    with db.transaction() as session:
        make_complete_task(session, task_id="done", status=status, error_msg=error_msg)

    response = client.post(f"{BASE}/task/done/shutdown")

    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert response.get_data(as_text=True) == '{"task":"done"}'
    assert task_rows(db) == {"done": (status, RunnerState.NONE, False, error_msg)}
    assert audit_rows(db) == []


def test_shutdown_unknown_task_returns_404_text(
    client: FlaskClient, db: Database
) -> None:
    with db.transaction() as session:
        make_task(session, task_id="known")

    response = client.post(f"{BASE}/task/unknown_1/shutdown")

    assert response.status_code == 404
    assert response.content_type == TEXT
    assert (
        response.get_data(as_text=True) == "Cannot find any task with id: [unknown_1]"
    )
    assert task_rows(db)["known"] == (
        TaskState.RUNNING,
        RunnerState.WAITING,
        True,
        None,
    )
    assert audit_rows(db) == []


@pytest.mark.parametrize(
    "request_options",
    [
        # Airflow's DruidHook posts nothing: Content-Length 0, no Content-Type.
        pytest.param(
            {"data": b"", "environ_overrides": {"CONTENT_LENGTH": "0"}},
            id="airflow-no-body",
        ),
        # The web console posts `{}` as JSON.
        pytest.param(
            {"data": "{}", "content_type": "application/json"}, id="console-empty-json"
        ),
    ],
)
def test_shutdown_accepts_the_bodies_clients_send(
    client: FlaskClient, db: Database, request_options: dict[str, Any]
) -> None:
    with db.transaction() as session:
        make_task(session, task_id="t1")

    response = client.post(f"{BASE}/task/t1/shutdown", **request_options)

    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert response.get_data(as_text=True) == '{"task":"t1"}'
    assert task_rows(db) == {
        "t1": (TaskState.FAILED, RunnerState.NONE, False, SHUTDOWN)
    }


def test_shutdown_all_tasks_fails_only_active_tasks_of_the_datasource(
    client: FlaskClient, db: Database
) -> None:
    with db.transaction() as session:
        waiting = make_task(
            session, task_id="a1", created_at=CREATED - dt.timedelta(minutes=3)
        )
        make_lock(session, waiting)
        make_task(
            session,
            task_id="a2",
            created_at=CREATED - dt.timedelta(minutes=2),
            runner_status=RunnerState.PENDING,
        )
        make_task(
            session,
            task_id="a3",
            created_at=CREATED - dt.timedelta(minutes=1),
            runner_status=RunnerState.RUNNING,
        )
        make_complete_task(session, task_id="d1")
        make_complete_task(
            session, task_id="d2", status=TaskState.FAILED, error_msg="boom"
        )
        other = make_task(
            session,
            task_id="k1",
            datasource="koala",
            runner_status=RunnerState.RUNNING,
        )
        make_lock(session, other)
        # Pending segments allocated by an ended task go; the rest stay.
        for allocator, datasource in [
            ("a1", "wiki"),
            ("a3", "wiki"),
            ("d1", "wiki"),
            ("k1", "koala"),
            (None, "wiki"),
        ]:
            make_pending_segment(
                session,
                datasource=datasource,
                created=CREATED,
                start=CREATED,
                end=CREATED + dt.timedelta(hours=1),
                sequence_name=f"seq_{allocator}",
                task_allocator_id=allocator,
            )

    response = client.post(
        f"{BASE}/datasources/wiki/shutdownAllTasks",
        headers={"X-Druid-Author": "bob"},
    )

    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert response.get_data(as_text=True) == '{"dataSource":"wiki"}'
    failed = (TaskState.FAILED, RunnerState.NONE, False, SHUTDOWN)
    assert task_rows(db) == {
        "a1": failed,
        "a2": failed,
        "a3": failed,
        "d1": (TaskState.SUCCESS, RunnerState.NONE, False, None),
        "d2": (TaskState.FAILED, RunnerState.NONE, False, "boom"),
        "k1": (TaskState.RUNNING, RunnerState.RUNNING, True, None),
    }
    assert lock_owners(db) == ["k1"]
    with db.transaction() as session:
        assert sorted(session.scalars(select(PendingSegment.sequence_name))) == [
            "seq_None",
            "seq_d1",
            "seq_k1",
        ]
    assert audit_rows(db) == [
        (
            "wiki",
            "task.shutdownAll",
            '{"dataSource":"wiki","taskIds":["a1","a2","a3"]}',
            "bob",
            None,
            "127.0.0.1",
        )
    ]


@pytest.mark.parametrize(
    "datasource",
    [
        pytest.param("wiki", id="only-finished-tasks"),
        pytest.param("nothing", id="no-tasks-at-all"),
        pytest.param("Koala", id="case-differs"),
    ],
)
def test_shutdown_all_tasks_without_active_task_returns_404_empty(
    client: FlaskClient, db: Database, datasource: str
) -> None:
    with db.transaction() as session:
        make_complete_task(session, task_id="done")
        make_task(session, task_id="k1", datasource="koala")

    response = client.post(f"{BASE}/datasources/{datasource}/shutdownAllTasks")

    assert response.status_code == 404
    assert response.data == b""
    assert "Content-Type" not in response.headers
    assert task_rows(db) == {
        "done": (TaskState.SUCCESS, RunnerState.NONE, False, None),
        "k1": (TaskState.RUNNING, RunnerState.WAITING, True, None),
    }
    assert audit_rows(db) == []


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("task/t1/shutdown", id="task"),
        pytest.param("task/unknown/shutdown", id="unknown-task"),
        pytest.param("datasources/wiki/shutdownAllTasks", id="datasource"),
    ],
)
def test_shutdown_paths_refuse_get_with_405(
    client: FlaskClient, db: Database, path: str
) -> None:
    with db.transaction() as session:
        make_task(session, task_id="t1")

    response = client.get(f"{BASE}/{path}")

    assert response.status_code == 405
    assert response.content_type == "application/json"
    assert response.json == {
        "error": "The method is not allowed for the requested URL."
    }
    assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    assert task_rows(db)["t1"] == (TaskState.RUNNING, RunnerState.WAITING, True, None)


def test_shutdowns_log_one_line_with_the_task_and_the_callers_opaque_id(
    client: FlaskClient, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    with db.transaction(write=True) as session:
        make_task(session, task_id="t1", datasource="wiki")
        make_task(session, task_id="t2", datasource="wiki")
    caplog.set_level("INFO", logger="overlord.api.druid")
    one = client.post(
        f"{BASE}/task/t1/shutdown",
        headers={"X-Opaque-Id": "job-7", "X-Druid-Author": "ops"},
    )
    assert one.get_json() == {"task": "t1"}
    every = client.post(f"{BASE}/datasources/wiki/shutdownAllTasks")
    assert every.get_json() == {"dataSource": "wiki"}
    lines = [
        (r.getMessage(), getattr(r, "task_id", None), getattr(r, "opaque_id", None))
        for r in caplog.records
        if r.name == "overlord.api.druid"
    ]
    assert lines == [
        ("shutdown of task t1 requested by ops opaque_id=job-7", "t1", "job-7"),
        ("shutdown of 1 tasks of wiki requested by anonymous", None, None),
    ]
