"""The smaller Druid endpoints (spec §1.5 to §1.7, §1.10 to §1.12, §1.14) and the process
endpoints: bulk task status, pending-segment delete, leadership, lock queries,
/status, reports, logs, segments, and unknown ids on every task-scoped path."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from overlord import __version__
from overlord.app import create_app
from overlord.config import Settings, setting_fields, setting_text
from overlord.db import Database
from overlord.states import RunnerState, TaskState
from overlord.store.models import PendingSegment
from tests.factories import (
    make_complete_task,
    make_lock,
    make_log_chunk,
    make_pending_segment,
    make_report,
    make_task,
)

BASE = "/druid/indexer/v1"
TEXT = "text/plain; charset=UTF-8"
JSON = "application/json"


def utc(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    microsecond: int = 0,
) -> dt.datetime:
    return dt.datetime(
        year, month, day, hour, minute, second, microsecond, tzinfo=dt.UTC
    )


@pytest.fixture(scope="module")
def offline_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings whose database is never reached, for answers given before any query
    (no fresh database per case). SQLite creates the file on first connect, so its
    absence afterwards proves no request touched the database."""
    path = tmp_path_factory.mktemp("offline") / "never-created.sqlite3"
    yield Settings(database_url=f"sqlite:///{path}")
    assert not path.exists()


@pytest.fixture(scope="module")
def offline_client(offline_settings: Settings) -> FlaskClient:
    return create_app(offline_settings).test_client()


# --- POST /taskStatus ---------------------------------------------------------


def test_task_status_bulk_returns_found_ids_in_asked_order(
    client: FlaskClient, db: Database
) -> None:
    with db.transaction() as session:
        make_task(
            session,
            task_id="run",
            runner_status=RunnerState.RUNNING,
            location_host="worker-1",
            location_port=8100,
        )
        make_task(session, task_id="wait")
        make_complete_task(
            session,
            task_id="done",
            duration_ms=10630,
            location_host="worker-2",
            location_port=8101,
            location_tls_port=8102,
        )
        make_complete_task(
            session,
            task_id="fail",
            status=TaskState.FAILED,
            error_msg="boom",
            duration_ms=7,
        )

    response = client.post(
        f"{BASE}/taskStatus", json=["done", "nope", "run", "wait", "fail", "run"]
    )

    assert response.status_code == 200
    assert response.content_type == JSON
    assert response.get_data(as_text=True) == (
        '{"done":{"id":"done","status":"SUCCESS","duration":10630,"errorMsg":null,'
        '"location":{"host":"worker-2","port":8101,"tlsPort":8102}},'
        '"run":{"id":"run","status":"RUNNING","duration":-1,"errorMsg":null,'
        '"location":{"host":"worker-1","port":8100,"tlsPort":-1}},'
        '"wait":{"id":"wait","status":"RUNNING","duration":-1,"errorMsg":null,'
        '"location":{"host":null,"port":-1,"tlsPort":-1}},'
        '"fail":{"id":"fail","status":"FAILED","duration":7,"errorMsg":"boom",'
        '"location":{"host":null,"port":-1,"tlsPort":-1}}}'
    )


def test_task_status_bulk_of_unknown_ids_is_empty_object(
    client: FlaskClient, db: Database
) -> None:
    with db.transaction() as session:
        make_task(session, task_id="known")

    response = client.post(f"{BASE}/taskStatus", json=["nope", "Known"])

    assert response.status_code == 200
    assert response.content_type == JSON
    assert response.get_data(as_text=True) == "{}"


