"""Bad input that used to answer 500 or cut the connection (issue 8): lone
surrogates, nesting beyond Jackson's limit, ids outside the Basic Multilingual
Plane and numeric query parameters beyond a Java long. Each is a complete 4xx and
stores nothing."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from overlord.api.parsing import scan_json_text
from overlord.db import Database
from overlord.store.models import AuditEntry, Task
from tests.factories import make_log_chunk, make_task

BASE = "/druid/indexer/v1"
JSON = "application/json"

DEPTH_1001 = (
    "Document nesting depth (1001) exceeds the maximum allowed "
    "(1000, from `StreamReadConstraints.getMaxNestingDepth()`)"
)
UNMATCHED = "Unmatched {part} part of surrogate pair (0x{code}) in JSON string (line 1, column {at})"
NOOP_ID = (
    "Cannot construct instance of `org.apache.druid.indexing.common.task.NoopTask`, "
    "problem: Invalid value for field [task ID]: Value [{id}] contains illegal UTF8 "
    "character [#{code}] at position [{at}]"
)
PATH_ID = (
    "Invalid value for field [taskId]: Value [{id}] contains illegal UTF8 "
    "character [#{code}] at position [{at}]"
)
OUT_OF_RANGE = (
    "Invalid value for query parameter [{name}]: Numeric value ({text}) out of range "
    "of long (-9223372036854775808 - 9223372036854775807)"
)
NOT_A_NUMBER = "Invalid value for query parameter [{name}]: [{text}] is not a number"


def _stored(db: Database) -> tuple[int, int]:
    with db.transaction() as session:
        tasks = session.scalar(select(func.count()).select_from(Task))
        audits = session.scalar(select(func.count()).select_from(AuditEntry))
    return int(tasks or 0), int(audits or 0)


def _post(client: FlaskClient, path: str, text: str) -> Any:
    return client.post(
        f"{BASE}{path}", data=text.encode(), headers={"Content-Type": JSON}
    )


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# ---------------------------------------------------------------- lone surrogates

SURROGATE_BODIES = [
    pytest.param(
        r'{"type":"noop","id":"\ud800"}', "first", "d800", 22, id="high-in-id"
    ),
    pytest.param(
        r'{"type":"noop","id":"x\udc00y"}', "second", "dc00", 23, id="low-in-id"
    ),
    pytest.param(
        r'{"type":"noop","context":{"k\udbff":1}}', "first", "dbff", 29, id="in-key"
    ),
    pytest.param(
        r'{"type":"noop","context":{"a":[{"b":["\ud800\u0041"]}]}}',
        "first",
        "d800",
        39,
        id="deep-high-then-not-low",
    ),
    pytest.param(
        r'{"type":"noop","context":{"a":"\ud83d\ud83d\ude00"}}',
        "first",
        "d83d",
        32,
        id="two-highs",
    ),
    pytest.param(
        r'{"type":"noop","context":{"a":"\ude00\ud83d"}}',
        "second",
        "de00",
        32,
        id="swapped-pair",
    ),
]


@pytest.mark.parametrize(("text", "part", "code", "at"), SURROGATE_BODIES)
def test_submit_lone_surrogate_returns_400_and_stores_nothing(
    client: FlaskClient, db: Database, text: str, part: str, code: str, at: int
) -> None:
    response = _post(client, "/task", text)

    assert response.status_code == 400
    assert response.content_type == JSON
    assert response.json == {"error": UNMATCHED.format(part=part, code=code, at=at)}
    assert _stored(db) == (0, 0)


@pytest.mark.parametrize(
    ("path", "text", "at"),
    [
        pytest.param("/taskStatus", r'["a\ud800"]', 4, id="taskStatus"),
        pytest.param(
            "/lockedIntervals/v2", r'[{"datasource":"\ud800"}]', 17, id="locked-v2"
        ),
        pytest.param("/activeLocks", r'[{"datasource":"\ud800"}]', 17, id="active"),
        pytest.param(
            "/action",
            r'{"task":{"id":"\ud800"},"action":{"type":"lockList"}}',
            16,
            id="action",
        ),
    ],
)
def test_every_json_endpoint_refuses_lone_surrogates(
    client: FlaskClient, db: Database, path: str, text: str, at: int
) -> None:
    response = _post(client, path, text)

    assert response.status_code == 400
    assert response.content_type == JSON
    assert response.json == {
        "error": UNMATCHED.format(part="first", code="d800", at=at)
    }
    assert _stored(db) == (0, 0)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(r'{"type":"noop","id":"a\ud83d\ude00b"}', id="pair-is-kept"),
        # An escaped backslash before "ud800": plain text, not an escape.
        pytest.param(r'{"type":"noop","context":{"p":"\\ud800"}}', id="escaped"),
        pytest.param(r'{"type":"noop","context":{"p":"\ud7ff\ue000"}}', id="bounds"),
    ],
)
def test_surrogate_lookalikes_pass_the_scan(text: str) -> None:
    scan_json_text(text)  # raises nothing


def test_submit_valid_surrogate_pair_in_context_is_stored(
    client: FlaskClient, db: Database
) -> None:
    response = _post(
        client, "/task", r'{"type":"noop","id":"t","context":{"k\ud83d\ude00":"v"}}'
    )

    assert (response.status_code, response.json) == (200, {"task": "t"})
    payload = client.get(f"{BASE}/task/t").json["payload"]
    assert payload["context"]["k\U0001f600"] == "v"


# ---------------------------------------------------------------- nesting depth


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            '{"type":"noop","context":{"a":' + _nested(1000) + "}}",
            id="1001-in-context",
        ),
        pytest.param(_nested(1001), id="1001-arrays"),
        pytest.param("[" * 100_000, id="100k-unclosed"),
        pytest.param('{"a":' * 100_000, id="100k-objects"),
        pytest.param(_nested(100_000), id="100k-closed"),
    ],
)
def test_submit_nesting_beyond_1000_returns_jackson_text(
    client: FlaskClient, db: Database, text: str
) -> None:
    started = time.monotonic()
    response = _post(client, "/task", text)

    assert response.status_code == 400
    assert response.content_type == JSON
    assert response.json == {"error": DEPTH_1001}
    assert _stored(db) == (0, 0)
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    "path", ["/taskStatus", "/lockedIntervals/v2", "/activeLocks", "/action"]
)
def test_every_json_endpoint_refuses_deep_nesting(
    client: FlaskClient, db: Database, path: str
) -> None:
    response = _post(client, path, _nested(5000))

    assert response.status_code == 400
    assert response.json == {"error": DEPTH_1001}
    assert _stored(db) == (0, 0)


def test_brackets_inside_strings_do_not_count() -> None:
    scan_json_text(json.dumps({"a": "[" * 5000, "b": "{" * 5000}))  # raises nothing


def test_submit_nesting_of_exactly_1000_is_stored_and_read_back(
    client: FlaskClient, db: Database
) -> None:
    # The body object is level 1, context 2, the arrays 3…1000.
    deep = _nested(998)
    text = '{"type":"noop","id":"deep","context":{"a":' + deep + "}}"

    response = _post(client, "/task", text)

    assert (response.status_code, response.json) == (200, {"task": "deep"})
    read = client.get(f"{BASE}/task/deep")
    assert read.status_code == 200
    assert (
        json.dumps(read.json["payload"]["context"]["a"], separators=(",", ":")) == deep
    )


def _seconds_per_scan(text: str, rounds: int = 200) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        scan_json_text(text)
    return (time.perf_counter() - started) / rounds


def test_scan_of_a_normal_spec_costs_little() -> None:
    """The scan runs on every body. A 2 KB spec takes the fast path (about 3 µs
    here, json.loads about 10 µs); with escaped non-BMP characters (json.dumps'
    default ensure_ascii) it is tokenised (about 120 µs). Bounds are loose for a
    loaded machine."""
    spec = {
        "type": "index_parallel",
        "spec": {
            "dataSchema": {
                "dataSource": "wiki\U0001f600",
                "dimensionsSpec": {"dimensions": [f"dim{i}" for i in range(120)]},
            },
            "ioConfig": {"inputSource": {"type": "inline", "data": "x" * 700}},
        },
    }
    plain = json.dumps(spec, ensure_ascii=False)
    escaped = json.dumps(spec)
    assert 1900 < len(escaped) < 2100
    assert "\\ud83d" in escaped

    assert _seconds_per_scan(plain) < 0.0002
    assert _seconds_per_scan(escaped) < 0.002


# ---------------------------------------------------------------- ids outside the BMP


@pytest.mark.parametrize(
    ("task_id", "code", "at"),
    [
        pytest.param("a\U0001f600", 55357, 1, id="emoji"),
        # U+10000 is \ud800\udc00: 0xD800 itself passes IdUtils' exclusive bound,
        # the low unit after it does not.
        pytest.param("ab\U00010000", 56320, 3, id="u10000"),
        # UTF-16 positions: the emoji counts two units before the control char.
        pytest.param("\U0001f600", 55357, 0, id="first"),
    ],
)
def test_submit_id_outside_bmp_is_refused_as_idutils_does(
    client: FlaskClient, db: Database, task_id: str, code: int, at: int
) -> None:
    response = client.post(f"{BASE}/task", json={"type": "noop", "id": task_id})

    assert response.status_code == 400
    assert response.content_type == JSON
    assert response.json == {"error": NOOP_ID.format(id=task_id, code=code, at=at)}
    assert _stored(db) == (0, 0)


def test_path_id_outside_bmp_is_refused_with_druid_exception(
    client: FlaskClient,
) -> None:
    response = client.get(f"{BASE}/task/a\U0001f600/status")

    assert response.status_code == 400
    assert response.json == {
        "error": "druidException",
        "errorCode": "invalidInput",
        "persona": "USER",
        "category": "INVALID_INPUT",
        "errorMessage": PATH_ID.format(id="a\U0001f600", code=55357, at=1),
        "context": {},
    }


# ---------------------------------------------------------------- numeric parameters

BIG = "9" * 5000


@pytest.mark.parametrize(
    ("path", "name", "text", "shown"),
    [
        pytest.param(
            "/tasks?state=complete&max=",
            "max",
            "9223372036854775808",
            None,
            id="max-long-max+1",
        ),
        pytest.param(
            "/tasks?max=", "max", "-9223372036854775809", None, id="max-long-min-1"
        ),
        pytest.param(
            "/tasks?state=complete&max=", "max", "1e400", None, id="max-1e400"
        ),
        pytest.param(
            "/tasks?max=", "max", BIG, "[Integer with 5000 digits]", id="max-huge"
        ),
        pytest.param("/completeTasks?n=", "n", "9223372036854775808", None, id="n"),
        pytest.param(
            "/task/t/log?offset=", "offset", "9223372036854775808", None, id="offset"
        ),
        pytest.param("/task/t/log?offset=", "offset", "-1e19", None, id="offset-neg"),
    ],
)
def test_numeric_parameter_beyond_a_long_returns_complete_400(
    client: FlaskClient,
    db: Database,
    path: str,
    name: str,
    text: str,
    shown: str | None,
) -> None:
    client.post(f"{BASE}/task", json={"type": "noop", "id": "t"})
    before = _stored(db)

    response = client.get(f"{BASE}{path}{text}")

    assert response.status_code == 400
    assert response.content_type == JSON
    assert response.get_data(as_text=True) == json.dumps(
        {"error": OUT_OF_RANGE.format(name=name, text=shown or text)},
        separators=(",", ":"),
    )
    assert _stored(db) == before


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        pytest.param(
            "/tasks?state=complete&max=9223372036854775807", 200, [], id="long-max"
        ),
        pytest.param(
            "/tasks?max=1e3",
            404,
            {"error": NOT_A_NUMBER.format(name="max", text="1e3")},
            id="decimal",
        ),
        pytest.param(
            "/completeTasks?n=x",
            404,
            {"error": NOT_A_NUMBER.format(name="n", text="x")},
            id="n-not-a-number",
        ),
    ],
)
def test_numeric_parameter_within_a_long_keeps_its_answer(
    client: FlaskClient, path: str, status: int, body: Any
) -> None:
    response = client.get(f"{BASE}{path}")

    assert (response.status_code, response.json) == (status, body)


@pytest.mark.parametrize(
    ("offset", "body"),
    [
        pytest.param("9223372036854775807", "", id="long-max"),
        pytest.param("-9223372036854775808", "line one\n", id="long-min"),
    ],
)
def test_log_offset_at_long_bounds_reads_the_log(
    client: FlaskClient, db: Database, offset: str, body: str
) -> None:
    with db.transaction() as session:
        task = make_task(session, task_id="t")
        make_log_chunk(session, task, b"line one\n", byte_offset=0)

    response = client.get(f"{BASE}/task/t/log?offset={offset}")

    assert (response.status_code, response.get_data(as_text=True)) == (200, body)


# ---------------------------------------------------------------- NUL in lookups

NUL_ANSWERS = [
    pytest.param("GET", "/tasks?datasource=%00", None, 200, [], id="tasks-ds"),
    pytest.param("GET", "/tasks?type=a%00", None, 200, [], id="tasks-type"),
    pytest.param(
        "GET", "/tasks?state=complete&datasource=%00", None, 200, [], id="complete-ds"
    ),
    pytest.param("GET", "/runningTasks?type=%00", None, 200, [], id="running-type"),
    pytest.param(
        "DELETE",
        "/pendingSegments/%00?interval=2020/2021",
        None,
        200,
        {"numDeleted": 0},
        id="pending-segments",
    ),
    pytest.param("POST", "/taskStatus", ["t", "\x00"], 200, {}, id="taskStatus"),
    pytest.param(
        "POST", "/lockedIntervals/v2", [{"datasource": "\x00"}], 200, {}, id="locked"
    ),
    pytest.param(
        "POST",
        "/activeLocks",
        [{"datasource": "a\x00"}],
        200,
        {"datasourceToLocks": {}},
        id="active-locks",
    ),
    pytest.param(
        "POST",
        "/action",
        {"task": {"id": "\x00", "type": "noop"}, "action": {"type": "lockList"}},
        400,
        {"error": "Invalid value for field [task.id]: contains NUL"},
        id="action",
    ),
]


@pytest.mark.parametrize(("method", "path", "document", "status", "body"), NUL_ANSWERS)
def test_nul_in_a_looked_up_value_answers_as_no_match_on_every_backend(
    client: FlaskClient,
    db: Database,
    method: str,
    path: str,
    document: Any,
    status: int,
    body: Any,
) -> None:
    """PostgreSQL refuses NUL even as a query parameter (a 500, or a cut connection
    once a list streamed): no stored value can hold one, so it matches nothing."""
    response = client.open(f"{BASE}{path}", method=method, json=document)

    assert (response.status_code, response.json) == (status, body)
    assert _stored(db) == (0, 0)


def test_shutdown_all_tasks_of_a_nul_datasource_is_404_empty(
    client: FlaskClient, db: Database
) -> None:
    response = client.post(f"{BASE}/datasources/a%00/shutdownAllTasks")

    assert (response.status_code, response.get_data()) == (404, b"")


@pytest.mark.parametrize(
    ("document", "field", "value"),
    [
        pytest.param({"type": "noop", "dataSource": "\x00"}, "dataSource", "\x00"),
        pytest.param({"type": "noop", "groupId": "g\x00"}, "groupId", "g\x00"),
        pytest.param(
            {"type": "noop", "supervisorTaskId": "s\x00"}, "supervisorTaskId", "s\x00"
        ),
    ],
)
def test_submit_nul_in_a_stored_column_returns_400_on_every_backend(
    client: FlaskClient, db: Database, document: dict[str, Any], field: str, value: str
) -> None:
    response = client.post(f"{BASE}/task", json=document)

    assert response.status_code == 400
    assert response.json == {
        "error": "druidException",
        "errorCode": "invalidInput",
        "persona": "USER",
        "category": "INVALID_INPUT",
        "errorMessage": f"Invalid value for field [{field}]: Value [{value}] contains "
        f"illegal UTF8 character [#0] at position [{value.index(chr(0))}]",
        "context": {},
    }
    assert _stored(db) == (0, 0)


@pytest.mark.parametrize("priority", [2**31, -(2**31) - 1, "9" * 30])
def test_submit_priority_beyond_a_java_int_returns_400(
    client: FlaskClient, db: Database, priority: int | str
) -> None:
    response = client.post(
        f"{BASE}/task", json={"type": "noop", "context": {"priority": priority}}
    )

    assert response.status_code == 400
    assert response.json == {
        "error": f"Invalid value for context parameter [priority]: [{priority}]"
    }
    assert _stored(db) == (0, 0)


def test_opensearch_task_id_of_5000_digits_is_malformed(client: FlaskClient) -> None:
    number = "9" * 5000

    response = client.get(f"/_tasks/n:{number}")

    assert response.status_code == 400
    assert response.json["error"]["reason"] == f"malformed task id n:{number}"
