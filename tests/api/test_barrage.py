"""The bad-input barrage (issue 8), kept as a regression test: a few hundred seeded,
deterministic requests against every endpoint through the Flask test client, on
every backend. Random JSON bodies, wrong JSON types for every field of every task
type and context key, numbers beyond a long, lone surrogates, deep nesting, odd
headers, odd paths and query strings.

Asserted for each request: no 5xx, and a request that was not accepted (anything
but 2xx) left every table exactly as it was. Accepted requests may write (a valid
submit, a shutdown): the snapshot is taken again after them. A GET never writes.

The raw-socket cases the test client cannot express (cut connections, broken HTTP
framing) run against a real ``overlord serve`` in ``test_barrage_over_http``.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
import socket
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import Connection

from overlord.db import Database
from overlord.store.models import Base
from tests.factories import (
    make_complete_task,
    make_lock,
    make_pending_segment,
    make_task,
)
from tests.processes import ServeProcess, serve_process

SEED = 20261202
BASE = "/druid/indexer/v1"
JSON = "application/json"
LONG_MAX = 2**63 - 1

# Placeholders replaced in the serialised body: JSON that json.dumps cannot write.
SURROGATE = "@@lone-surrogate@@"
DEEP = "@@deep-nesting@@"
HUGE = "@@huge-number@@"
RAW_VALUES = {
    f'"{SURROGATE}"': r'"x\udc00y"',
    f'"{DEEP}"': "[" * 1001 + "]" * 1001,
    f'"{HUGE}"': "9" * 400,
}

WRONG_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    LONG_MAX + 1,
    -LONG_MAX - 2,
    10**40,
    1e308,
    -0.0,
    "",
    " ",
    "x",
    "ü日本",
    "\U0001f600",
    "\x00",
    "a/b",
    ".dot",
    "x" * 300,
    "2020-01-01/2020-01-02",
    "P1D",
    "9223372036854775808",
    [],
    [1, "a"],
    [None],
    {},
    {"type": "unknown"},
    {"a": {"b": [1, 2, {"c": None}]}},
    SURROGATE,
    DEEP,
    HUGE,
]

CONTEXT_KEYS = [
    "priority",
    "taskLockType",
    "useSharedLock",
    "forceTimeChunkLock",
    "useLineageBasedSegmentAllocation",
    "lockTimeout",
    "storeCompactionState",
    "useConcurrentLocks",
]

INDEX_SPEC: dict[str, Any] = {
    "dataSchema": {
        "dataSource": "barrage",
        "timestampSpec": {"column": "ts", "format": "iso"},
        "dimensionsSpec": {"dimensions": ["a"]},
        "granularitySpec": {"segmentGranularity": "DAY", "rollup": False},
    },
    "ioConfig": {
        "type": "index",
        "inputSource": {"type": "inline", "data": '{"ts":"2020-01-01","a":1}'},
        "inputFormat": {"type": "json"},
        "appendToExisting": False,
    },
    "tuningConfig": {"type": "index", "maxRowsInMemory": 1000},
}

BASES: dict[str, dict[str, Any]] = {
    "noop": {"type": "noop", "dataSource": "barrage"},
    "kill": {"type": "kill", "dataSource": "barrage", "interval": "2020/2021"},
    "index": {"type": "index", "spec": INDEX_SPEC},
    "index_parallel": {"type": "index_parallel", "spec": INDEX_SPEC},
}

COMMON_FIELDS = [("id",), ("type",), ("dataSource",), ("groupId",), ("context",)]
TYPE_FIELDS: dict[str, list[tuple[str, ...]]] = {
    "noop": [("runTime",), ("isReadyTime",), ("isReadyResult",), ("resource",)],
    "kill": [
        ("interval",),
        ("versions",),
        ("batchSize",),
        ("limit",),
        ("markAsUnused",),
        ("maxUsedStatusLastUpdatedTime",),
    ],
    "index": [
        ("spec",),
        ("spec", "dataSchema"),
        ("spec", "dataSchema", "dataSource"),
        ("spec", "dataSchema", "timestampSpec"),
        ("spec", "dataSchema", "dimensionsSpec"),
        ("spec", "dataSchema", "granularitySpec"),
        ("spec", "ioConfig"),
        ("spec", "ioConfig", "inputSource"),
        ("spec", "ioConfig", "inputSource", "type"),
        ("spec", "ioConfig", "inputFormat"),
        ("spec", "ioConfig", "appendToExisting"),
        ("spec", "tuningConfig"),
    ],
}
TYPE_FIELDS["index_parallel"] = TYPE_FIELDS["index"]


@dataclass
class Call:
    """One request of the barrage; ``label`` says what it is in failure messages."""

    label: str
    method: str
    path: str
    body: bytes | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


def _with(document: dict[str, Any], path: tuple[str, ...], value: Any) -> Any:
    result = copy.deepcopy(document)
    target = result
    for key in path[:-1]:
        inner = target.get(key)
        if not isinstance(inner, dict):
            inner = {}
            target[key] = inner
        target = inner
    target[path[-1]] = value
    return result


def _serialise(document: Any) -> bytes:
    text = json.dumps(document, ensure_ascii=False)
    for placeholder, raw in RAW_VALUES.items():
        text = text.replace(placeholder, raw)
    return text.encode("utf-8", "surrogatepass")


def _json_call(label: str, path: str, document: Any, method: str = "POST") -> Call:
    return Call(label, method, path, _serialise(document), [("Content-Type", JSON)])


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 7, LONG_MAX, LONG_MAX + 1, 10**25, 2.5, -1e300])
    if kind == 3:
        return "".join(rng.choice(string.printable) for _ in range(rng.randrange(12)))
    if kind == 4:
        return rng.choice(
            [SURROGATE, HUGE, "noop", "kill", "index", "\u00e9\U0001f600"]
        )
    if kind == 5:
        return rng.choice(list(BASES))
    if kind == 6:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["type", "id", "dataSource", "context", "spec", "task", "action", "x"]
    return {
        rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(5))
    }


def _submit_calls(rng: random.Random) -> Iterator[Call]:
    """Wrong JSON types for every field of every task type, and every context key."""
    for type_name, base in BASES.items():
        for path in COMMON_FIELDS + TYPE_FIELDS[type_name]:
            for value in rng.sample(WRONG_VALUES, 2):
                yield _json_call(
                    f"{type_name}.{'.'.join(path)}={value!r:.40}",
                    f"{BASE}/task",
                    _with(base, path, value),
                )
        for key in CONTEXT_KEYS:
            for value in rng.sample(WRONG_VALUES, 1):
                yield _json_call(
                    f"{type_name}.context.{key}={value!r:.40}",
                    f"{BASE}/task",
                    _with(base, ("context", key), value),
                )


def _body_calls(rng: random.Random) -> Iterator[Call]:
    """Random documents at every JSON-body endpoint."""
    for path in (
        "/task",
        "/taskStatus",
        "/lockedIntervals/v2",
        "/activeLocks",
        "/action",
    ):
        for index in range(12):
            document = _random_json(rng)
            if path == "/action" and index % 2:
                document = {
                    "task": {"id": "seeded-running", "type": "noop", "groupId": "g"},
                    "action": {
                        "type": rng.choice(
                            [
                                "lockAcquire",
                                "lockTryAcquire",
                                "lockList",
                                "lockRelease",
                                "segmentAllocate",
                                "segmentTransactionalInsert",
                                "nope",
                            ]
                        ),
                        "interval": rng.choice(["2020/2021", "x", 5, None]),
                        "timeoutMs": rng.choice([1, 0, LONG_MAX + 1, -5, "x"]),
                        "priority": rng.choice([LONG_MAX + 1, "x", None, 10]),
                        "dataSource": rng.choice([{}, "barrage", 5]),
                    },
                }
            yield _json_call(f"{path} #{index}", f"{BASE}{path}", document)
    for path in ("/taskStatus", "/lockedIntervals/v2", "/activeLocks"):
        for value in rng.sample(WRONG_VALUES, 10):
            document: Any = (
                [value]
                if path == "/taskStatus"
                else [{"datasource": value, "priority": value, "intervals": [value]}]
            )
            yield _json_call(f"{path} [{value!r:.40}]", f"{BASE}{path}", document)


def _header_calls(rng: random.Random) -> Iterator[Call]:
    noop = b'{"type":"noop","dataSource":"barrage"}'
    odd: list[list[tuple[str, str]]] = [
        [],
        [("Content-Type", "text/plain")],
        [("Content-Type", "application/json; charset=latin-1")],
        [("Content-Type", "application/json; charset=utf-16")],
        [("Content-Type", "application/json;;;")],
        [("Content-Type", "application/json, text/plain")],
        [("Content-Type", "")],
        [("Content-Type", JSON), ("Content-Type", "text/plain")],
        [("Content-Type", JSON), ("Content-Encoding", "gzip")],
        [("Content-Type", JSON), ("X-Opaque-Id", "a"), ("X-Opaque-Id", "b")],
        [
            ("Content-Type", JSON),
            ("X-Druid-Author", "\u00e9\x01"),
            ("X-Druid-Comment", "x" * 5000),
        ],
        [("Content-Type", JSON), ("Accept", "text/html")],
        [("Content-Type", "multipart/form-data; boundary=x")],
    ]
    for index, headers in enumerate(odd):
        for path in rng.sample(["/task", "/taskStatus", "/action", "/activeLocks"], 2):
            yield Call(
                f"headers #{index} {path}", "POST", f"{BASE}{path}", noop, headers
            )
    utf16 = '{"type":"noop"}'.encode("utf-16")
    yield Call("utf-16 body", "POST", f"{BASE}/task", utf16, [("Content-Type", JSON)])
    yield Call(
        "nul body", "POST", f"{BASE}/task", b"\x00" * 10, [("Content-Type", JSON)]
    )


NUMBERS = [
    "9223372036854775808",
    "-9223372036854775809",
    "1e400",
    "9" * 5000,
    "-0",
    "0x10",
    "1_000",
    " 5 ",
    "",
    "NaN",
    "\u0661",
]
ODD_TEXT = [
    "%00",
    "%ff",
    "%2F",
    "..",
    "%ED%A0%80",
    "x" * 3000,
    "%F0%9F%98%80",
    "a%0Ab",
    "%C0%AF",
    "%20",
]


def _query_calls(rng: random.Random) -> Iterator[Call]:
    get = [
        "/tasks?state={v}",
        "/tasks?max={v}",
        "/tasks?state=complete&max={v}",
        "/tasks?datasource={v}",
        "/tasks?type={v}",
        "/tasks?createdTimeInterval={v}",
        "/tasks?state=complete&datasource={v}&createdTimeInterval=2020/2030",
        "/completeTasks?n={v}",
        "/runningTasks?type={v}",
        "/waitingTasks?x={v}",
        "/pendingTasks?{v}",
        "/task/seeded-running/log?offset={v}",
        "/task/seeded-complete/log?offset={v}",
        "/task/{v}",
        "/task/{v}/status",
        "/task/{v}/reports",
        "/task/{v}/log",
        "/task/{v}/segments",
        "/workers?{v}",
        "/totalWorkerCapacity?{v}",
        "/leader?{v}",
        "/isLeader?{v}",
    ]
    values = NUMBERS + ODD_TEXT
    for template in get:
        for value in rng.sample(values, 4):
            yield Call(
                f"GET {template} v={value:.30}", "GET", BASE + template.format(v=value)
            )
    for template in ("/task/{v}/shutdown", "/datasources/{v}/shutdownAllTasks"):
        for value in rng.sample(ODD_TEXT, 5):
            yield Call(
                f"POST {template} v={value:.30}",
                "POST",
                BASE + template.format(v=value),
            )
    for value in rng.sample(values, 8):
        yield Call(
            f"DELETE pendingSegments v={value:.30}",
            "DELETE",
            f"{BASE}/pendingSegments/{value}?interval={value}",
        )
    yield Call(
        "DELETE pendingSegments ok ds",
        "DELETE",
        f"{BASE}/pendingSegments/none?interval=1000/1001",
    )
    opensearch = [
        "/_tasks?{v}",
        "/_tasks?detailed={v}",
        "/_tasks?nodes={v}",
        "/_tasks?actions={v}",
        "/_tasks?parent_task_id={v}",
        "/_tasks?group_by={v}",
        "/_tasks?timeout={v}",
        "/_tasks?wait_for_completion=true&timeout=1nanos&actions={v}",
        "/_tasks/{v}",
        "/_tasks/{v}?wait_for_completion=true&timeout=1nanos",
        "/_tasks/n:{v}",
        "/_cat/tasks?{v}",
        "/_cat/tasks?format={v}",
        "/_cat/tasks?h={v}",
        "/_cat/tasks?s={v}",
        "/_cat/tasks?time={v}&v",
        "/_nodes?{v}",
        "/?{v}",
        "/_tasks?filter_path={v}",
        "/_tasks?pretty={v}",
    ]
    times = ["9223372036854775807d", "9223372036854775808ms", "-2s", "1.5s", "1e400s"]
    for template in opensearch:
        for value in rng.sample(values + times, 3):
            yield Call(f"GET {template} v={value:.30}", "GET", template.format(v=value))
    for value in rng.sample(values + times, 6):
        yield Call(
            f"POST _cancel v={value:.30}", "POST", f"/_tasks/_cancel?nodes={value}"
        )
        yield Call(
            f"POST id _cancel v={value:.30}", "POST", f"/_tasks/n:{value}/_cancel"
        )
    for path in (
        "/status",
        "/status/health",
        "/status/properties",
        f"{BASE}//tasks",
        f"{BASE}/task/",
        f"{BASE}/../../etc/passwd",
        "/druid/indexer/v2/tasks",
        f"{BASE}/tasks?" + "&".join(f"k{i}=v" for i in range(500)),
    ):
        yield Call(f"GET {path:.60}", "GET", path)


def barrage() -> list[Call]:
    rng = random.Random(SEED)
    calls = [
        *_submit_calls(rng),
        *_body_calls(rng),
        *_header_calls(rng),
        *_query_calls(rng),
    ]
    rng.shuffle(calls)
    return calls


def _snapshot(connection: Connection) -> dict[str, frozenset[tuple[Any, ...]]]:
    """Every row of every table (rows are unique: each table has a primary key),
    read in a transaction of its own on the one connection the barrage keeps."""
    # Plain SQL: no type processing, several times faster per snapshot.
    try:
        return {
            table.name: frozenset(
                tuple(row)
                for row in connection.exec_driver_sql(f"SELECT * FROM {table.name}")  # noqa: S608 (our table names)
            )
            for table in Base.metadata.sorted_tables
        }
    finally:
        connection.rollback()


def _seed(db: Database) -> None:
    """Tasks the barrage's ids and actions can hit: a running one holding a lock, a
    complete one, a pending segment."""
    day = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    with db.transaction() as session:
        running = make_task(
            session, task_id="seeded-running", group_id="g", datasource="barrage"
        )
        make_lock(session, running)
        make_complete_task(session, task_id="seeded-complete", datasource="barrage")
        make_pending_segment(
            session, created=day, start=day, end=day + dt.timedelta(days=1)
        )


def _send(client: FlaskClient, call: Call) -> Any:
    return client.open(
        call.path, method=call.method, data=call.body, headers=call.headers
    )


def test_barrage_answers_no_5xx_and_refusals_write_nothing(
    client: FlaskClient, db: Database
) -> None:
    _seed(db)
    client.get("/")  # the OpenSearch node id is stored on first use: not a refusal
    calls = barrage()
    assert 300 <= len(calls) <= 900, len(calls)
    with db.engine.connect() as connection:
        _run(client, connection, calls)


def _run(client: FlaskClient, connection: Connection, calls: list[Call]) -> None:
    failures: list[str] = []
    statuses: dict[int, int] = {}
    before = _snapshot(connection)
    for call in calls:
        try:
            response = _send(client, call)
            # The whole body: a stream failing after its headers raises here.
            body = response.get_data()
        except Exception as error:  # the test app propagates what would be a 500
            failures.append(f"raised {error!r:.200}: {call.label}")
            before = _snapshot(connection)
            continue
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        # The one 500 on purpose: a task action that cannot be carried out (Druid's
        # peons retry on it, spec §1.15); the test app raises on any other error.
        deliberate = call.path == f"{BASE}/action" and response.status_code == 500
        if response.status_code >= 500 and not deliberate:
            failures.append(f"{response.status_code} {call.label}: {body[:300]!r}")
        after = _snapshot(connection)
        if not 200 <= response.status_code < 300 and after != before:
            failures.append(f"wrote on {response.status_code}: {call.label}")
        if call.method == "GET" and after != before:
            failures.append(f"GET wrote: {call.label}")
        before = after
    assert failures == [], (
        f"{len(failures)} bad answers (statuses {statuses})\n" + "\n".join(failures)
    )
    # The barrage exercised refusals and acceptances alike.
    assert statuses.get(400, 0) > 100
    assert statuses.get(200, 0) > 50


# ---------------------------------------------------------------- typed spec model

REF = "(through reference chain: org.apache.druid.indexing.common.task."


@pytest.mark.parametrize(
    ("document", "error"),
    [
        pytest.param(
            {"type": "noop", "dataSource": {"name": "x"}},
            "Cannot deserialize value of type `java.lang.String` from Object value "
            f'(token `JsonToken.START_OBJECT`) {REF}NoopTask["dataSource"])',
            id="ds-object",
        ),
        pytest.param(
            {"type": "noop", "runTime": LONG_MAX + 1},
            "Numeric value (9223372036854775808) out of range of long "
            f'(-9223372036854775808 - 9223372036854775807) {REF}NoopTask["runTime"])',
            id="runTime-over-long",
        ),
        pytest.param(
            _with(BASES["index"], ("spec", "ioConfig", "inputSource", "type"), "nope"),
            "Please make sure to load all the necessary extensions and jars with type "
            "'nope'. Could not resolve type id 'nope' as a subtype of "
            "`org.apache.druid.data.input.InputSource` known type ids = [combining, "
            f'druid, http, inline, local, sql] {REF}IndexTask["spec"]->'
            "org.apache.druid.indexing.common.task.IndexTask$IndexIngestionSpec"
            '["ioConfig"]->org.apache.druid.indexing.common.task.'
            'IndexTask$IndexIOConfig["inputSource"])',
            id="unknown-inputSource",
        ),
    ],
)
def test_submit_what_druid_refuses_by_type_is_400(
    client: FlaskClient, db: Database, document: dict[str, Any], error: str
) -> None:
    with db.engine.connect() as connection:
        before = _snapshot(connection)

        response = client.post(f"{BASE}/task", json=document)

        assert (response.status_code, response.json) == (400, {"error": error})
        assert _snapshot(connection) == before


# ---------------------------------------------------------------- over real HTTP


def _raw(server: ServeProcess, data: bytes, *, half_close: bool = False) -> bytes:
    """Send raw bytes and read until the server closes (``Connection: close``).
    ``half_close`` ends the client's side first: for framing that promises more."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass  # refused by closing: what was read is checked
    return b"".join(chunks)


