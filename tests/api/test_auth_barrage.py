"""A seeded barrage from a user holding only DATASOURCE READ+WRITE on ``a``: it
never reads or changes a task of ``b`` on either surface, and the store after it
is as its allowed requests left it (issue 12)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from overlord.config import Settings
from overlord.db import Database
from overlord.store.models import PendingSegment, Task
from tests.authn import add_user, auth_app, basic
from tests.factories import make_complete_task, make_pending_segment, make_task

BASE = "/druid/indexer/v1"
A_TASKS = [f"a_{n}" for n in range(4)]
B_TASKS = [f"b_{n}" for n in range(4)]
USER = basic("a-user", "pw")


@pytest.fixture
def app(settings: Settings, db: Database) -> Flask:
    return auth_app(settings, db)


def _store(db: Database) -> dict[str, Any]:
    with db.transaction() as session:
        tasks = {
            row.task_id: (row.datasource, row.status, row.active, row.error_msg)
            for row in session.execute(
                select(
                    Task.task_id,
                    Task.datasource,
                    Task.status,
                    Task.active,
                    Task.error_msg,
                )
            )
        }
        pending = sorted(session.scalars(select(PendingSegment.dataSource)))
    return {"tasks": tasks, "pending": pending}


def _seed(db: Database) -> None:
    import datetime as dt

    stamp = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    with db.transaction() as session:
        for task_id in A_TASKS[:2] + B_TASKS[:2]:
            make_task(session, task_id=task_id, datasource=task_id[0])
        for task_id in A_TASKS[2:] + B_TASKS[2:]:
            make_complete_task(session, task_id=task_id, datasource=task_id[0])
        for datasource in ("a", "b"):
            make_pending_segment(
                session,
                datasource=datasource,
                created=stamp,
                start=stamp,
                end=stamp + dt.timedelta(days=1),
            )


def _requests(rng: random.Random) -> list[tuple[str, str, Any]]:
    """(method, path, json body) of every kind, on both datasources, shuffled."""
    calls: list[tuple[str, str, Any]] = []
    for task_id in A_TASKS + B_TASKS + ["missing"]:
        for suffix in ("", "/status", "/reports", "/log", "/segments"):
            calls.append(("GET", f"{BASE}/task/{task_id}{suffix}", None))
        calls.append(("POST", f"{BASE}/task/{task_id}/shutdown", None))
        calls.append(("GET", f"/_tasks/{task_id}", None))
        calls.append(("POST", f"/_tasks/{task_id}/_cancel", None))
    for datasource in ("a", "b"):
        calls += [
            ("POST", f"{BASE}/datasources/{datasource}/shutdownAllTasks", None),
            ("DELETE", f"{BASE}/pendingSegments/{datasource}?interval=1000/3000", None),
            ("GET", f"{BASE}/tasks?datasource={datasource}", None),
            ("POST", f"{BASE}/task", {"type": "noop", "dataSource": datasource}),
        ]
    for path in (
        "/tasks",
        "/tasks?state=complete",
        "/tasks?state=running",
        "/waitingTasks",
        "/pendingTasks",
        "/runningTasks",
        "/completeTasks",
    ):
        calls.append(("GET", BASE + path, None))
    calls += [
        ("POST", f"{BASE}/taskStatus", B_TASKS),
        ("POST", f"{BASE}/action", {}),
        ("GET", "/_tasks", None),
        ("GET", "/_cat/tasks", None),
        ("POST", "/_tasks/_cancel", None),
    ]
    rng.shuffle(calls)
    return calls


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_user_of_a_never_reads_or_changes_b(
    client: FlaskClient, db: Database, seed: int
) -> None:
    _seed(db)
    add_user(
        db, "a-user", "pw", [("DATASOURCE", "a", "READ"), ("DATASOURCE", "a", "WRITE")]
    )
    before = _store(db)
    submitted: list[str] = []
    for method, path, body in _requests(random.Random(seed)):
        response = client.open(path, method=method, headers=USER, json=body)
        text = response.get_data(as_text=True)
        assert response.status_code != 500, (path, text)
        for task_id in B_TASKS:
            assert task_id not in text, (method, path, response.status_code, text)
        touches_b = (
            "/b_" in path or "/b?" in path or "/b/" in path or path.endswith("=b")
        )
        if touches_b or (body == {"type": "noop", "dataSource": "b"}):
            assert response.status_code == 403, (method, path, text)
        if path.startswith("/_"):
            # No CLUSTER permission: every _tasks call is the security exception.
            assert response.status_code == 403, (path, text)
            assert response.json["error"]["type"] == "security_exception"
        if method == "POST" and path == f"{BASE}/task" and response.status_code == 200:
            submitted.append(response.json["task"])
    after = _store(db)
    # b: exactly as before.
    assert {k: v for k, v in after["tasks"].items() if v[0] == "b"} == {
        k: v for k, v in before["tasks"].items() if v[0] == "b"
    }
    # b's pending segment kept (a's goes only once no active task of a is left,
    # which depends on the order).
    assert after["pending"].count("b") == 1
    # a: the active ones were shut down, the complete ones untouched, the new noop
    # stored (and shut down by shutdownAllTasks if that came after it).
    assert len(submitted) == 1
    a_after = {k: v for k, v in after["tasks"].items() if v[0] == "a"}
    assert set(a_after) == {*A_TASKS, *submitted}
    for task_id in A_TASKS[:2]:
        assert a_after[task_id][1:3] == ("FAILED", False)
    for task_id in A_TASKS[2:]:
        assert a_after[task_id] == before["tasks"][task_id]