@pytest.mark.parametrize(
    "request_options",
    [
        pytest.param({}, id="missing-body"),
        pytest.param({"data": "", "content_type": JSON}, id="empty-json-body"),
        pytest.param({"data": "  \n", "content_type": JSON}, id="blank-body"),
        pytest.param({"data": "[]", "content_type": JSON}, id="empty-array"),
        pytest.param({"data": "null", "content_type": JSON}, id="null"),
    ],
)
def test_task_status_bulk_without_ids_returns_400_text(
    offline_client: FlaskClient, request_options: dict[str, Any]
) -> None:
    response = offline_client.post(f"{BASE}/taskStatus", **request_options)

    assert response.status_code == 400
    assert response.content_type == TEXT
    assert response.get_data(as_text=True) == "No Task IDs provided."


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"ids": ["t1"]}, id="object"),
        pytest.param("t1", id="string"),
        pytest.param([1, 2], id="numbers"),
        pytest.param(["t1", None], id="null-item"),
    ],
)
def test_task_status_bulk_of_non_array_returns_400(
    offline_client: FlaskClient, document: Any
) -> None:
    response = offline_client.post(f"{BASE}/taskStatus", json=document)

    assert response.status_code == 400
    assert response.content_type == JSON
    assert response.json == {
        "error": "Cannot deserialize value of type `java.util.HashSet<java.lang.String>` "
        "from the request body: expected a JSON array of task ids"
    }


# --- DELETE /pendingSegments/{ds} ---------------------------------------------


@pytest.fixture
def pending(db: Database) -> dict[str, str]:
    """Pending segments by creation time around the window 2024-01-10/2024-01-11;
    their segment intervals deliberately disagree with their creation times."""
    inside = (utc(2024, 1, 10), utc(2024, 1, 11))
    far = (utc(2030, 1, 1), utc(2030, 1, 2))
    specs = {
        "before": ("wiki", utc(2024, 1, 9, 23, 59, 59, 999000), inside),
        "at_start": ("wiki", utc(2024, 1, 10), far),
        "middle": ("wiki", utc(2024, 1, 10, 12), far),
        "last_ms": ("wiki", utc(2024, 1, 10, 23, 59, 59, 999000), far),
        "at_end": ("wiki", utc(2024, 1, 11), inside),
        "koala": ("koala", utc(2024, 1, 10, 12), inside),
    }
    ids: dict[str, str] = {}
    with db.transaction() as session:
        for name, (datasource, created, (start, end)) in specs.items():
            row = make_pending_segment(
                session, datasource=datasource, created=created, start=start, end=end
            )
            ids[name] = row.id
    return ids


def remaining(db: Database, ids: dict[str, str]) -> list[str]:
    names = {segment_id: name for name, segment_id in ids.items()}
    with db.transaction() as session:
        return sorted(names[i] for i in session.scalars(select(PendingSegment.id)))


def test_delete_pending_segments_by_created_date_in_half_open_interval(
    client: FlaskClient, db: Database, pending: dict[str, str]
) -> None:
    response = client.delete(
        f"{BASE}/pendingSegments/wiki?interval=2024-01-10/2024-01-11"
    )

    assert response.status_code == 200
    assert response.content_type == JSON
    assert response.get_data(as_text=True) == '{"numDeleted":3}'
    assert remaining(db, pending) == ["at_end", "before", "koala"]


def test_delete_pending_segments_eternity_without_active_task_deletes_all(
    client: FlaskClient, db: Database, pending: dict[str, str]
) -> None:
    with db.transaction() as session:
        # Finished tasks and other datasources' active tasks do not block.
        make_complete_task(session, task_id="done", created_at=utc(2024, 1, 1))
        make_task(session, task_id="k", datasource="koala", created_at=utc(2024, 1, 1))

    response = client.delete(
        f"{BASE}/pendingSegments/wiki"
        "?interval=-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z"
    )

    assert response.status_code == 200
    assert response.get_data(as_text=True) == '{"numDeleted":5}'
    assert remaining(db, pending) == ["koala"]


def test_delete_pending_segments_of_empty_datasource_deletes_none(
    client: FlaskClient, db: Database, pending: dict[str, str]
) -> None:
    response = client.delete(f"{BASE}/pendingSegments/nothing?interval=2000/3000")

    assert response.status_code == 200
    assert response.get_data(as_text=True) == '{"numDeleted":0}'
    assert len(remaining(db, pending)) == 6


