"""``POST /druid/indexer/v1/lockedIntervals``: the deprecated v1 lock query
(``OverlordResource.getDatasourceLockedIntervals`` and
``TaskLockbox.getLockedIntervals(Map<String, Integer>)`` at ``@dab360d``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient

from overlord.db import Database
from tests.factories import make_lock, make_task

URL = "/druid/indexer/v1/lockedIntervals"
TEXT = "text/plain; charset=UTF-8"
JSON = "application/json"
DAY = [f"2024-01-{day:02d}T00:00:00.000Z" for day in range(1, 7)]
I1, I2, I3, I4, I5 = (f"{DAY[i]}/{DAY[i + 1]}" for i in range(5))
K1 = "2024-02-01T00:00:00.000Z/2024-02-02T00:00:00.000Z"


def _day(day: int, month: int = 1) -> dt.datetime:
    return dt.datetime(2024, month, day, tzinfo=dt.UTC)


@pytest.fixture
def locks(db: Database) -> None:
    """wiki: I1 prio 10, I2 SHARED 25, I3 APPEND 50, I4 revoked 75, and a second
    task of I3's group on I3 (one interval, reported once); koala: K1 50."""
    with db.transaction() as session:
        for task_id, priority, day, fields in [
            ("t_lo", 10, 1, {}),
            ("t_eq", 25, 2, {"lock_type": "SHARED"}),
            ("t_app", 50, 3, {"lock_type": "APPEND"}),
            ("t_rev", 75, 4, {"revoked": True}),
        ]:
            task = make_task(session, task_id=task_id, priority=priority)
            make_lock(session, task, start=_day(day), end=_day(day + 1), **fields)
        mate = make_task(session, task_id="t_app2", group_id="t_app", priority=50)
        make_lock(session, mate, start=_day(3), end=_day(4), lock_type="APPEND")
        koala = make_task(session, task_id="t_k", datasource="koala")
        make_lock(session, koala, start=_day(1, 2), end=_day(2, 2))


@pytest.mark.usefixtures("locks")
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"wiki": 0}, f'{{"wiki":["{I1}","{I2}","{I3}"]}}', id="all"),
        pytest.param(
            {"wiki": 25},
            f'{{"wiki":["{I2}","{I3}"]}}',
            id="equal-priority-counts-append-kept",
        ),
        pytest.param({"wiki": 51}, "{}", id="only-revoked-above"),
        pytest.param(
            {"koala": 50, "wiki": 26},
            f'{{"koala":["{K1}"],"wiki":["{I3}"]}}',
            id="two-datasources",
        ),
        pytest.param({"nobody": 0}, "{}", id="unknown-datasource"),
        pytest.param({"wiki": "26"}, f'{{"wiki":["{I3}"]}}', id="string-coerced"),
        pytest.param(
            {"wiki": -2147483648}, f'{{"wiki":["{I1}","{I2}","{I3}"]}}', id="int-min"
        ),
    ],
)
def test_locked_intervals_v1_returns_unrevoked_intervals_at_or_above_priority(
    client: FlaskClient, body: dict[str, Any], expected: str
) -> None:
    response = client.post(URL, json=body)

    assert response.status_code == 200
    assert response.content_type == JSON
    assert response.get_data(as_text=True) == expected


def test_locked_intervals_v1_answers_like_v2_for_the_same_priorities(
    client: FlaskClient, locks: None
) -> None:
    v1 = client.post(URL, json={"wiki": 25, "koala": 0})
    v2 = client.post(
        f"{URL}/v2",
        json=[{"datasource": "wiki", "priority": 25}, {"datasource": "koala"}],
    )

    assert v1.get_data(as_text=True) == v2.get_data(as_text=True)


@pytest.mark.parametrize(
    "request_options",
    [
        pytest.param({"data": "null", "content_type": JSON}, id="null"),
        pytest.param({"data": "", "content_type": JSON}, id="empty-body"),
        pytest.param({}, id="missing-body"),
        pytest.param({"data": "{}", "content_type": JSON}, id="empty-object"),
    ],
)
def test_locked_intervals_v1_without_datasource_returns_400_text(
    client: FlaskClient, request_options: dict[str, Any]
) -> None:
    response = client.post(URL, **request_options)

    assert response.status_code == 400
    assert response.content_type == TEXT
    assert response.get_data(as_text=True) == "No Datasource provided"


MAP = "java.util.LinkedHashMap<java.lang.String,java.lang.Integer>"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            '[{"datasource":"wiki"}]',
            f"Cannot deserialize value of type `{MAP}` from Array value",
            id="v2-body",
        ),
        pytest.param(
            '"wiki"',
            f"Cannot deserialize value of type `{MAP}` from String value",
            id="string",
        ),
        pytest.param(
            '{"wiki":null}',
            "Invalid minimum task priority for datasource[wiki]: null",
            id="null-priority",
        ),
        pytest.param(
            '{"wiki":true}',
            "Cannot deserialize value of type `java.lang.Integer` from Boolean value "
            f'(through reference chain: {MAP}["wiki"])',
            id="boolean",
        ),
        pytest.param(
            '{"wiki":2.5}',
            "Cannot deserialize value of type `java.lang.Integer` from Number value "
            f'(through reference chain: {MAP}["wiki"])',
            id="float",
        ),
        pytest.param(
            '{"wiki":"high"}',
            'Cannot deserialize value of type `java.lang.Integer` from String "high": '
            "not a valid `java.lang.Integer` value "
            f'(through reference chain: {MAP}["wiki"])',
            id="word",
        ),
        pytest.param(
            '{"wiki":2147483648}',
            "Numeric value (2147483648) out of range of int (-2147483648 - 2147483647) "
            f'(through reference chain: {MAP}["wiki"])',
            id="beyond-int",
        ),
        pytest.param(
            '{"wiki":{"priority":1}}',
            "Cannot deserialize value of type `java.lang.Integer` from Object value "
            f'(through reference chain: {MAP}["wiki"])',
            id="object",
        ),
    ],
)
def test_locked_intervals_v1_bad_body_returns_400_error(
    client: FlaskClient, body: str, message: str
) -> None:
    response = client.post(URL, data=body, content_type=JSON)

    assert response.status_code == 400
    assert response.content_type == JSON
    assert response.json == {"error": message}


def test_locked_intervals_v1_refuses_get_with_405(client: FlaskClient) -> None:
    response = client.get(URL)

    assert response.status_code == 405
    assert response.json == {
        "error": "The method is not allowed for the requested URL."
    }
    assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
