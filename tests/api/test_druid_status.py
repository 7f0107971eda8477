"""GET /task/{id}/status and GET /task/{id}: whole bodies, every backend."""

from __future__ import annotations

import datetime as dt

from flask.testing import FlaskClient

from overlord.db import Database
from overlord.states import RunnerState, TaskState
from tests.factories import make_complete_task, make_task

BASE = "/druid/indexer/v1"
CREATED = dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)


def test_status_of_waiting_task_is_running_with_runner_waiting(
    client: FlaskClient, db: Database
) -> None:
    with db.transaction() as session:
        make_task(session, task_id="t1", created_at=CREATED)

    response = client.get(f"{BASE}/task/t1/status")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_data(as_text=True) == (
        '{"task":"t1","status":{"id":"t1","groupId":"t1","type":"noop",'
        '"createdTime":"2024-01-02T03:04:05.678Z",'
        '"queueInsertionTime":"1970-01-01T00:00:00.000Z",'
        '"statusCode":"RUNNING","status":"RUNNING","runnerStatusCode":"WAITING",'
        '"duration":-1,"location":{"host":null,"port":-1,"tlsPort":-1},'
        '"dataSource":"wiki","errorMsg":null}}'
    )


def test_status_of_finished_task_shows_runner_waiting_like_druid(
    client: FlaskClient, db: Database
) -> None:
    with db.transaction() as session:
        make_complete_task(
            session,
            task_id="done",
            created_at=CREATED,
            status=TaskState.FAILED,
            error_msg="boom",
            duration_ms=42,
            location_host="w1",
            location_port=8100,
        )

    body = client.get(f"{BASE}/task/done/status").json

    assert body == {
        "task": "done",
        "status": {
            "id": "done",
            "groupId": "done",
            "type": "noop",
            "createdTime": "2024-01-02T03:04:05.678Z",
            "queueInsertionTime": "1970-01-01T00:00:00.000Z",
            "statusCode": "FAILED",
            "status": "FAILED",
            "runnerStatusCode": "WAITING",
            "duration": 42,
            "location": {"host": "w1", "port": 8100, "tlsPort": -1},
            "dataSource": "wiki",
            "errorMsg": "boom",
        },
    }


def test_status_of_running_task_shows_runner_state_and_location(
    client: FlaskClient, db: Database
) -> None:
    with db.transaction() as session:
        make_task(
            session,
            task_id="r",
            created_at=CREATED,
            runner_status=RunnerState.RUNNING,
            queue_inserted_at=CREATED,
            location_host="worker-1",
            location_port=8091,
        )

    status = client.get(f"{BASE}/task/r/status").json["status"]

    assert status["runnerStatusCode"] == "RUNNING"
    assert status["queueInsertionTime"] == "1970-01-01T00:00:00.000Z"
    assert status["location"] == {"host": "worker-1", "port": 8091, "tlsPort": -1}


def test_long_error_msg_is_truncated_as_newest_druid(
    client: FlaskClient, db: Database
) -> None:
    message = "a" * 600 + "b" * 600
    with db.transaction() as session:
        make_complete_task(
            session, task_id="long", status=TaskState.FAILED, error_msg=message
        )

    shown = client.get(f"{BASE}/task/long/status").json["status"]["errorMsg"]

    assert shown == "a" * 512 + "...176 characters omitted..." + "b" * 512
