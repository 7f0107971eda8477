"""No HTTP thread waits unbounded and no list holds a pooled connection while a
slow client reads it (issue 8): lists are fetched, the transaction ended, then
sent; lockAcquire waits at most ``action_wait_cap``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from overlord.app import create_app
from overlord.config import Settings
from overlord.db import Database
from overlord.states import RunnerState, TaskState
from overlord.timeutil import utcnow
from tests.api.test_druid_actions import act, task_json
from tests.factories import make_task, make_tasks

BASE = "/druid/indexer/v1"
ROWS = 450  # more than two chunks of a streamed list


@pytest.fixture
def one_connection(settings: Settings) -> Iterator[Database]:
    """A pool of exactly one connection: a request that kept it while its body is
    read would make the next request wait, then fail."""
    database = Database(settings, pool_size=1, max_overflow=0, pool_timeout=2)
    yield database
    database.dispose()


@pytest.fixture
def tight_app(settings: Settings, one_connection: Database) -> Flask:
    application = create_app(settings, database=one_connection)
    application.testing = True
    return application


@pytest.fixture
def many_tasks(one_connection: Database) -> None:
    now = utcnow()
    rows = []
    for index in range(ROWS):
        row: dict[str, object] = {
            "task_id": f"t_{index:04d}",
            "created_at": now - dt.timedelta(seconds=ROWS - index),
            "runner_status": RunnerState.RUNNING,
        }
        if index % 2:
            row.update(
                active=False,
                status=TaskState.SUCCESS,
                runner_status=RunnerState.NONE,
                duration_ms=3,
            )
        rows.append(row)
    with one_connection.transaction() as session:
        make_tasks(session, rows)


LISTS = [
    pytest.param("/druid/indexer/v1/tasks", ROWS, id="tasks"),
    pytest.param("/druid/indexer/v1/runningTasks", ROWS // 2, id="runningTasks"),
    pytest.param("/druid/indexer/v1/completeTasks", ROWS // 2, id="completeTasks"),
    pytest.param("/_tasks?group_by=none", None, id="_tasks"),
]


@pytest.mark.usefixtures("many_tasks")
@pytest.mark.parametrize(("path", "count"), LISTS)
def test_a_list_read_slowly_holds_no_connection(
    tight_app: Flask, one_connection: Database, path: str, count: int | None
) -> None:
    client = tight_app.test_client()
    response = client.get(path)
    chunks = response.iter_encoded()
    first = next(chunks)  # the client has read the first piece only

    checked_out = one_connection.engine.pool.checkedout()  # type: ignore[attr-defined]
    started = time.monotonic()
    other = client.get(f"{BASE}/task/t_0000/status")
    other_seconds = time.monotonic() - started
    rest = b"".join(chunks)
    response.close()

    assert checked_out == 0
    assert other.status_code == 200
    assert other.json["status"]["id"] == "t_0000"
    assert other_seconds < 1.5  # not after the pool's 2 s checkout timeout
    body = json.loads(first + rest)
    if count is not None:
        assert len(body) == count
    else:
        # The active Druid tasks and the list request itself.
        assert len(body["tasks"]) == ROWS // 2 + 1


@pytest.fixture
def capped_client(settings: Settings, db: Database) -> FlaskClient:
    capped = dataclasses.replace(settings, action_wait_cap=dt.timedelta(seconds=1))
    application = create_app(capped, database=db)
    application.testing = True
    with db.transaction() as session:
        for task_id in ("holder", "waiter"):
            make_task(session, task_id=task_id)
    return application.test_client()


@pytest.mark.parametrize(
    "timeout_ms",
    [
        pytest.param(3_600_000, id="an-hour"),
        pytest.param(0, id="no-limit"),
        pytest.param(None, id="absent"),
    ],
)
def test_lock_acquire_waits_at_most_the_cap(
    capped_client: FlaskClient, timeout_ms: int | None
) -> None:
    day = "2024-01-01/2024-01-02"
    held = act(
        capped_client,
        task_json("holder"),
        {"type": "lockTryAcquire", "interval": day},
    )
    action: dict[str, object] = {"type": "lockAcquire", "interval": day}
    if timeout_ms is not None:
        action["timeoutMs"] = timeout_ms

    started = time.monotonic()
    response = act(capped_client, task_json("waiter"), action)
    waited = time.monotonic() - started

    assert held.status_code == 200
    assert (response.status_code, response.json) == (200, {"result": None})
    assert 1.0 <= waited < 10.0


def test_lock_acquire_with_a_short_timeout_waits_only_that_long(
    capped_client: FlaskClient,
) -> None:
    day = "2024-01-01/2024-01-02"
    act(capped_client, task_json("holder"), {"type": "lockTryAcquire", "interval": day})

    started = time.monotonic()
    response = act(
        capped_client,
        task_json("waiter"),
        {"type": "lockAcquire", "interval": day, "timeoutMs": 200},
    )
    waited = time.monotonic() - started

    assert (response.status_code, response.json) == (200, {"result": None})
    assert 0.2 <= waited < 0.9