@pytest.mark.parametrize(
    ("interval", "shown"),
    [
        pytest.param(
            "2024-01-10/2024-01-11",
            "2024-01-10T00:00:00.000Z/2024-01-11T00:00:00.000Z",
            id="window-contains-creation",
        ),
        pytest.param(
            "2024-02-01/P1D",
            "2024-02-01T00:00:00.000Z/2024-02-02T00:00:00.000Z",
            id="window-after-creation",
        ),
        pytest.param(
            "2024-01-10T03:00:00.000Z/2024-01-10T03:00:00.001Z",
            "2024-01-10T03:00:00.000Z/2024-01-10T03:00:00.001Z",
            id="window-starts-at-creation",
        ),
        pytest.param(
            "-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z",
            "-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z",
            id="eternity",
        ),
    ],
)
def test_delete_pending_segments_overlapping_active_task_returns_400(
    client: FlaskClient,
    db: Database,
    pending: dict[str, str],
    interval: str,
    shown: str,
) -> None:
    with db.transaction() as session:
        make_task(session, task_id="live_a", created_at=utc(2024, 1, 10, 6))
        # Inserted later but created earlier: the earliest created one is named.
        make_task(session, task_id="live_b", created_at=utc(2024, 1, 10, 3))

    response = client.delete(f"{BASE}/pendingSegments/wiki?interval={interval}")

    assert response.status_code == 400
    assert response.content_type == JSON
    assert response.json == {
        "error": "Cannot delete pendingSegments for datasource[wiki] as there is at "
        "least one active task[live_b] created at[2024-01-10T03:00:00.000Z] that "
        f"overlaps with the delete interval[{shown}]. Please retry when there are "
        "no active tasks."
    }
    assert len(remaining(db, pending)) == 6


def test_delete_pending_segments_ending_at_active_task_creation_is_allowed(
    client: FlaskClient, db: Database, pending: dict[str, str]
) -> None:
    with db.transaction() as session:
        make_task(session, task_id="live", created_at=utc(2024, 1, 10, 12))

    response = client.delete(
        f"{BASE}/pendingSegments/wiki?interval=2024-01-01/2024-01-10T12:00:00Z"
    )

    assert response.status_code == 200
    assert response.get_data(as_text=True) == '{"numDeleted":2}'
    assert remaining(db, pending) == ["at_end", "koala", "last_ms", "middle"]


# --- leadership -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("advertised", "body"),
    [
        pytest.param("", "http://127.0.0.1:8090", id="host-and-port"),
        pytest.param(
            "https://overlord.example:8281",
            "https://overlord.example:8281",
            id="advertised-url",
        ),
    ],
)
def test_leader_returns_bare_url_string(
    offline_settings: Settings, advertised: str, body: str
) -> None:
    app = create_app(dataclasses.replace(offline_settings, advertised_url=advertised))

    response = app.test_client().get(f"{BASE}/leader")

    assert response.status_code == 200
    assert response.content_type == JSON
    assert response.get_data(as_text=True) == body


def test_is_leader_returns_true(offline_client: FlaskClient) -> None:
    response = offline_client.get(f"{BASE}/isLeader")

    assert response.status_code == 200
    assert response.content_type == JSON
    assert response.get_data(as_text=True) == '{"leader":true}'


# --- POST /lockedIntervals/v2 and /activeLocks ---------------------------------

DAY = [f"2024-01-{day:02d}T00:00:00.000Z" for day in range(1, 9)]
I1, I2, I3, I4, I5, I6 = (f"{DAY[i]}/{DAY[i + 1]}" for i in range(6))
K1 = "2024-02-01T00:00:00.000Z/2024-02-02T00:00:00.000Z"
VERSION = "2024-05-06T07:08:09.456Z"


def lock_doc(
    group: str,
    interval: str,
    priority: int,
    *,
    lock_type: str = "EXCLUSIVE",
    datasource: str = "wiki",
    version: str = VERSION,
) -> dict[str, Any]:
    return {
        "granularity": "timeChunk",
        "type": lock_type,
        "groupId": group,
        "dataSource": datasource,
        "interval": interval,
        "version": version,
        "priority": priority,
        "revoked": False,
    }


