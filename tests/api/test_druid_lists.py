"""GET /tasks and the legacy list endpoints (spec §1.2): order, filters, the
createdTimeInterval quirk, runner fields, query budget and streaming."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from overlord.app import create_app
from overlord.config import Settings
from overlord.db import Database
from overlord.states import RunnerState, TaskState
from overlord.timeutil import utcnow
from tests.factories import make_complete_task, make_task, make_tasks
from tests.statements import data_queries, record_statements

BASE = "/druid/indexer/v1"
EPOCH_TEXT = "1970-01-01T00:00:00.000Z"
UNKNOWN_LOCATION = {"host": None, "port": -1, "tlsPort": -1}


def druid_time(value: dt.datetime) -> str:
    """Joda's rendering, written out here so the test does not reuse the code."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def status_plus(
    task_id: str,
    created: dt.datetime,
    *,
    status: str = "RUNNING",
    runner: str = "WAITING",
    queue: str = EPOCH_TEXT,
    duration: int = -1,
    datasource: str = "wiki",
    task_type: str = "noop",
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "id": task_id,
        "groupId": task_id,
        "type": task_type,
        "createdTime": druid_time(created),
        "queueInsertionTime": queue,
        "statusCode": status,
        "status": status,
        "runnerStatusCode": runner,
        "duration": duration,
        "location": UNKNOWN_LOCATION,
        "dataSource": datasource,
        "errorMsg": error,
    }


@pytest.fixture
def rows(db: Database) -> dict[str, dict[str, Any]]:
    """One task of each kind, two datasources and two types, inserted out of order.

    Expected order without filters: c_new, c_old (complete, newest created first),
    then a_wait, a_pend, a_run (active, oldest created first).
    """
    now = utcnow()
    ago = {
        name: now - dt.timedelta(hours=hours)
        for name, hours in {
            "c_new": 1,
            "c_old": 3,
            "a_wait": 5,
            "a_pend": 4,
            "a_run": 2,
        }.items()
    }
    queued_pend = now - dt.timedelta(hours=3, minutes=30)
    queued_run = now - dt.timedelta(hours=1, minutes=45)
    with db.transaction() as session:
        make_task(
            session,
            task_id="a_run",
            created_at=ago["a_run"],
            runner_status=RunnerState.RUNNING,
            queue_inserted_at=queued_run,
            location_host="worker-2",
            location_port=8101,
            location_tls_port=8102,
        )
        make_complete_task(
            session,
            task_id="c_old",
            group_id="group_old",
            datasource="koala",
            created_at=ago["c_old"],
        )
        # A WAITING row with a leftover queue time still shows the epoch.
        make_task(
            session,
            task_id="a_wait",
            created_at=ago["a_wait"],
            queue_inserted_at=now - dt.timedelta(hours=4),
        )
        make_complete_task(
            session,
            task_id="c_new",
            type="index_parallel",
            created_at=ago["c_new"],
            queue_inserted_at=now - dt.timedelta(minutes=50),
            status=TaskState.FAILED,
            error_msg="boom",
            duration_ms=4321,
            location_host="worker-1",
            location_port=8100,
        )
        make_task(
            session,
            task_id="a_pend",
            type="index_parallel",
            datasource="koala",
            created_at=ago["a_pend"],
            runner_status=RunnerState.PENDING,
            queue_inserted_at=queued_pend,
        )
    return {
        "c_new": {
            "id": "c_new",
            "groupId": "c_new",
            "type": "index_parallel",
            "createdTime": druid_time(ago["c_new"]),
            "queueInsertionTime": EPOCH_TEXT,
            "statusCode": "FAILED",
            "status": "FAILED",
            "runnerStatusCode": "NONE",
            "duration": 4321,
            "location": {"host": "worker-1", "port": 8100, "tlsPort": -1},
            "dataSource": "wiki",
            "errorMsg": "boom",
        },
        "c_old": {
            "id": "c_old",
            "groupId": "group_old",
            "type": "noop",
            "createdTime": druid_time(ago["c_old"]),
            "queueInsertionTime": EPOCH_TEXT,
            "statusCode": "SUCCESS",
            "status": "SUCCESS",
            "runnerStatusCode": "NONE",
            "duration": 1234,
            "location": UNKNOWN_LOCATION,
            "dataSource": "koala",
            "errorMsg": None,
        },
        "a_wait": {
            "id": "a_wait",
            "groupId": "a_wait",
            "type": "noop",
            "createdTime": druid_time(ago["a_wait"]),
            "queueInsertionTime": EPOCH_TEXT,
            "statusCode": "RUNNING",
            "status": "RUNNING",
            "runnerStatusCode": "WAITING",
            "duration": -1,
            "location": UNKNOWN_LOCATION,
            "dataSource": "wiki",
            "errorMsg": None,
        },
        "a_pend": {
            "id": "a_pend",
            "groupId": "a_pend",
            "type": "index_parallel",
            "createdTime": druid_time(ago["a_pend"]),
            "queueInsertionTime": druid_time(queued_pend),
            "statusCode": "RUNNING",
            "status": "RUNNING",
            "runnerStatusCode": "PENDING",
            "duration": -1,
            "location": UNKNOWN_LOCATION,
            "dataSource": "koala",
            "errorMsg": None,
        },
        "a_run": {
            "id": "a_run",
            "groupId": "a_run",
            "type": "noop",
            "createdTime": druid_time(ago["a_run"]),
            "queueInsertionTime": druid_time(queued_run),
            "statusCode": "RUNNING",
            "status": "RUNNING",
            "runnerStatusCode": "RUNNING",
            "duration": -1,
            "location": {"host": "worker-2", "port": 8101, "tlsPort": 8102},
            "dataSource": "wiki",
            "errorMsg": None,
        },
    }


