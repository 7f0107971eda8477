"""``GET/POST /druid/indexer/v1/worker`` and ``GET /worker/history``: the worker
behaviour config Druid's web console reads and edits (``OverlordResource``
``getWorkerConfig``/``setWorkerConfig``/``getWorkerConfigHistory``), stored and audited
in the database, so every server sharing it answers alike."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from overlord.app import create_app
from overlord.config import Settings
from overlord.db import Database
from overlord.store.models import AuditEntry
from overlord.timeutil import format_druid, utcnow

URL = "/druid/indexer/v1/worker"
HISTORY = f"{URL}/history"
JSON = "application/json"
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
NO_LIMITS = '"taskLimits":{"maxSlotCountByType":{},"maxSlotRatioByType":{}}'
DEFAULT = (
    '{"type":"default","selectStrategy":{"type":"equalDistribution",'
    '"affinityConfig":null,' + NO_LIMITS + "},"
    '"autoScaler":{"type":"NoopAutoScaler","category":"_default_worker_category"}}'
)
FILL = (
    '{"type":"default","selectStrategy":{"type":"fillCapacity",'
    '"affinityConfig":{"affinity":{"wiki":["host1:8091"]},"strong":true},'
    + NO_LIMITS
    + '},"autoScaler":null}'
)
EQUAL_LIMITED = (
    '{"type":"default","selectStrategy":{"type":"equalDistribution",'
    '"affinityConfig":null,"taskLimits":{"maxSlotCountByType":{"index_parallel":3},'
    '"maxSlotRatioByType":{}}},"autoScaler":null}'
)


def _post(client: FlaskClient, body: str, **headers: str) -> None:
    response = client.post(URL, data=body, content_type=JSON, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_data() == b""
    assert "Content-Type" not in response.headers


def _history(client: FlaskClient, query: str = "") -> list[dict[str, Any]]:
    response = client.get(f"{HISTORY}{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type == JSON
    body = response.json
    assert isinstance(body, list)
    return body


def _entry(payload: str, *, author: str | None, comment: str | None) -> dict[str, Any]:
    return {
        "key": "worker.config",
        "type": "worker.config",
        "auditInfo": {
            "author": author,
            "identity": None,
            "comment": comment,
            "ip": "127.0.0.1",
        },
        "request": None,
        "payload": payload,
    }


def _without_time(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for entry in entries:
        assert re.fullmatch(ISO, entry["auditTime"]), entry
        assert list(entry)[-1] == "auditTime"
    return [{k: v for k, v in entry.items() if k != "auditTime"} for entry in entries]


def test_get_worker_config_answers_druid_default_until_one_is_posted(
    client: FlaskClient,
) -> None:
    response = client.get(URL)

    assert response.status_code == 200
    assert response.content_type == JSON
    assert response.get_data(as_text=True) == DEFAULT
    assert _history(client) == []


def test_post_worker_config_stores_and_audits_it(client: FlaskClient) -> None:
    before = utcnow().replace(microsecond=0)
    _post(
        client,
        '{"selectStrategy":{"type":"fillCapacity","affinityConfig":'
        '{"affinity":{"wiki":["host1:8091"]},"strong":true}},"autoScaler":null,'
        '"unknown":1}',
        **{"X-Druid-Author": "alice", "X-Druid-Comment": "pin wiki"},
    )

    assert client.get(URL).get_data(as_text=True) == FILL
    history = _history(client)
    assert _without_time(history) == [_entry(FILL, author="alice", comment="pin wiki")]
    stamp = dt.datetime.strptime(history[0]["auditTime"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert before <= stamp <= utcnow()


def test_post_worker_config_twice_keeps_the_last_and_lists_both(
    client: FlaskClient,
) -> None:
    _post(client, FILL, **{"X-Druid-Author": "alice"})
    _post(
        client,
        '{"type":"default","selectStrategy":{"type":"equalDistribution",'
        '"taskLimits":{"maxSlotCountByType":{"index_parallel":3}}}}',
        **{"X-Druid-Comment": "limit"},
    )

    assert client.get(URL).get_data(as_text=True) == EQUAL_LIMITED
    first = _entry(FILL, author="alice", comment=None)
    second = _entry(EQUAL_LIMITED, author=None, comment="limit")
    assert _without_time(_history(client)) == [first, second]
    assert _without_time(_history(client, "?count=1")) == [second]
    assert _without_time(_history(client, "?count=5")) == [second, first]


def test_worker_config_is_shared_by_every_server(
    client: FlaskClient, settings: Settings
) -> None:
    """A second server on the same store (its own app and pool) reads what the first
    one stored: nothing is kept in a process."""
    other = Database(settings)
    try:
        second = create_app(settings, database=other).test_client()
        assert second.get(URL).get_data(as_text=True) == DEFAULT

        _post(client, FILL)

        assert second.get(URL).get_data(as_text=True) == FILL
        assert len(_history(second)) == 1
    finally:
        other.dispose()


@pytest.mark.parametrize(
    ("posted", "stored"),
    [
        pytest.param(
            "{}",
            '{"type":"default","selectStrategy":null,"autoScaler":null}',
            id="empty",
        ),
        pytest.param(
            '{"type":"someday","selectStrategy":{"type":"nope","extra":1}}',
            '{"type":"default","selectStrategy":{"type":"equalDistribution",'
            '"affinityConfig":null,' + NO_LIMITS + '},"autoScaler":null}',
            id="unknown-types-bind-the-defaults",
        ),
        pytest.param(
            '{"autoScaler":{"category":"c1","minNumWorkers":2}}',
            '{"type":"default","selectStrategy":null,'
            '"autoScaler":{"type":"NoopAutoScaler","category":"c1"}}',
            id="noop-autoscaler",
        ),
        pytest.param(
            '{"autoScaler":{"minNumWorkers":1,"type":"ec2","maxNumWorkers":4}}',
            '{"type":"default","selectStrategy":null,'
            '"autoScaler":{"type":"ec2","minNumWorkers":1,"maxNumWorkers":4}}',
            id="extension-autoscaler-kept",
        ),
        pytest.param(
            '{"type":"categorized","selectStrategy":{"type":"javascript",'
            '"function":"f"},"autoScalers":[{"category":"a"}]}',
            '{"type":"categorized","selectStrategy":{"type":"javascript",'
            '"function":"f"},"autoScalers":[{"type":"NoopAutoScaler","category":"a"}]}',
            id="categorized",
        ),
    ],
)
def test_post_worker_config_stores_it_as_druid_binds_it(
    client: FlaskClient, posted: str, stored: str
) -> None:
    _post(client, posted)

    assert client.get(URL).get_data(as_text=True) == stored
    assert [entry["payload"] for entry in _history(client)] == [stored]


SETUP = "org.apache.druid.indexing.overlord.setup"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            "[]",
            f"Cannot deserialize value of type `{SETUP}.WorkerBehaviorConfig` from "
            "Array value",
            id="array",
        ),
        pytest.param(
            "null", "Worker behavior config must be a JSON object, not null", id="null"
        ),
        pytest.param("", "No content to map due to end-of-input", id="empty-body"),
        pytest.param(
            '{"selectStrategy":"fillCapacity"}',
            f"Cannot deserialize value of type `{SETUP}.WorkerSelectStrategy` from "
            f"String value (through reference chain: {SETUP}.DefaultWorkerBehaviorConfig"
            '["selectStrategy"])',
            id="strategy-string",
        ),
        pytest.param(
            '{"selectStrategy":{"taskLimits":{"maxSlotCountByType":[1]}}}',
            "Cannot deserialize value of type `java.util.Map` from Array value "
            f"(through reference chain: {SETUP}.DefaultWorkerBehaviorConfig"
            '["selectStrategy"]["taskLimits"]["maxSlotCountByType"])',
            id="limits-array",
        ),
        pytest.param(
            '{"type":"categorized","autoScalers":{}}',
            "Cannot deserialize value of type `java.util.List<org.apache.druid."
            "indexing.overlord.autoscaling.AutoScaler>` from Object value (through "
            f'reference chain: {SETUP}.CategorizedWorkerBehaviorConfig["autoScalers"])',
            id="autoscalers-object",
        ),
    ],
)
def test_post_worker_config_bad_body_returns_400_and_stores_nothing(
    client: FlaskClient, body: str, message: str
) -> None:
    response = client.post(URL, data=body, content_type=JSON)

    assert response.status_code == 400
    assert response.content_type == JSON
    assert response.json == {"error": message}
    assert client.get(URL).get_data(as_text=True) == DEFAULT
    assert _history(client) == []


@pytest.fixture
def old_and_new_entries(db: Database) -> tuple[str, str]:
    """One audit entry 8 days old (outside the default week), one an hour old."""
    now = utcnow()
    old, new = now - dt.timedelta(days=8), now - dt.timedelta(hours=1)
    with db.transaction() as session:
        for created, payload in ((old, '{"n":1}'), (new, '{"n":2}')):
            session.add(
                AuditEntry(
                    audit_key="worker.config",
                    type="worker.config",
                    author="bob",
                    comment=None,
                    identity=None,
                    ip="10.0.0.1",
                    created_date=created,
                    payload=payload,
                )
            )
    return format_druid(old), format_druid(new)


def test_worker_history_defaults_to_the_last_week_oldest_first(
    client: FlaskClient, old_and_new_entries: tuple[str, str]
) -> None:
    _old, new = old_and_new_entries

    entries = _history(client)

    assert [(e["payload"], e["auditTime"]) for e in entries] == [('{"n":2}', new)]
    assert entries[0]["auditInfo"] == {
        "author": "bob",
        "identity": None,
        "comment": None,
        "ip": "10.0.0.1",
    }


def test_worker_history_interval_selects_by_creation_time_and_wins_over_count(
    client: FlaskClient, old_and_new_entries: tuple[str, str]
) -> None:
    old, new = old_and_new_entries
    wide = f"?interval=2000-01-01/{format_druid(utcnow() + dt.timedelta(days=1))}"
    only_old = f"?interval=2000-01-01/P{_days_since_2000(old)}D&count=1"

    assert [e["auditTime"] for e in _history(client, wide)] == [old, new]
    assert [e["auditTime"] for e in _history(client, only_old)] == [old]
    assert [e["auditTime"] for e in _history(client, "?count=2")] == [new, old]


def _days_since_2000(stamp: str) -> int:
    moment = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z")
    return (moment - dt.datetime(2000, 1, 1, tzinfo=dt.UTC)).days + 1


@pytest.mark.parametrize(
    ("query", "status", "body"),
    [
        pytest.param(
            "?count=0", 400, {"error": "Limit must be greater than zero!"}, id="zero"
        ),
        pytest.param(
            "?count=-3",
            400,
            {"error": "Limit must be greater than zero!"},
            id="negative",
        ),
        pytest.param(
            "?count=ten",
            404,
            {
                "error": "Invalid value for query parameter [count]: [ten] is not a number"
            },
            id="not-a-number",
        ),
        pytest.param(
            "?count=2147483648",
            404,
            {
                "error": "Invalid value for query parameter [count]: [2147483648] is "
                "not a number"
            },
            id="beyond-int",
        ),
        pytest.param(
            "?interval=yesterday",
            400,
            {"error": "Format requires a '/' separator: \"yesterday\""},
            id="bad-interval",
        ),
    ],
)
def test_worker_history_bad_parameters_return_4xx(
    client: FlaskClient, query: str, status: int, body: dict[str, str]
) -> None:
    response = client.get(f"{HISTORY}{query}")

    assert response.status_code == status
    assert response.content_type == JSON
    assert json.loads(response.get_data(as_text=True)) == body