L1 = lock_doc("t_lo", I1, 10)
L2 = lock_doc("t_eq", I2, 25, lock_type="SHARED")
L3 = lock_doc("t_hi", I3, 50)
L4 = lock_doc("t_app", I4, 50, lock_type="APPEND", version="1970-01-01T00:00:00.000Z")
L5 = {
    "granularity": "segment",
    "type": "EXCLUSIVE",
    "groupId": "t_seg",
    "dataSource": "wiki",
    "interval": I5,
    "version": VERSION,
    "partitionId": 3,
    "priority": 50,
    "revoked": False,
}
LK = lock_doc("t_k", K1, 50, datasource="koala")


@pytest.fixture
def locks(db: Database) -> None:
    """wiki: I1 prio 10, I2 SHARED 25, I3 50, I4 APPEND 50, I5 segment lock 50,
    I6 revoked 75; koala: K1 50. Created in interval order."""
    with db.transaction() as session:
        specs: list[tuple[str, int, int, dict[str, Any]]] = [
            ("t_lo", 10, 0, {}),
            ("t_eq", 25, 1, {"lock_type": "SHARED"}),
            ("t_hi", 50, 2, {}),
            (
                "t_app",
                50,
                3,
                {"lock_type": "APPEND", "version": "1970-01-01T00:00:00.000Z"},
            ),
            ("t_seg", 50, 4, {"granularity": "segment", "partition_id": 3}),
            ("t_rev", 75, 5, {"revoked": True}),
        ]
        for task_id, priority, day, fields in specs:
            task = make_task(session, task_id=task_id, priority=priority)
            make_lock(
                session,
                task,
                start=utc(2024, 1, day + 1),
                end=utc(2024, 1, day + 2),
                **fields,
            )
        koala = make_task(session, task_id="t_k", datasource="koala")
        make_lock(session, koala, start=utc(2024, 2, 1), end=utc(2024, 2, 2))