def test_tasks_without_params_lists_complete_newest_first_then_active_oldest_first(
    client: FlaskClient, rows: dict[str, dict[str, Any]]
) -> None:
    response = client.get(f"{BASE}/tasks")

    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert response.json == [
        rows["c_new"],
        rows["c_old"],
        rows["a_wait"],
        rows["a_pend"],
        rows["a_run"],
    ]


def test_tasks_row_keys_follow_druid_order(
    client: FlaskClient, rows: dict[str, dict[str, Any]]
) -> None:
    response = client.get(f"{BASE}/tasks?state=complete&datasource=koala")

    assert response.status_code == 200
    assert response.get_data(as_text=True) == (
        '[{"id":"c_old","groupId":"group_old","type":"noop",'
        f'"createdTime":"{rows["c_old"]["createdTime"]}",'
        '"queueInsertionTime":"1970-01-01T00:00:00.000Z",'
        '"statusCode":"SUCCESS","status":"SUCCESS","runnerStatusCode":"NONE",'
        '"duration":1234,"location":{"host":null,"port":-1,"tlsPort":-1},'
        '"dataSource":"koala","errorMsg":null}]'
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("state=waiting", ["a_wait"], id="waiting"),
        pytest.param("state=WAITING", ["a_wait"], id="waiting-upper-case"),
        pytest.param("state=pending", ["a_pend"], id="pending"),
        pytest.param("state=Pending", ["a_pend"], id="pending-mixed-case"),
        pytest.param("state=running", ["a_run"], id="running"),
        pytest.param("state=RUNNING", ["a_run"], id="running-upper-case"),
        pytest.param("state=complete", ["c_new", "c_old"], id="complete"),
        pytest.param("state=Complete", ["c_new", "c_old"], id="complete-mixed-case"),
        pytest.param(
            "datasource=wiki", ["c_new", "a_wait", "a_run"], id="datasource-wiki"
        ),
        pytest.param("datasource=koala", ["c_old", "a_pend"], id="datasource-koala"),
        pytest.param("datasource=Wiki", [], id="datasource-is-case-sensitive"),
        pytest.param("datasource=nope", [], id="datasource-unknown"),
        pytest.param("type=noop", ["c_old", "a_wait", "a_run"], id="type-noop"),
        pytest.param("type=index_parallel", ["c_new", "a_pend"], id="type-index"),
        pytest.param(
            "datasource=wiki&type=noop", ["a_wait", "a_run"], id="datasource-and-type"
        ),
        pytest.param(
            "state=complete&datasource=koala", ["c_old"], id="complete-datasource"
        ),
        pytest.param("state=running&type=index_parallel", [], id="running-type"),
        pytest.param("state=pending&datasource=koala", ["a_pend"], id="pending-ds"),
        pytest.param(
            "max=1", ["c_new", "a_wait", "a_pend", "a_run"], id="max-limits-complete"
        ),
        pytest.param("max=0", ["a_wait", "a_pend", "a_run"], id="max-zero"),
        pytest.param(
            "max=10",
            ["c_new", "c_old", "a_wait", "a_pend", "a_run"],
            id="max-above-count",
        ),
        pytest.param("state=complete&max=1", ["c_new"], id="complete-max-one"),
        pytest.param("state=complete&max=0", [], id="complete-max-zero"),
        pytest.param("state=running&max=0", ["a_run"], id="max-ignored-for-active"),
        pytest.param(
            "capabilities&foo=bar&n=1",
            ["c_new", "c_old", "a_wait", "a_pend", "a_run"],
            id="unknown-params-ignored",
        ),
    ],
)
def test_tasks_filters_select_rows(
    client: FlaskClient,
    rows: dict[str, dict[str, Any]],
    query: str,
    expected: list[str],
) -> None:
    response = client.get(f"{BASE}/tasks?{query}")

    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert response.json == [rows[task_id] for task_id in expected]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("waitingTasks", ["a_wait"], id="waiting"),
        pytest.param(
            "waitingTasks?datasource=koala&type=index_parallel",
            ["a_wait"],
            id="waiting-ignores-filters",
        ),
        pytest.param("pendingTasks", ["a_pend"], id="pending"),
        pytest.param(
            "pendingTasks?datasource=wiki", ["a_pend"], id="pending-ignores-datasource"
        ),
        pytest.param("runningTasks", ["a_run"], id="running"),
        pytest.param("runningTasks?type=noop", ["a_run"], id="running-type-match"),
        pytest.param(
            "runningTasks?type=index_parallel", [], id="running-type-honoured"
        ),
        pytest.param(
            "runningTasks?datasource=koala", ["a_run"], id="running-ignores-datasource"
        ),
        pytest.param("completeTasks", ["c_new", "c_old"], id="complete"),
        pytest.param("completeTasks?n=1", ["c_new"], id="complete-n-is-max"),
        pytest.param("completeTasks?n=0", [], id="complete-n-zero"),
        pytest.param(
            "completeTasks?max=1", ["c_new", "c_old"], id="complete-ignores-max"
        ),
        pytest.param(
            "completeTasks?datasource=koala&type=noop",
            ["c_new", "c_old"],
            id="complete-ignores-filters",
        ),
    ],
)
def test_legacy_list_endpoints_take_only_their_own_params(
    client: FlaskClient,
    rows: dict[str, dict[str, Any]],
    path: str,
    expected: list[str],
) -> None:
    response = client.get(f"{BASE}/{path}")

    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert response.json == [rows[task_id] for task_id in expected]


