"""Refused requests to the Druid API (spec druid-overlord.md §0, §1.0-1.2): the exact
status, content type and body of each, and that nothing was stored.

The expected messages live in the module constants and param tables below, one
place each, so that a change of Druid text is a one-line edit here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from overlord.app import create_app
from overlord.config import Settings
from overlord.db import Database
from overlord.store.models import AuditEntry, PendingSegment, Task
from tests.factories import make_pending_segment

BASE = "/druid/indexer/v1"
JSON = "application/json"
TEXT = "text/plain; charset=UTF-8"

# Jackson-style messages of the submit path (400 {"error": ...}).
EMPTY_BODY = "No content to map due to end-of-input"
FORM_BODY_AS_JSON = (
    "Unexpected character in JSON body: Expecting value (line 1, column 1)"
)
TRUNCATED_JSON = (
    "Unexpected character in JSON body: Expecting ',' delimiter (line 1, column 16)"
)
NOT_AN_OBJECT = (
    "Cannot construct instance of `org.apache.druid.indexing.common.task.Task`: "
    "expected a JSON object, got {kind}"
)
MISSING_TYPE = (
    "Could not resolve subtype of [simple type, class "
    "org.apache.druid.indexing.common.task.Task]: missing type id property 'type'"
)
UNKNOWN_TYPE = (
    "Please make sure to load all the necessary extensions and jars with type "
    "'{name}'. Could not resolve type id '{name}' as a subtype of "
    "`org.apache.druid.indexing.common.task.Task` known type ids = "
    "[index, index_parallel, kill, noop, single_phase_sub_task]"
)
NON_NUMERIC = (
    "Non-standard token '{token}': enable "
    "`JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow"
)
INVALID_UTF8 = "Invalid UTF-8 in request body at byte {at}"
# HTTP-level refusals: the 415 text is overlord's, the 413 and 405 texts Werkzeug's.
UNSUPPORTED = (
    "Unsupported Content-Type [{mimetype}]: this endpoint consumes application/json"
)
TOO_LARGE = "The data value transmitted exceeds the capacity limit."
NOT_ALLOWED = "The method is not allowed for the requested URL."
# IdUtils.validateId (DruidException envelope, errorCode invalidInput).
# AbstractTask's constructor runs IdUtils.validateId("task ID", id); Jackson wraps
# the refusal in its "Cannot construct instance" text (a 400 {"error": ...}).
NOOP_PROBLEM = (
    "Cannot construct instance of `org.apache.druid.indexing.common.task.NoopTask`, "
    "problem: "
)
ID_PREFIX = NOOP_PROBLEM + "Invalid value for field [task ID]: Value [{id}] "
ID_SLASH = ID_PREFIX + "cannot contain '/'."
ID_DOT = ID_PREFIX + "cannot start with '.'."
ID_CONTROL = ID_PREFIX + "contains illegal UTF8 character [#{code}] at position [{at}]"
ID_WHITESPACE = (
    ID_PREFIX + "contains illegal whitespace characters.  Only space is allowed."
)
TOO_LONG = (
    "Invalid value for field [{field}]: Value [{value}] is longer than 255 characters."
)
ID_EMPTY = NOOP_PROBLEM + "Invalid value for field [task ID]: must not be null"
DUPLICATE = "Task[{id}] already exists"
# GET /tasks and DELETE /pendingSegments.
BAD_STATE = (
    "Invalid task state[{state}]. Must be one of [pending, waiting, running, complete]."
)
MAX_NOT_A_NUMBER = "Invalid value for query parameter [max]: [{text}] is not a number"
MAX_NEGATIVE = "Invalid value for query parameter [max]: [{text}] must be >= 0"
BAD_CREATED_INTERVAL = (
    "Invalid createdTimeInterval[{text}]: Format requires a '/' separator: \"{text}\""
)
MISSING_INTERVAL = "Missing required query parameter [interval]"
BAD_INTERVAL = "Invalid interval[{text}]: Format requires a '/' separator: \"{text}\""


def _stored(db: Database) -> tuple[int, int]:
    """Rows in ``tasks`` and ``audit_log``: both stay 0 after a refused request."""
    with db.transaction() as session:
        tasks = session.scalar(select(func.count()).select_from(Task))
        audits = session.scalar(select(func.count()).select_from(AuditEntry))
    return int(tasks or 0), int(audits or 0)


def _compact(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def _error(message: str) -> dict[str, str]:
    return {"error": message}


def _druid_exception(code: str, message: str) -> dict[str, Any]:
    return {
        "error": "druidException",
        "errorCode": code,
        "persona": "USER",
        "category": "INVALID_INPUT",
        "errorMessage": message,
        "context": {},
    }


def _post_raw(
    client: FlaskClient, data: bytes | str, content_type: str | None = JSON
) -> Any:
    headers = {} if content_type is None else {"Content-Type": content_type}
    return client.post(f"{BASE}/task", data=data, headers=headers)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param("", EMPTY_BODY, id="empty"),
        pytest.param("  \n ", EMPTY_BODY, id="whitespace-only"),
        # requests.post(url, data={"type": "noop", "id": "x"}, headers=<json>)
        pytest.param("type=noop&id=x", FORM_BODY_AS_JSON, id="form-encoded-dict"),
        pytest.param('{"type":"noop" "id":"x"}', TRUNCATED_JSON, id="malformed"),
        pytest.param('["noop"]', NOT_AN_OBJECT.format(kind="Array value"), id="array"),
        pytest.param(
            '"noop"', NOT_AN_OBJECT.format(kind="String value"), id="string-literal"
        ),
        pytest.param("null", NOT_AN_OBJECT.format(kind="null"), id="null-literal"),
        pytest.param('{"id":"x"}', MISSING_TYPE, id="missing-type"),
        pytest.param(
            '{"type":"nope","id":"x"}',
            UNKNOWN_TYPE.format(name="nope"),
            id="unknown-type",
        ),
        pytest.param(
            '{"type":"noop","runTime":NaN}',
            NON_NUMERIC.format(token="NaN"),
            id="nan",
        ),
        pytest.param(
            '{"type":"noop","runTime":-Infinity}',
            NON_NUMERIC.format(token="-Infinity"),
            id="negative-infinity",
        ),
        pytest.param(
            b'{"type":"noop","id":"\xff\xfe"}',
            INVALID_UTF8.format(at=21),
            id="invalid-utf8",
        ),
    ],
)
def test_submit_unreadable_body_returns_400_error_and_stores_nothing(
    client: FlaskClient, db: Database, data: bytes | str, message: str
) -> None:
    response = _post_raw(client, data)

    assert response.status_code == 400
    assert response.content_type == JSON
    assert response.json == _error(message)
    assert _stored(db) == (0, 0)


@pytest.mark.parametrize(
    ("content_type", "shown"),
    [
        pytest.param("text/plain", "text/plain", id="text-plain"),
        pytest.param(
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded",
            id="form",
        ),
        pytest.param(None, "none", id="missing"),
    ],
)
def test_submit_non_json_content_type_returns_415_and_stores_nothing(
    client: FlaskClient, db: Database, content_type: str | None, shown: str
) -> None:
    response = _post_raw(client, '{"type":"noop","id":"x"}', content_type)

    assert response.status_code == 415
    assert response.content_type == JSON
    assert response.json == _error(UNSUPPORTED.format(mimetype=shown))
    assert _stored(db) == (0, 0)


def test_submit_json_with_charset_or_suffix_content_type_is_accepted(
    client: FlaskClient, db: Database
) -> None:
    first = _post_raw(
        client, '{"type":"noop","id":"x"}', "application/json; charset=UTF-8"
    )
    second = _post_raw(client, '{"type":"noop","id":"y"}', "application/vnd.x+json")

    assert (first.status_code, first.json) == (200, {"task": "x"})
    assert (second.status_code, second.json) == (200, {"task": "y"})
    assert _task_count(db) == 2


@pytest.fixture
def small_body_client(settings: Settings, db: Database) -> FlaskClient:
    app = create_app(dataclasses.replace(settings, max_body_size=64), database=db)
    app.testing = True
    return app.test_client()


def test_submit_body_over_limit_returns_413_and_stores_nothing(
    small_body_client: FlaskClient, db: Database
) -> None:
    body = json.dumps({"type": "noop", "id": "big", "context": {"x": "y" * 64}})

    response = small_body_client.post(
        f"{BASE}/task", data=body, headers={"Content-Type": JSON}
    )

    assert response.status_code == 413
    assert response.content_type == JSON
    assert response.json == _error(TOO_LARGE)
    assert _stored(db) == (0, 0)


def test_submit_body_under_limit_is_accepted(
    small_body_client: FlaskClient, db: Database
) -> None:
    response = small_body_client.post(
        f"{BASE}/task", json={"type": "noop", "id": "small"}
    )

    assert (response.status_code, response.json) == (200, {"task": "small"})
    assert _task_count(db) == 1


@pytest.mark.parametrize(
    ("task_id", "message"),
    [
        pytest.param("a/b", ID_SLASH.format(id="a/b"), id="slash"),
        pytest.param(".hidden", ID_DOT.format(id=".hidden"), id="leading-dot"),
        pytest.param(
            "a\x01b", ID_CONTROL.format(id="a\x01b", code=1, at=1), id="control"
        ),
        pytest.param("a\tb", ID_WHITESPACE.format(id="a\tb"), id="tab"),
        pytest.param("a\nb", ID_WHITESPACE.format(id="a\nb"), id="newline"),
        pytest.param(
            "a\x85b", ID_CONTROL.format(id="a\x85b", code=133, at=1), id="c1-control"
        ),
        pytest.param(
            "t" * 256,
            NOOP_PROBLEM + TOO_LONG.format(field="task ID", value="t" * 256),
            id="256-chars",
        ),
        pytest.param("", ID_EMPTY, id="empty"),
    ],
)
def test_submit_invalid_id_returns_400_error_and_stores_nothing(
    client: FlaskClient, db: Database, task_id: str, message: str
) -> None:
    response = client.post(f"{BASE}/task", json={"type": "noop", "id": task_id})

    assert response.status_code == 400
    assert response.content_type == JSON
    assert response.json == {"error": message}
    assert _stored(db) == (0, 0)


def _task_count(db: Database) -> int:
    return _stored(db)[0]


@pytest.mark.parametrize(
    "task_id",
    [
        pytest.param("t" * 255, id="ascii"),
        # Four UTF-8 bytes but one UTF-16 unit: inside the Basic Multilingual Plane.
        pytest.param("ü" * 254 + "\uffef", id="multibyte"),
    ],
)
def test_submit_id_of_255_chars_is_accepted(
    client: FlaskClient, db: Database, task_id: str
) -> None:
    response = client.post(f"{BASE}/task", json={"type": "noop", "id": task_id})

    assert (response.status_code, response.json) == (200, {"task": task_id})
    assert _task_count(db) == 1


LONG = "x" * 256


@pytest.mark.parametrize(
    ("document", "field"),
    [
        pytest.param(
            {"type": "noop", "id": "t", "dataSource": LONG}, "dataSource", id="noop-ds"
        ),
        pytest.param(
            {"type": "kill", "id": "t", "dataSource": LONG, "interval": "2020/2021"},
            "dataSource",
            id="kill-ds",
        ),
        pytest.param(
            {"type": "index", "id": "t", "spec": {"dataSchema": {"dataSource": LONG}}},
            "dataSource",
            id="index-ds",
        ),
        pytest.param(
            {"type": "noop", "id": "t", "groupId": LONG}, "groupId", id="group"
        ),
        pytest.param(
            {"type": "noop", "id": "t", "supervisorTaskId": LONG},
            "supervisorTaskId",
            id="supervisor",
        ),
    ],
)
def test_submit_field_longer_than_column_returns_400_on_every_backend(
    client: FlaskClient, db: Database, document: dict[str, Any], field: str
) -> None:
    response = client.post(f"{BASE}/task", json=document)

    assert response.status_code == 400
    assert response.content_type == JSON
    assert response.json == _druid_exception(
        "invalidInput", TOO_LONG.format(field=field, value=LONG)
    )
    assert _stored(db) == (0, 0)


def test_submit_fields_of_255_chars_are_stored(
    client: FlaskClient, db: Database
) -> None:
    value = "x" * 255
    document = {
        "type": "noop",
        "id": "t",
        "groupId": value,
        "dataSource": value,
        "supervisorTaskId": value,
    }

    response = client.post(f"{BASE}/task", json=document)

    assert (response.status_code, response.json) == (200, {"task": "t"})
    with db.transaction() as session:
        row = session.scalars(select(Task)).one()
    assert (row.group_id, row.datasource, row.parent_task_id) == (value, value, value)


def test_submit_duplicate_id_returns_400_entry_already_exists(
    client: FlaskClient, db: Database
) -> None:
    first = client.post(f"{BASE}/task", json={"type": "noop", "id": "dup"})
    after_first = _stored(db)
    second = client.post(
        f"{BASE}/task", json={"type": "noop", "id": "dup", "runTime": 99}
    )

    assert (first.status_code, first.json) == (200, {"task": "dup"})
    assert second.status_code == 400
    assert second.content_type == JSON
    assert second.get_data(as_text=True) == _compact(
        _druid_exception("entryAlreadyExists", DUPLICATE.format(id="dup"))
    )
    assert _task_count(db) == 1
    assert _stored(db) == after_first
    assert client.get(f"{BASE}/task/dup").json == {
        "task": "dup",
        "payload": {
            "type": "noop",
            "id": "dup",
            "groupId": "dup",
            "context": {
                "forceTimeChunkLock": True,
                "useLineageBasedSegmentAllocation": True,
            },
            "resource": {"availabilityGroup": "dup", "requiredCapacity": 1},
        },
    }


@pytest.fixture
def pooled_app(settings: Settings) -> Iterator[Flask]:
    pooled = dataclasses.replace(settings, db_pool_size=10)
    database = Database(pooled)
    app = create_app(pooled, database=database)
    app.testing = True
    yield app
    database.dispose()


def test_submit_same_id_concurrently_stores_one_task(
    pooled_app: Flask, db: Database
) -> None:
    count = 50
    barrier = threading.Barrier(count)
    results: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def submit() -> None:
        client = pooled_app.test_client()
        barrier.wait()
        response = client.post(f"{BASE}/task", json={"type": "noop", "id": "race"})
        with lock:
            results.append((response.status_code, response.json))

    threads = [threading.Thread(target=submit) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    duplicate = _druid_exception("entryAlreadyExists", DUPLICATE.format(id="race"))
    assert sorted(results, key=lambda result: result[0]) == [
        (200, {"task": "race"})
    ] + [(400, duplicate)] * (count - 1)
    tasks, audits = _stored(db)
    assert tasks == 1
    assert audits <= 1  # the refused submits wrote none


@pytest.mark.parametrize(
    ("query", "status", "content_type", "body"),
    [
        pytest.param(
            "state=blah", 400, TEXT, BAD_STATE.format(state="blah"), id="state"
        ),
        pytest.param(
            "max=abc",
            404,
            JSON,
            _compact(_error(MAX_NOT_A_NUMBER.format(text="abc"))),
            id="max-not-a-number",
        ),
        pytest.param(
            "max=-1",
            400,
            JSON,
            _compact(_error(MAX_NEGATIVE.format(text="-1"))),
            id="max-negative",
        ),
        pytest.param(
            "createdTimeInterval=garbage",
            400,
            JSON,
            _compact(_error(BAD_CREATED_INTERVAL.format(text="garbage"))),
            id="created-time-interval",
        ),
    ],
)
def test_list_tasks_bad_query_returns_error_and_stores_nothing(
    client: FlaskClient,
    db: Database,
    query: str,
    status: int,
    content_type: str,
    body: str,
) -> None:
    response = client.get(f"{BASE}/tasks?{query}")

    assert response.status_code == status
    assert response.content_type == content_type
    assert response.get_data(as_text=True) == body
    assert _stored(db) == (0, 0)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param("", MISSING_INTERVAL, id="missing"),
        pytest.param("interval=", BAD_INTERVAL.format(text=""), id="empty"),
        pytest.param(
            "interval=garbage", BAD_INTERVAL.format(text="garbage"), id="garbage"
        ),
    ],
)
def test_delete_pending_segments_bad_interval_returns_400_and_deletes_nothing(
    client: FlaskClient, db: Database, query: str, message: str
) -> None:
    day = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    with db.transaction() as session:
        make_pending_segment(
            session, created=day, start=day, end=day + dt.timedelta(days=1)
        )

    response = client.delete(f"{BASE}/pendingSegments/wiki?{query}")

    assert response.status_code == 400
    assert response.content_type == JSON
    assert response.json == _error(message)
    with db.transaction() as session:
        remaining = session.scalar(select(func.count()).select_from(PendingSegment))
    assert remaining == 1
    assert _stored(db) == (0, 0)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        pytest.param("PUT", "/tasks", {"GET", "HEAD", "OPTIONS"}, id="put-tasks"),
        pytest.param("DELETE", "/task", {"POST", "OPTIONS"}, id="delete-task"),
        pytest.param(
            "PATCH", "/isLeader", {"GET", "HEAD", "OPTIONS"}, id="patch-isLeader"
        ),
    ],
)
def test_unknown_method_returns_405_with_allow_header(
    client: FlaskClient, db: Database, method: str, path: str, allowed: set[str]
) -> None:
    response = client.open(f"{BASE}{path}", method=method, json={"type": "noop"})

    assert response.status_code == 405
    assert response.content_type == JSON
    assert response.json == _error(NOT_ALLOWED)
    assert set(response.headers["Allow"].split(", ")) == allowed
    assert _stored(db) == (0, 0)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/tasks?capabilities", [], id="tasks"),
        pytest.param("/tasks?capabilities&foo=bar", [], id="tasks-two"),
        pytest.param("/isLeader?capabilities", {"leader": True}, id="isLeader"),
    ],
)
def test_unknown_query_params_are_ignored(
    client: FlaskClient, path: str, body: Any
) -> None:
    response = client.get(f"{BASE}{path}")

    assert response.status_code == 200
    assert response.content_type == JSON
    assert response.json == body


@pytest.mark.parametrize(
    "task_id",
    [
        # Java's \s has no no-break space, and IdUtils' ranges exclude their bounds.
        pytest.param("x\u00a0y", id="no-break-space"),
        pytest.param("a\x9fb", id="bound-159"),
        pytest.param("a\x1fb", id="bound-31"),
    ],
)
def test_submit_id_that_druid_accepts_is_stored(
    client: FlaskClient, db: Database, task_id: str
) -> None:
    response = client.post(f"{BASE}/task", json={"type": "noop", "id": task_id})

    assert (response.status_code, response.json) == (200, {"task": task_id})
    assert _task_count(db) == 1