@pytest.mark.usefixtures("locks")
@pytest.mark.parametrize(
    ("policies", "expected"),
    [
        pytest.param(
            [{"datasource": "wiki"}],
            {"wiki": [I1, I2, I3, I4, I5]},
            id="priority-defaults-to-0-revoked-hidden",
        ),
        pytest.param(
            [{"datasource": "wiki", "priority": 25}],
            {"wiki": [I2, I3, I4, I5]},
            id="equal-priority-counts-lower-skipped",
        ),
        pytest.param(
            [{"datasource": "wiki", "priority": 26}],
            {"wiki": [I3, I4, I5]},
            id="above-25",
        ),
        pytest.param(
            [{"datasource": "wiki", "priority": 51}], {}, id="only-revoked-above"
        ),
        pytest.param(
            [
                {
                    "datasource": "wiki",
                    "priority": 25,
                    "context": {"taskLockType": "REPLACE"},
                }
            ],
            {"wiki": [I2, I3, I5]},
            id="replace-context-skips-append",
        ),
        pytest.param(
            [
                {
                    "datasource": "wiki",
                    "priority": 25,
                    "context": {"useConcurrentLocks": True},
                }
            ],
            {"wiki": [I2, I3, I5]},
            id="concurrent-locks-skip-append",
        ),
        pytest.param(
            [
                {
                    "datasource": "wiki",
                    "priority": 25,
                    "context": {"taskLockType": "APPEND"},
                }
            ],
            {"wiki": [I2, I3, I4, I5]},
            id="append-context-keeps-append",
        ),
        pytest.param(
            [
                {
                    "datasource": "wiki",
                    "priority": 50,
                    "intervals": ["2030-01-01/2030-01-02"],
                }
            ],
            {"wiki": [I3, I4, I5]},
            id="intervals-not-applied",
        ),
        pytest.param(
            [{"datasource": "wiki", "priority": 50}, {"datasource": "koala"}],
            {"wiki": [I3, I4, I5], "koala": [K1]},
            id="two-datasources",
        ),
        pytest.param(
            [{"datasource": "nope"}, {"datasource": "koala", "priority": 60}],
            {},
            id="no-match-omitted",
        ),
        pytest.param(
            [{"datasource": "koala", "priority": 50}, {"datasource": "nope"}],
            {"koala": [K1]},
            id="unmatched-datasource-omitted",
        ),
    ],
)
def test_locked_intervals_filter_by_priority_and_lock_type(
    client: FlaskClient, policies: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    response = client.post(f"{BASE}/lockedIntervals/v2", json=policies)

    assert response.status_code == 200
    assert response.content_type == JSON
    assert response.json == expected


@pytest.mark.usefixtures("locks")
@pytest.mark.parametrize(
    ("policies", "expected"),
    [
        pytest.param(
            [{"datasource": "wiki", "priority": 25}],
            {"wiki": [L2, L3, L4, L5]},
            id="equal-priority-counts-revoked-hidden",
        ),
        pytest.param(
            [{"datasource": "wiki"}],
            {"wiki": [L1, L2, L3, L4, L5]},
            id="priority-defaults-to-0",
        ),
        pytest.param(
            [{"datasource": "wiki", "context": {"taskLockType": "APPEND"}}],
            {"wiki": [L1, L2, L3, L5]},
            id="append-context-skips-append",
        ),
        pytest.param(
            [{"datasource": "wiki", "context": {"useConcurrentLocks": True}}],
            {"wiki": [L1, L2, L3, L5]},
            id="concurrent-locks-skip-append",
        ),
        pytest.param(
            [
                {
                    "datasource": "wiki",
                    "context": {"useConcurrentLocks": False, "taskLockType": "APPEND"},
                }
            ],
            {"wiki": [L1, L2, L3, L4, L5]},
            id="explicit-concurrent-false-wins",
        ),
        pytest.param(
            [{"datasource": "wiki", "context": {"taskLockType": "REPLACE"}}],
            {"wiki": [L1, L2, L3, L4, L5]},
            id="replace-context-keeps-append",
        ),
        pytest.param(
            [
                {
                    "datasource": "wiki",
                    "intervals": ["2024-01-02T12:00:00Z/2024-01-04"],
                }
            ],
            {"wiki": [L2, L3]},
            id="intervals-overlap-half-open",
        ),
        pytest.param(
            [
                {
                    "datasource": "wiki",
                    "intervals": ["2024-01-01/2024-01-02", "2024-01-05/P1D"],
                }
            ],
            {"wiki": [L1, L5]},
            id="several-intervals",
        ),
        pytest.param(
            [{"datasource": "wiki", "priority": 50}, {"datasource": "koala"}],
            {"wiki": [L3, L4, L5], "koala": [LK]},
            id="two-datasources",
        ),
        pytest.param(
            [{"datasource": "wiki", "priority": 76}], {}, id="nothing-above-76"
        ),
        pytest.param([{"datasource": "nope"}], {}, id="unknown-datasource"),
    ],
)
def test_active_locks_apply_priority_lock_type_and_intervals(
    client: FlaskClient, policies: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    response = client.post(f"{BASE}/activeLocks", json=policies)

    assert response.status_code == 200
    assert response.content_type == JSON
    assert response.json == {"datasourceToLocks": expected}


@pytest.mark.usefixtures("locks")
def test_active_locks_write_task_lock_keys_in_druid_order(
    client: FlaskClient,
) -> None:
    response = client.post(
        f"{BASE}/activeLocks",
        json=[
            {"datasource": "koala"},
            {"datasource": "wiki", "intervals": ["2024-01-05/2024-01-06"]},
        ],
    )

    assert response.get_data(as_text=True) == (
        '{"datasourceToLocks":{'
        '"koala":[{"granularity":"timeChunk","type":"EXCLUSIVE","groupId":"t_k",'
        '"dataSource":"koala",'
        '"interval":"2024-02-01T00:00:00.000Z/2024-02-02T00:00:00.000Z",'
        '"version":"2024-05-06T07:08:09.456Z","priority":50,"revoked":false}],'
        '"wiki":[{"granularity":"segment","type":"EXCLUSIVE","groupId":"t_seg",'
        '"dataSource":"wiki",'
        '"interval":"2024-01-05T00:00:00.000Z/2024-01-06T00:00:00.000Z",'
        '"version":"2024-05-06T07:08:09.456Z","partitionId":3,"priority":50,'
        '"revoked":false}]}}'
    )


def test_lock_queries_without_locks_return_empty_maps(client: FlaskClient) -> None:
    policies = [{"datasource": "wiki"}]

    intervals = client.post(f"{BASE}/lockedIntervals/v2", json=policies)
    active = client.post(f"{BASE}/activeLocks", json=policies)

    assert (intervals.status_code, intervals.get_data(as_text=True)) == (200, "{}")
    assert (active.status_code, active.get_data(as_text=True)) == (
        200,
        '{"datasourceToLocks":{}}',
    )


@pytest.mark.parametrize("path", ["lockedIntervals/v2", "activeLocks"])
@pytest.mark.parametrize(
    "request_options",
    [
        pytest.param({"data": "null", "content_type": JSON}, id="null"),
        pytest.param({"data": "", "content_type": JSON}, id="empty-body"),
        pytest.param({}, id="missing-body"),
        pytest.param({"data": "[]", "content_type": JSON}, id="empty-array"),
    ],
)
def test_lock_queries_without_filter_return_400_text(
    offline_client: FlaskClient, path: str, request_options: dict[str, Any]
) -> None:
    response = offline_client.post(f"{BASE}/{path}", **request_options)

    assert response.status_code == 400
    assert response.content_type == TEXT
    assert response.get_data(as_text=True) == "No filter provided"


@pytest.mark.parametrize("path", ["lockedIntervals/v2", "activeLocks"])
def test_lock_queries_refuse_get_with_405(
    offline_client: FlaskClient, path: str
) -> None:
    response = offline_client.get(f"{BASE}/{path}")

    assert response.status_code == 405
    assert response.content_type == JSON
    assert response.json == {
        "error": "The method is not allowed for the requested URL."
    }
    assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}


# --- /status --------------------------------------------------------------------


def test_status_returns_version(offline_client: FlaskClient) -> None:
    response = offline_client.get("/status")

    assert response.status_code == 200
    assert response.content_type == JSON
    body = response.json
    assert list(body) == ["version", "modules", "memory"]
    assert (body["version"], body["modules"]) == (__version__, [])
    memory = body["memory"]
    assert list(memory) == [
        "maxMemory",
        "totalMemory",
        "freeMemory",
        "usedMemory",
        "directMemory",
    ]
    assert memory["usedMemory"] == memory["totalMemory"] > 0
    assert memory["maxMemory"] > memory["usedMemory"]
    assert memory["directMemory"] == -1


def test_status_health_returns_bare_true(offline_client: FlaskClient) -> None:
    response = offline_client.get("/status/health")

    assert response.status_code == 200
    assert response.content_type == JSON
    assert response.get_data(as_text=True) == "true"


def expected_properties(settings: Settings, database_url: str) -> dict[str, str]:
    properties = {
        f"overlord.{field.name}": setting_text(getattr(settings, field.name))
        for field in setting_fields()
    }
    properties["overlord.database_url"] = database_url
    return properties


def test_status_properties_lists_every_setting_as_text(
    client: FlaskClient, settings: Settings, database_url: str
) -> None:
    response = client.get("/status/properties")

    assert response.status_code == 200
    assert response.content_type == JSON
    body = response.json
    assert body == expected_properties(settings, database_url)
    assert body["overlord.port"] == "8090"
    assert body["overlord.db_pool_size"] == "2"
    assert body["overlord.recently_finished_threshold"] == "P1D"
    assert body["overlord.elastic_product_header"] == "false"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param(
            "postgresql+psycopg://overlord:s3cret@db.example:5432/overlord",
            "postgresql+psycopg://overlord:<masked>@db.example:5432/overlord",
            id="postgresql",
        ),
        pytest.param(
            "mysql+pymysql://root:p%40ss%3Aw0rd@127.0.0.1:3306/overlord?charset=utf8mb4",
            "mysql+pymysql://root:<masked>@127.0.0.1:3306/overlord?charset=utf8mb4",
            id="percent-encoded-password",
        ),
        pytest.param(
            "postgresql+psycopg://admin:admin@db.example/overlord",
            "postgresql+psycopg://admin:<masked>@db.example/overlord",
            id="password-equals-user",
        ),
        pytest.param(
            "postgresql+psycopg://overlord@db.example/overlord",
            "postgresql+psycopg://overlord@db.example/overlord",
            id="no-password",
        ),
        pytest.param("sqlite:///:memory:", "sqlite:///:memory:", id="sqlite"),
    ],
)
def test_status_properties_masks_database_password(
    offline_settings: Settings, url: str, shown: str
) -> None:
    # create_app builds an engine for the fake URL but never connects.
    fake = dataclasses.replace(offline_settings, database_url=url)
    app = create_app(fake)

    response = app.test_client().get("/status/properties")

    assert response.status_code == 200
    assert response.json == expected_properties(fake, shown)
    for secret in ("s3cret", "p%40ss", "w0rd", ":admin@"):
        assert secret not in response.get_data(as_text=True)