def test_tasks_ties_on_created_time_follow_insertion_order(
    client: FlaskClient, db: Database
) -> None:
    created = utcnow() - dt.timedelta(hours=1)
    with db.transaction() as session:
        # Inserted in an order that is neither alphabetical nor reversed.
        for task_id in ("done_b", "done_c", "done_a"):
            make_complete_task(session, task_id=task_id, created_at=created)
        for task_id in ("live_b", "live_c", "live_a"):
            make_task(session, task_id=task_id, created_at=created)

    body = client.get(f"{BASE}/tasks").json

    def complete(task_id: str) -> dict[str, Any]:
        return status_plus(
            task_id, created, status="SUCCESS", runner="NONE", duration=1234
        )

    assert body == [
        # Complete rows newest first: the later insert counts as newer.
        complete("done_a"),
        complete("done_c"),
        complete("done_b"),
        status_plus("live_b", created),
        status_plus("live_c", created),
        status_plus("live_a", created),
    ]


@pytest.fixture
def aged(db: Database) -> dict[str, dict[str, Any]]:
    """Complete tasks created 1 h, 23 h, 25 h, 2 days and 10 days ago, plus an active
    task created 10 days ago (active rows are never limited by age)."""
    now = utcnow()
    hours = {"h1": 1, "h23": 23, "h25": 25, "d2": 48, "d10": 240}
    expected: dict[str, dict[str, Any]] = {}
    with db.transaction() as session:
        for task_id, age in hours.items():
            created = now - dt.timedelta(hours=age)
            make_complete_task(session, task_id=task_id, created_at=created)
            expected[task_id] = status_plus(
                task_id, created, status="SUCCESS", runner="NONE", duration=1234
            )
        created = now - dt.timedelta(days=10)
        make_task(session, task_id="live", created_at=created)
        expected["live"] = status_plus("live", created)
    return expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("", ["h1", "h23", "live"], id="default-24h"),
        pytest.param(
            "createdTimeInterval=2010-01-01_P1D", ["h1", "h23", "live"], id="P1D"
        ),
        pytest.param(
            "createdTimeInterval=2010-01-01_2010-01-02",
            ["h1", "h23", "live"],
            id="start-end-one-day",
        ),
        pytest.param(
            "createdTimeInterval=P1D_2010-01-02", ["h1", "h23", "live"], id="P1D-end"
        ),
        pytest.param("createdTimeInterval=2010-01-01_PT2H", ["h1", "live"], id="PT2H"),
        pytest.param(
            "createdTimeInterval=2010-01-01_P3D",
            ["h1", "h23", "h25", "d2", "live"],
            id="P3D",
        ),
        pytest.param(
            "state=complete&createdTimeInterval=2010-01-01_P1D",
            ["h1", "h23"],
            id="complete-P1D",
        ),
        pytest.param(
            "state=complete&createdTimeInterval=2010-01-01_P30D&max=2",
            ["h1", "h23"],
            id="complete-P30D-max",
        ),
    ],
)
def test_tasks_created_time_interval_keeps_only_its_length(
    client: FlaskClient,
    aged: dict[str, dict[str, Any]],
    query: str,
    expected: list[str],
) -> None:
    response = client.get(f"{BASE}/tasks?{query}")

    assert response.status_code == 200
    assert response.json == [aged[task_id] for task_id in expected]


