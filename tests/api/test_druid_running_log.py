"""GET /task/{id}/log answers from the moment a task is RUNNING (Druid streams a
running peon's log): the claim writes the log's first line."""

from __future__ import annotations

import datetime as dt

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from overlord.db import Database, database_now
from overlord.services import scheduler
from overlord.store.models import Task
from overlord.timeutil import format_druid, utcnow

BASE = "/druid/indexer/v1"


def claim(session: Session) -> scheduler.Claim | None:
    scheduler.promote_waiting_tasks(session, utcnow())
    return scheduler.claim_task(
        session,
        worker_id="w1",
        host="worker.example",
        port=8091,
        db_now=database_now(session),
        lease=dt.timedelta(seconds=30),
        skip_locked=False,
    )


def test_log_of_a_running_task_answers_its_first_line(
    client: FlaskClient, db: Database
) -> None:
    submitted = client.post(
        f"{BASE}/task",
        json={"type": "noop", "id": "long", "dataSource": "wiki", "runTime": 600000},
    )
    assert submitted.status_code == 200
    before = client.get(f"{BASE}/task/long/log")

    claimed = db.run(claim, write=True)
    with db.transaction() as session:
        started = session.scalar(select(Task.started_at).where(Task.task_id == "long"))
    status = client.get(f"{BASE}/task/long/status").json["status"]["status"]
    response = client.get(f"{BASE}/task/long/log")

    assert before.status_code == 404
    assert claimed == scheduler.Claim("long")
    assert status == "RUNNING"
    assert started is not None
    assert (response.status_code, response.content_type) == (
        200,
        "text/plain; charset=UTF-8",
    )
    assert (
        response.get_data()
        == (
            f"{format_druid(started)} INFO [long] Task is RUNNING on worker[w1] at "
            "location[worker.example:8091]\n"
        ).encode()
    )


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        pytest.param("-7", b":8091]\n", id="tail"),
        pytest.param("1000", b"", id="past-the-end"),
    ],
)
def test_log_offsets_apply_to_the_claim_line(
    client: FlaskClient, db: Database, offset: str, expected: bytes
) -> None:
    client.post(f"{BASE}/task", json={"type": "noop", "id": "long", "dataSource": "w"})
    db.run(claim, write=True)

    response = client.get(f"{BASE}/task/long/log?offset={offset}")

    assert (response.status_code, response.get_data()) == (200, expected)