# --- GET /task/{id}/reports ---------------------------------------------------


@pytest.mark.parametrize(
    "report",
    [
        pytest.param(
            '{"ingestionStatsAndErrors": {"type":"ingestionStatsAndErrors",'
            '"taskId":"t1","payload":{"ingestionState":"COMPLETED",'
            '"unparseableEvents":{},"errorMsg":null}},\n  "zeta": 1, "alpha": "é"}',
            id="spacing-order-and-unicode-kept",
        ),
        pytest.param(
            '{"killUnusedSegments":{"type":"killUnusedSegments","taskId":"t1",'
            '"payload":{"data":"' + "x" * 100_000 + '"}}}',
            id="larger-than-64KiB",
        ),
    ],
)
def test_task_reports_return_stored_text_as_is(
    client: FlaskClient, db: Database, report: str
) -> None:
    with db.transaction() as session:
        make_report(session, make_task(session, task_id="t1"), report)

    response = client.get(f"{BASE}/task/t1/reports")

    assert response.status_code == 200
    assert response.content_type == JSON
    assert response.get_data(as_text=True) == report


def test_task_reports_missing_returns_404_text(
    client: FlaskClient, db: Database
) -> None:
    with db.transaction() as session:
        make_report(session, make_task(session, task_id="other"), "{}")
        make_task(session, task_id="t1")

    response = client.get(f"{BASE}/task/t1/reports")

    assert response.status_code == 404
    assert response.content_type == TEXT
    assert response.get_data(as_text=True) == (
        "No task reports were found for this task. The task may not exist, "
        "or it may not have completed yet."
    )