def test_tasks_threshold_setting_limits_complete_rows(
    settings: Settings, db: Database, aged: dict[str, dict[str, Any]]
) -> None:
    app = create_app(
        dataclasses.replace(settings, recently_finished_threshold=dt.timedelta(days=3)),
        database=db,
    )

    body = app.test_client().get(f"{BASE}/tasks").json

    assert body == [aged[t] for t in ("h1", "h23", "h25", "d2", "live")]


@pytest.mark.parametrize(
    ("fields", "runner", "queue_shown"),
    [
        pytest.param({}, "WAITING", False, id="waiting-epoch"),
        pytest.param(
            {"runner_status": RunnerState.PENDING}, "PENDING", True, id="pending-queued"
        ),
        pytest.param(
            {"runner_status": RunnerState.RUNNING}, "RUNNING", True, id="running-queued"
        ),
    ],
)
def test_tasks_queue_insertion_time_only_for_tasks_the_runner_has(
    client: FlaskClient,
    db: Database,
    fields: dict[str, Any],
    runner: str,
    queue_shown: bool,
) -> None:
    created = utcnow() - dt.timedelta(minutes=10)
    queued = created + dt.timedelta(minutes=1, milliseconds=234)
    with db.transaction() as session:
        make_task(
            session, task_id="t", created_at=created, queue_inserted_at=queued, **fields
        )

    body = client.get(f"{BASE}/tasks").json

    queue = druid_time(queued) if queue_shown else EPOCH_TEXT
    assert body == [status_plus("t", created, runner=runner, queue=queue)]


@pytest.mark.parametrize(
    ("query", "status", "content_type", "body"),
    [
        pytest.param(
            "state=blah",
            400,
            "text/plain; charset=UTF-8",
            "Invalid task state[blah]. Must be one of "
            "[pending, waiting, running, complete].",
            id="bad-state",
        ),
        pytest.param(
            "state=",
            400,
            "text/plain; charset=UTF-8",
            "Invalid task state[]. Must be one of "
            "[pending, waiting, running, complete].",
            id="empty-state",
        ),
        pytest.param(
            "max=abc",
            404,
            "application/json",
            '{"error":"Invalid value for query parameter [max]: [abc] is not a number"}',
            id="max-not-a-number-is-404-as-jersey",
        ),
    ],
)
def test_tasks_bad_params_are_refused(
    client: FlaskClient, query: str, status: int, content_type: str, body: str
) -> None:
    response = client.get(f"{BASE}/tasks?{query}")

    assert response.status_code == status
    assert response.content_type == content_type
    assert response.get_data(as_text=True) == body


