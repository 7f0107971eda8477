"""POST /task (spec druid-overlord.md §0, §1.1, §1.3, §5): what a submit answers and
what it stores, read back through GET /task/{id}, /status and the rows, on every
backend."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from overlord.db import Database
from overlord.states import RunnerState, TaskState
from overlord.store.models import AuditEntry, Task
from overlord.timeutil import format_druid, utcnow

BASE = "/druid/indexer/v1"
JSON = "application/json"

# What GET /task/{id} shows in place of a password value (the stored row keeps it).
# Druid's redacting mapper drops a DefaultPasswordProvider's password.
MASKED = {"type": "default", "password": None}

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
LETTERS = r"[a-p]{8}"


def _dumps(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


# What Druid adds to a task that does not carry it (services.payload).
DRUID_CONTEXT = {"forceTimeChunkLock": True, "useLineageBasedSegmentAllocation": True}


def _resource(task_id: str) -> dict[str, Any]:
    return {"availabilityGroup": task_id, "requiredCapacity": 1}


def _noop_payload(task_id: str, **posted: Any) -> dict[str, Any]:
    """A posted noop ``{"type", "id", **posted}`` as Druid serialises it."""
    return {
        "type": "noop",
        "id": task_id,
        "groupId": task_id,
        **posted,
        "context": DRUID_CONTEXT,
        "resource": _resource(task_id),
    }


def _index_spec(
    datasource: str = "wiki", *, kind: str = "index_parallel", append: bool = False
) -> dict[str, Any]:
    return {
        "dataSchema": {
            "dataSource": datasource,
            "timestampSpec": {"column": "time", "format": "iso"},
            "dimensionsSpec": {"useSchemaDiscovery": True},
            "granularitySpec": {
                "segmentGranularity": "day",
                "queryGranularity": "none",
                "intervals": ["2015-09-12/2015-09-13"],
                "rollup": False,
            },
        },
        "ioConfig": {
            "type": kind,
            "inputSource": {"type": "inline", "data": '{"time":"2015-09-12"}\n'},
            "inputFormat": {"type": "json"},
            "appendToExisting": append,
        },
        "tuningConfig": {"type": kind},
    }


def _submit(client: FlaskClient, document: Any, **kwargs: Any) -> str:
    """POST the document, check the 200 envelope, return the id."""
    response = client.post(f"{BASE}/task", json=document, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type == JSON
    body = response.json
    assert isinstance(body, dict)
    assert list(body) == ["task"]
    task_id: str = body["task"]
    return task_id


def _row(db: Database, task_id: str) -> Task:
    with db.transaction() as session:
        return session.scalars(select(Task).where(Task.task_id == task_id)).one()


def _rows(db: Database) -> list[Task]:
    with db.transaction() as session:
        return list(session.scalars(select(Task).order_by(Task.id)))


def _status(client: FlaskClient, task_id: str) -> dict[str, Any]:
    """The TaskStatusPlus that GET /task/{id}/status answers (after checking 200)."""
    response = client.get(f"{BASE}/task/{_path(task_id)}/status")
    assert response.status_code == 200
    body = response.json
    assert isinstance(body, dict)
    assert body["task"] == task_id
    status: dict[str, Any] = body["status"]
    return status


def _path(task_id: str) -> str:
    return urllib.parse.quote(task_id, safe="")


def test_submit_noop_with_explicit_id_answers_task_id(
    client: FlaskClient, db: Database
) -> None:
    response = client.post(
        f"{BASE}/task", json={"type": "noop", "id": "my_noop_1", "runTime": 1}
    )

    assert response.status_code == 200
    assert response.content_type == JSON
    assert response.get_data(as_text=True) == '{"task":"my_noop_1"}'
    assert [row.task_id for row in _rows(db)] == ["my_noop_1"]


def test_get_task_after_submit_returns_posted_object_in_key_order(
    client: FlaskClient,
) -> None:
    posted = {
        "runTime": 1,
        "type": "noop",
        "context": {"zeta": 1, "alpha": [1.5, None, True], "naïve": "日本語 ü"},
        "dataSource": "wikí",
        "id": "ordered",
    }
    _submit(client, posted)

    response = client.get(f"{BASE}/task/ordered")

    assert response.status_code == 200
    assert response.content_type == JSON
    assert response.get_data(as_text=True) == (
        '{"task":"ordered","payload":{"runTime":1,"type":"noop",'
        '"context":{"zeta":1,"alpha":[1.5,null,true],"naïve":"日本語 ü",'
        '"forceTimeChunkLock":true,"useLineageBasedSegmentAllocation":true},'
        '"dataSource":"wikí","id":"ordered","groupId":"ordered",'
        '"resource":{"availabilityGroup":"ordered","requiredCapacity":1}}}'
    )


@pytest.mark.parametrize(
    ("document", "pattern"),
    [
        pytest.param({"type": "noop"}, rf"noop_({ISO})_{UUID4}", id="noop"),
        pytest.param(
            {"type": "index", "spec": _index_spec("wiki", kind="index")},
            rf"index_wiki_{LETTERS}_({ISO})",
            id="index",
        ),
        pytest.param(
            {"type": "index_parallel", "spec": _index_spec("wiki")},
            rf"index_parallel_wiki_{LETTERS}_({ISO})",
            id="index_parallel",
        ),
        pytest.param(
            {"type": "kill", "dataSource": "wiki", "interval": "2020-01-01/2021-01-01"},
            rf"kill_wiki_{LETTERS}_2020-01-01T00:00:00\.000Z_2021-01-01T00:00:00\.000Z_({ISO})",
            id="kill",
        ),
    ],
)
def test_submit_without_id_generates_druid_id_stamped_with_submit_time(
    client: FlaskClient, db: Database, document: dict[str, Any], pattern: str
) -> None:
    before = utcnow()
    task_id = _submit(client, document)
    after = utcnow()

    match = re.fullmatch(pattern, task_id)
    assert match is not None, task_id
    row = _row(db, task_id)
    assert format_druid(row.created_at) == match.group(1)
    assert before <= row.created_at <= after


def test_submit_generated_ids_differ_between_submits(client: FlaskClient) -> None:
    document = {"type": "index_parallel", "spec": _index_spec("wiki")}

    ids = {_submit(client, document) for _ in range(3)}

    assert len(ids) == 3


@pytest.mark.parametrize(
    ("document", "expected_keys"),
    [
        pytest.param(
            {"context": {}, "type": "noop", "runTime": 1},
            ["context", "type", "id", "groupId", "runTime", "resource"],
            id="noop",
        ),
        pytest.param(
            {
                "dataSource": "wiki",
                "type": "kill",
                "interval": "2020-01-01/2021-01-01",
            },
            ["dataSource", "type", "id", "interval", "context", "groupId", "resource"],
            id="kill",
        ),
    ],
)
def test_submit_generated_id_is_stored_right_after_type(
    client: FlaskClient,
    db: Database,
    document: dict[str, Any],
    expected_keys: list[str],
) -> None:
    task_id = _submit(client, document)

    added = {
        "id": task_id,
        "groupId": task_id,
        "context": DRUID_CONTEXT,
        "resource": _resource(task_id),
    }
    expected = {key: added.get(key, document.get(key)) for key in expected_keys}
    assert _row(db, task_id).payload == _dumps(expected)
    response = client.get(f"{BASE}/task/{_path(task_id)}")
    assert response.get_data(as_text=True) == (
        f'{{"task":{_dumps(task_id)},"payload":{_dumps(expected)}}}'
    )


@pytest.mark.parametrize(
    ("document", "priority"),
    [
        pytest.param({"type": "noop"}, 50, id="noop-default"),
        pytest.param(
            {"type": "kill", "dataSource": "wiki", "interval": "2020/2021"},
            0,
            id="kill-default",
        ),
        pytest.param(
            {"type": "index", "spec": _index_spec(kind="index")},
            50,
            id="index-default",
        ),
        pytest.param(
            {"type": "index_parallel", "spec": _index_spec()},
            50,
            id="index_parallel-default",
        ),
        pytest.param(
            {"type": "noop", "context": {"priority": 75}}, 75, id="noop-context"
        ),
        pytest.param(
            {
                "type": "kill",
                "dataSource": "wiki",
                "interval": "2020/2021",
                "context": {"priority": 25},
            },
            25,
            id="kill-context",
        ),
        pytest.param(
            {
                "type": "index_parallel",
                "spec": _index_spec(),
                "context": {"priority": -10},
            },
            -10,
            id="index_parallel-context-negative",
        ),
        pytest.param(
            {"type": "noop", "context": {"priority": "90"}},
            90,
            id="noop-context-string",
        ),
    ],
)
def test_submit_stores_priority_of_type_or_context(
    client: FlaskClient, db: Database, document: dict[str, Any], priority: int
) -> None:
    task_id = _submit(client, document)

    assert _row(db, task_id).priority == priority


@pytest.mark.parametrize(
    ("document", "group"),
    [
        pytest.param({"type": "noop", "id": "t"}, "t", id="noop-default-is-id"),
        pytest.param(
            {"type": "noop", "id": "t", "groupId": "g"}, "g", id="noop-explicit"
        ),
        pytest.param(
            {"type": "index", "id": "t", "spec": _index_spec(kind="index")},
            "t",
            id="index-default-is-id",
        ),
        pytest.param(
            {
                "type": "index",
                "id": "t",
                "spec": _index_spec("wiki", kind="index", append=True),
            },
            "index_append_wiki",
            id="index-append",
        ),
        pytest.param(
            {
                "type": "index",
                "id": "t",
                "groupId": "g",
                "spec": _index_spec(kind="index", append=True),
            },
            "g",
            id="index-append-explicit",
        ),
        pytest.param(
            {"type": "index_parallel", "id": "t", "spec": _index_spec(append=True)},
            "t",
            id="index_parallel-append-is-id",
        ),
        pytest.param(
            {
                "type": "kill",
                "id": "t",
                "groupId": "g",
                "dataSource": "wiki",
                "interval": "2020/2021",
            },
            "g",
            id="kill-explicit",
        ),
    ],
)
def test_submit_stores_group_id_per_druid_rule(
    client: FlaskClient, db: Database, document: dict[str, Any], group: str
) -> None:
    _submit(client, document)

    assert _row(db, "t").group_id == group
    assert _status(client, "t")["groupId"] == group


def test_submit_index_without_explicit_id_groups_by_generated_id(
    client: FlaskClient, db: Database
) -> None:
    task_id = _submit(client, {"type": "index", "spec": _index_spec(kind="index")})

    assert _row(db, task_id).group_id == task_id


@pytest.mark.parametrize(
    ("document", "datasource"),
    [
        pytest.param({"type": "noop", "id": "t"}, "none", id="noop-default"),
        pytest.param(
            {"type": "noop", "id": "t", "dataSource": "wiki"}, "wiki", id="noop"
        ),
        pytest.param(
            {
                "type": "kill",
                "id": "t",
                "dataSource": "killed",
                "interval": "2020/2021",
            },
            "killed",
            id="kill",
        ),
        pytest.param(
            {
                "type": "index",
                "id": "t",
                "dataSource": "ignored",
                "spec": _index_spec("indexed", kind="index"),
            },
            "indexed",
            id="index-from-spec",
        ),
        pytest.param(
            {"type": "index_parallel", "id": "t", "spec": _index_spec("parallel")},
            "parallel",
            id="index_parallel-from-spec",
        ),
    ],
)
def test_submit_derives_datasource_per_type(
    client: FlaskClient, db: Database, document: dict[str, Any], datasource: str
) -> None:
    _submit(client, document)

    assert _row(db, "t").datasource == datasource
    assert _status(client, "t")["dataSource"] == datasource


def test_submit_supervisor_task_id_becomes_parent_task_id(
    client: FlaskClient, db: Database
) -> None:
    _submit(client, {"type": "noop", "id": "child", "supervisorTaskId": "parent_1"})
    _submit(client, {"type": "noop", "id": "orphan"})

    assert _row(db, "child").parent_task_id == "parent_1"
    assert _row(db, "orphan").parent_task_id is None


def test_submit_x_opaque_id_header_is_stored_with_task(
    client: FlaskClient, db: Database
) -> None:
    _submit(
        client,
        {"type": "noop", "id": "traced"},
        headers={"X-Opaque-Id": "airflow-run-42"},
    )
    _submit(client, {"type": "noop", "id": "untraced"})

    assert json.loads(_row(db, "traced").request_headers or "null") == {
        "X-Opaque-Id": "airflow-run-42"
    }
    assert _row(db, "untraced").request_headers is None


def test_submit_writes_audit_entry_with_author_and_comment(
    client: FlaskClient, db: Database
) -> None:
    _submit(
        client,
        {"type": "index_parallel", "id": "audited", "spec": _index_spec("wiki")},
        headers={"X-Druid-Author": "alice", "X-Druid-Comment": "backfill"},
    )

    task = _row(db, "audited")
    with db.transaction() as session:
        entries = list(session.scalars(select(AuditEntry)))
    assert [
        (
            entry.audit_key,
            entry.type,
            entry.author,
            entry.comment,
            entry.ip,
            entry.created_date,
            json.loads(entry.payload),
        )
        for entry in entries
    ] == [
        (
            "wiki",
            "task",
            "alice",
            "backfill",
            "127.0.0.1",
            task.created_at,
            {"id": "audited", "groupId": "audited", "type": "index_parallel"},
        )
    ]


def test_get_task_masks_password_but_row_keeps_it(
    client: FlaskClient, db: Database
) -> None:
    spec = _index_spec("wiki")
    spec["ioConfig"]["inputSource"] = {
        "type": "http",
        "uris": ["https://example.com/a.json"],
        "httpAuthenticationUsername": "bob",
        "httpAuthenticationPassword": "s3cret",
    }
    posted = {"type": "index_parallel", "id": "secret", "spec": spec}
    _submit(client, posted)

    response = client.get(f"{BASE}/task/secret")

    masked_spec = json.loads(_dumps(spec))
    masked_spec["ioConfig"]["inputSource"]["httpAuthenticationPassword"] = MASKED
    assert response.status_code == 200
    assert response.content_type == JSON
    assert response.get_data(as_text=True) == _dumps(
        {
            "task": "secret",
            "payload": {
                "type": "index_parallel",
                "id": "secret",
                "groupId": "secret",
                "resource": _resource("secret"),
                "spec": masked_spec,
                "context": DRUID_CONTEXT,
            },
        }
    )
    assert _row(db, "secret").payload == _dumps(
        {
            "type": "index_parallel",
            "id": "secret",
            "groupId": "secret",
            "resource": _resource("secret"),
            "spec": spec,
            "context": DRUID_CONTEXT,
        }
    )


@pytest.mark.parametrize(
    "task_id",
    [
        pytest.param("50% off", id="percent-and-space"),
        pytest.param("%2F", id="encoded-slash-text"),
        # Outside the BMP (🚀) IdUtils refuses: see test_druid_bad_input_limits.py.
        pytest.param("naïve 日本 ✓", id="unicode"),
        pytest.param("a+b?c#d&e=f", id="query-characters"),
        pytest.param("  padded  ", id="leading-trailing-spaces"),
    ],
)
def test_submit_unusual_id_round_trips_url_encoded(
    client: FlaskClient, task_id: str
) -> None:
    assert _submit(client, {"type": "noop", "id": task_id}) == task_id

    payload = client.get(f"{BASE}/task/{_path(task_id)}")

    assert payload.status_code == 200
    assert payload.get_data(as_text=True) == _dumps(
        {"task": task_id, "payload": _noop_payload(task_id)}
    )
    assert _status(client, task_id)["id"] == task_id


def test_submit_ids_differing_in_case_or_trailing_space_are_distinct(
    client: FlaskClient, db: Database
) -> None:
    ids = ["a", "A", "a "]
    for task_id in ids:
        _submit(client, {"type": "noop", "id": task_id, "dataSource": f"[{task_id}]"})

    assert [row.task_id for row in _rows(db)] == ids
    for task_id in ids:
        response = client.get(f"{BASE}/task/{_path(task_id)}")
        assert response.json == {
            "task": task_id,
            "payload": _noop_payload(task_id, dataSource=f"[{task_id}]"),
        }


def test_submit_new_task_is_running_and_waiting(
    client: FlaskClient, db: Database
) -> None:
    _submit(client, {"type": "noop", "id": "fresh", "dataSource": "wiki"})

    response = client.get(f"{BASE}/task/fresh/status")

    row = _row(db, "fresh")
    assert (row.status, row.runner_status, row.active) == (
        TaskState.RUNNING,
        RunnerState.WAITING,
        True,
    )
    assert response.status_code == 200
    assert response.content_type == JSON
    assert response.json == {
        "task": "fresh",
        "status": {
            "id": "fresh",
            "groupId": "fresh",
            "type": "noop",
            "createdTime": format_druid(row.created_at),
            "queueInsertionTime": "1970-01-01T00:00:00.000Z",
            "statusCode": "RUNNING",
            "status": "RUNNING",
            "runnerStatusCode": "WAITING",
            "duration": -1,
            "location": {"host": None, "port": -1, "tlsPort": -1},
            "dataSource": "wiki",
            "errorMsg": None,
        },
    }
    assert row.created_at.tzinfo is not None
    assert abs(utcnow() - row.created_at) < dt.timedelta(minutes=1)