# --- GET /task/{id}/log ---------------------------------------------------------

LOG = b"hello w\xc3\xb6rld\nbye\n"  # 17 bytes in three chunks: 0, 6 and 13


@pytest.fixture
def task_log(db: Database) -> None:
    with db.transaction() as session:
        task = make_task(session, task_id="t1")
        # Written out of order: reads follow byte_offset, not insertion.
        make_log_chunk(session, task, b"bye\n", byte_offset=13)
        make_log_chunk(session, task, b"hello ", byte_offset=0)
        make_log_chunk(session, task, b"w\xc3\xb6rld\n", byte_offset=6)
        make_log_chunk(
            session, make_task(session, task_id="t2"), b"other\n", byte_offset=0
        )


@pytest.mark.usefixtures("task_log")
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("", LOG, id="no-offset"),
        pytest.param("?offset=0", LOG, id="zero"),
        pytest.param("?offset=3", b"lo w\xc3\xb6rld\nbye\n", id="inside-first-chunk"),
        pytest.param("?offset=6", b"w\xc3\xb6rld\nbye\n", id="chunk-boundary"),
        pytest.param("?offset=8", b"\xb6rld\nbye\n", id="bytes-not-characters"),
        pytest.param("?offset=16", b"\n", id="last-byte"),
        pytest.param("?offset=17", b"", id="at-end"),
        pytest.param("?offset=1000", b"", id="beyond-end"),
        pytest.param("?offset=-4", b"bye\n", id="tail-in-last-chunk"),
        pytest.param("?offset=-5", b"\nbye\n", id="tail-across-chunks"),
        pytest.param("?offset=-17", LOG, id="tail-whole-log"),
        pytest.param("?offset=-1000", LOG, id="tail-longer-than-log"),
    ],
)
def test_task_log_offset_selects_bytes(
    client: FlaskClient, query: str, expected: bytes
) -> None:
    response = client.get(f"{BASE}/task/t1/log{query}")

    assert response.status_code == 200
    assert response.content_type == TEXT
    assert response.data == expected