def _mixed_rows(prefix: str, count: int, now: dt.datetime) -> list[dict[str, Any]]:
    """Alternating complete and active tasks, all within the last day."""
    result: list[dict[str, Any]] = []
    for index in range(count):
        row: dict[str, Any] = {
            "task_id": f"{prefix}_{index:04d}",
            "created_at": now - dt.timedelta(minutes=count - index),
        }
        if index % 2 == 0:
            row.update(
                active=False,
                status=TaskState.SUCCESS,
                runner_status=RunnerState.NONE,
                duration_ms=7,
            )
        result.append(row)
    return result


def test_tasks_query_count_does_not_grow_with_rows(
    client: FlaskClient, db: Database
) -> None:
    now = utcnow()
    with db.transaction() as session:
        make_tasks(session, _mixed_rows("few", 3, now))
    with record_statements(db.engine) as few:
        assert len(client.get(f"{BASE}/tasks").get_json()) == 3

    with db.transaction() as session:
        make_tasks(session, _mixed_rows("more", 57, now))
    with record_statements(db.engine) as many:
        assert len(client.get(f"{BASE}/tasks").get_json()) == 60

    # One query for the complete rows, one for the active rows, whatever the count.
    assert len(data_queries(few)) == 2
    assert len(data_queries(many)) == 2
    assert len(many) == len(few)


def test_tasks_streams_a_long_list_as_one_json_array(
    client: FlaskClient, db: Database
) -> None:
    now = utcnow()
    complete = [
        {
            "task_id": f"done_{index:04d}",
            "created_at": now - dt.timedelta(seconds=600 + index),
            "active": False,
            "status": TaskState.SUCCESS,
            "runner_status": RunnerState.NONE,
            "duration_ms": 5,
        }
        for index in range(600)
    ]
    active = [
        {
            "task_id": f"live_{index:04d}",
            "created_at": now - dt.timedelta(seconds=3600 - index),
        }
        for index in range(600)
    ]
    with db.transaction() as session:
        make_tasks(session, complete + active)

    with record_statements(db.engine) as statements:
        response = client.get(f"{BASE}/tasks")
        assert response.is_streamed
        chunks = [bytes(chunk) for chunk in response.iter_encoded()]
        response.close()

    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert len(chunks) > 2  # sent piece by piece, not as one buffered document
    body = json.loads(b"".join(chunks))
    assert [row["id"] for row in body] == [
        *(f"done_{index:04d}" for index in range(600)),
        *(f"live_{index:04d}" for index in range(600)),
    ]
    assert body[0] == status_plus(
        "done_0000",
        now - dt.timedelta(seconds=600),
        status="SUCCESS",
        runner="NONE",
        duration=5,
    )
    assert body[-1] == status_plus("live_0599", now - dt.timedelta(seconds=3001))
    # Rows arrive in batches from the same two queries, never one query per batch.
    assert len(data_queries(statements)) == 2


def test_short_complete_list_read_raw_gives_the_transactional_lists_bytes(
    client: FlaskClient, db: Database
) -> None:
    # `state=complete&max<=500` reads on the driver's connection
    # (services.tasks.read_short_list); without max, in a transaction: the same rows.
    now = utcnow()
    with db.transaction(write=True) as session:
        for index in range(30):
            make_complete_task(
                session,
                task_id=f"done_{index:02d}",
                group_id=f"group ✓ {index}" if index % 3 else f"done_{index:02d}",
                created_at=now - dt.timedelta(minutes=index, microseconds=index),
                status=TaskState.FAILED if index % 2 else TaskState.SUCCESS,
                error_msg='quote " and ✓' if index % 2 else None,
                duration_ms=index * 1000,
                location_host="worker-1" if index % 4 else None,
                location_port=8100 if index % 4 else -1,
                datasource="koala" if index % 5 else "wiki",
            )
        make_task(session, task_id="still_running", created_at=now)

    raw = client.get(f"{BASE}/tasks?state=complete&max=500")
    transactional = client.get(f"{BASE}/tasks?state=complete")
    limited = client.get(f"{BASE}/tasks?state=complete&max=7&datasource=koala")

    assert raw.status_code == transactional.status_code == limited.status_code == 200
    assert raw.get_data() == transactional.get_data()
    body = json.loads(raw.get_data())
    assert [row["id"] for row in body] == [f"done_{index:02d}" for index in range(30)]
    assert (
        json.loads(limited.get_data())
        == [row for row in body if row["dataSource"] == "koala"][:7]
    )