def _request(
    method: str, target: str, headers: dict[str, str], body: bytes = b""
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _status_and_body(raw: bytes) -> tuple[int, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServeProcess]:
    with serve_process(
        database_url, tmp_path, "--workers", "0", "--http-workers", "1"
    ) as process:
        process.wait_healthy()
        yield process


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out
        out += rest[:size]
        body = rest[size + 2 :]
    raise AssertionError("chunked body cut before its last chunk")


def test_barrage_over_http(server: ServeProcess) -> None:
    """What only a real server shows: complete responses, never a cut connection,
    on a sample of the barrage and on broken HTTP framing; the server lives on."""
    url = server.base_url
    requests.post(f"{url}{BASE}/task", json={"type": "noop", "id": "done"}, timeout=10)
    # The list streams: a parameter beyond a long must fail before the headers.
    for query in ("state=complete&max=9223372036854775808", "max=1e400"):
        raw = _raw(server, _request("GET", f"{BASE}/tasks?{query}", {}))
        status, body = _status_and_body(raw)
        if b"transfer-encoding: chunked" in raw.partition(b"\r\n\r\n")[0].lower():
            body = _dechunk(body)
        assert status == 400, raw[:300]
        assert json.loads(body)["error"].startswith(
            "Invalid value for query parameter [max]"
        )
    for label, data, half_close, expected in RAW_CASES:
        raw = _raw(server, data, half_close=half_close)
        assert raw, f"{label}: connection closed without an answer"
        status, _ = _status_and_body(raw)
        assert status == expected, f"{label}: {raw[:300]!r}"
        assert server.healthy(), f"{label}\n{server.output()}"
    listed = requests.get(f"{url}{BASE}/tasks", timeout=10)
    assert [task["id"] for task in listed.json()] == ["done"]


def _post_task(headers: dict[str, str], body: bytes) -> bytes:
    return _request("POST", f"{BASE}/task", {"Content-Type": JSON, **headers}, body)


def _raw_line(target: bytes) -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


# (label, bytes, half-close after sending, expected status). Half-close only where
# the framing promises more than is sent: granian drops the answer to a complete
# request once the client's side is shut.
RAW_CASES = [
    (
        "deep",
        _post_task({"Content-Length": "200000"}, b"[" * 100_000 + b"]" * 100_000),
        False,
        400,
    ),
    (
        "surrogate",
        _post_task({"Content-Length": "29"}, rb'{"type":"noop","id":"\ud800"}'),
        False,
        400,
    ),
    # A truncated body that still parses must not be stored.
    (
        "short body",
        _post_task({"Content-Length": "100"}, b'{"type":"noop"}'),
        True,
        400,
    ),
    (
        "bad chunk",
        _post_task({"Transfer-Encoding": "chunked"}, b"zz\r\n{}\r\n0\r\n\r\n"),
        True,
        400,
    ),
    (
        "two lengths",
        _post_task({"Content-Length": "2", "content-length": "3"}, b"{}"),
        False,
        400,
    ),
    ("negative length", _post_task({"Content-Length": "-1"}, b"{}"), False, 400),
    (
        "latin-1 header",
        _request("GET", f"{BASE}/tasks", {"X-Opaque-Id": "\u00e9"}),
        False,
        200,
    ),
    ("nul in path", _raw_line(b"/druid/indexer/v1/task/a\x00b"), False, 400),
    (
        "raw utf-8 path",
        _raw_line("/druid/indexer/v1/task/é/status".encode()),
        False,
        404,
    ),
    ("raw latin-1 path", _raw_line(b"/druid/indexer/v1/task/\xe9/status"), False, 400),
    (
        "tls hello",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
        False,
        400,
    ),
    ("http/0.9", b"GET /status\r\n\r\n", False, 400),
]