def test_task_log_missing_returns_404_text(client: FlaskClient, db: Database) -> None:
    with db.transaction() as session:
        make_log_chunk(
            session, make_task(session, task_id="other"), b"x", byte_offset=0
        )
        make_task(session, task_id="t1")

    response = client.get(f"{BASE}/task/t1/log")

    assert response.status_code == 404
    assert response.content_type == TEXT
    assert response.get_data(as_text=True) == (
        "No log was found for this task. The task may not exist, "
        "or it may not have begun running yet."
    )


@pytest.mark.usefixtures("task_log")
@pytest.mark.parametrize("offset", ["abc", "1.5", "0x10"])
def test_task_log_offset_not_a_number_returns_404(
    client: FlaskClient, offset: str
) -> None:
    response = client.get(f"{BASE}/task/t1/log?offset={offset}")

    assert response.status_code == 404
    assert response.content_type == JSON
    assert response.json == {
        "error": f"Invalid value for query parameter [offset]: [{offset}] "
        "is not a number"
    }


# --- GET /task/{id}/segments ----------------------------------------------------


def test_task_segments_are_gone_404(client: FlaskClient, db: Database) -> None:
    with db.transaction() as session:
        make_complete_task(session, task_id="t1")

    response = client.get(f"{BASE}/task/t1/segments")

    assert response.status_code == 404
    assert response.content_type == JSON
    assert response.get_data(as_text=True) == (
        '{"error":"Segment IDs committed by a task action are not persisted '
        "anymore. Use the metric 'segment/added/bytes' to identify the segments "
        'created by a task."}'
    )


# --- unknown ids ----------------------------------------------------------------

UNKNOWN = "index_parallel_wiki_abcdefgh_2023-06-26T21:08:05.216Z"


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        pytest.param("get", "", id="payload"),
        pytest.param("get", "/status", id="status"),
        pytest.param("get", "/reports", id="reports"),
        pytest.param("get", "/log", id="log"),
        pytest.param("get", "/log?offset=-10", id="log-tail"),
        pytest.param("get", "/segments", id="segments"),
        pytest.param("post", "/shutdown", id="shutdown"),
    ],
)
def test_task_scoped_paths_with_unknown_id_return_404_text(
    client: FlaskClient, db: Database, method: str, suffix: str
) -> None:
    with db.transaction() as session:
        task = make_task(session, task_id="known")
        make_report(session, task, "{}")
        make_log_chunk(session, task, b"x", byte_offset=0)

    response = getattr(client, method)(f"{BASE}/task/{UNKNOWN}{suffix}")

    assert response.status_code == 404
    assert response.content_type == TEXT
    assert (
        response.get_data(as_text=True) == f"Cannot find any task with id: [{UNKNOWN}]"
    )
