"""``GET /druid/indexer/v1/task/{id}``: the payload as Druid serialises the task
(``services.payload``): posted fields exact and in place, ``groupId``, ``resource``
and ``TaskQueue``'s context keys added where absent, passwords masked."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from overlord.db import Database
from overlord.store.models import Task
from tests.factories import make_task

BASE = "/druid/indexer/v1"
JSON = "application/json"
CONTEXT = '"forceTimeChunkLock":true,"useLineageBasedSegmentAllocation":true'


def _resource(task_id: str) -> str:
    return f'"resource":{{"availabilityGroup":"{task_id}","requiredCapacity":1}}'


def _post(client: FlaskClient, body: str) -> str:
    response = client.post(f"{BASE}/task", data=body, content_type=JSON)
    assert response.status_code == 200, response.get_data(as_text=True)
    task_id = response.json["task"]
    assert isinstance(task_id, str)
    return task_id


def _payload(client: FlaskClient, task_id: str) -> str:
    response = client.get(f"{BASE}/task/{task_id}")
    assert response.status_code == 200
    assert response.content_type == JSON
    body = response.get_data(as_text=True)
    prefix = f'{{"task":"{task_id}","payload":'
    assert body.startswith(prefix), body
    assert body.endswith("}"), body
    return body[len(prefix) : -1]


def _stored(db: Database, task_id: str) -> str:
    with db.transaction() as session:
        return session.scalars(
            select(Task.payload).where(Task.task_id == task_id)
        ).one()


# Numbers as written (beyond a long, floats Python would print otherwise, -0),
# unicode and escapes, unknown fields and nesting, in a posted order Druid never uses.
EXACT_VALUES = (
    '"big":123456789012345678901234567890,"long":-9223372036854775809,'
    '"floats":[1.50,1e3,1E+2,-0.0,0.1,1.0000000000000001,2.5e-320,-0],'
    '"text":"naïve 日本 🚀 \\"q\\" \\\\ \\n\\t\\u0000","unknown":{"deep":[{"x":null}]}'
)


def test_get_task_keeps_every_posted_value_and_adds_druid_fields(
    client: FlaskClient, db: Database
) -> None:
    task_id = _post(
        client,
        '{"runTime":1,' + EXACT_VALUES + ',"type":"noop","id":"exact",'
        '"context":{"zeta":1.10}}',
    )

    expected = (
        '{"runTime":1,' + EXACT_VALUES + ',"type":"noop","id":"exact",'
        '"groupId":"exact","context":{"zeta":1.10,'
        + CONTEXT
        + "},"
        + _resource("exact")
        + "}"
    )
    assert _payload(client, task_id) == expected
    assert _stored(db, task_id) == expected


@pytest.mark.parametrize(
    ("posted", "expected"),
    [
        pytest.param(
            '{"type":"noop","id":"n","dataSource":"wiki","runTime":5}',
            '{"type":"noop","id":"n","groupId":"n","dataSource":"wiki","runTime":5,'
            '"context":{' + CONTEXT + "}," + _resource("n") + "}",
            id="noop",
        ),
        pytest.param(
            '{"type":"kill","id":"k","dataSource":"wiki",'
            '"interval":"2020-01-01/2021-01-01","batchSize":10}',
            '{"type":"kill","id":"k","dataSource":"wiki",'
            '"interval":"2020-01-01/2021-01-01","context":{' + CONTEXT + "},"
            '"batchSize":10,"groupId":"k",' + _resource("k") + "}",
            id="kill",
        ),
        pytest.param(
            '{"type":"index_parallel","id":"p","spec":{"dataSchema":'
            '{"dataSource":"wiki"},"ioConfig":{"type":"index_parallel"}}}',
            '{"type":"index_parallel","id":"p","groupId":"p",' + _resource("p") + ","
            '"spec":{"dataSchema":{"dataSource":"wiki"},'
            '"ioConfig":{"type":"index_parallel"}},"context":{' + CONTEXT + "}}",
            id="index_parallel",
        ),
        pytest.param(
            '{"type":"index","id":"i","spec":{"dataSchema":{"dataSource":"wiki"},'
            '"ioConfig":{"type":"index","appendToExisting":true}}}',
            '{"type":"index","id":"i",' + _resource("i") + ","
            '"spec":{"dataSchema":{"dataSource":"wiki"},'
            '"ioConfig":{"type":"index","appendToExisting":true}},'
            '"context":{' + CONTEXT + '},"groupId":"index_append_wiki"}',
            id="index-append-group",
        ),
    ],
)
def test_get_task_adds_fields_where_jackson_writes_them(
    client: FlaskClient, posted: str, expected: str
) -> None:
    task_id = _post(client, posted)

    assert _payload(client, task_id) == expected


def test_get_task_keeps_posted_group_resource_and_context_values(
    client: FlaskClient,
) -> None:
    task_id = _post(
        client,
        '{"resource":{"availabilityGroup":"shared","requiredCapacity":2},'
        '"type":"noop","id":"mine","groupId":"team",'
        '"context":{"useLineageBasedSegmentAllocation":false,'
        '"forceTimeChunkLock":false,"priority":7}}',
    )

    assert _payload(client, task_id) == (
        '{"resource":{"availabilityGroup":"shared","requiredCapacity":2},'
        '"type":"noop","id":"mine","groupId":"team",'
        '"context":{"useLineageBasedSegmentAllocation":false,'
        '"forceTimeChunkLock":false,"priority":7}}'
    )


def test_get_task_completes_a_partial_context_at_its_end(client: FlaskClient) -> None:
    task_id = _post(
        client,
        '{"type":"noop","id":"half","context":{"useLineageBasedSegmentAllocation":false}}',
    )

    assert _payload(client, task_id) == (
        '{"type":"noop","id":"half","groupId":"half",'
        '"context":{"useLineageBasedSegmentAllocation":false,'
        '"forceTimeChunkLock":true},' + _resource("half") + "}"
    )


def test_get_task_replaces_null_defaults_where_they_stand(client: FlaskClient) -> None:
    task_id = _post(
        client,
        '{"context":null,"resource":null,"groupId":null,"id":null,"type":"noop",'
        '"runTime":1}',
    )

    assert _payload(client, task_id) == (
        '{"context":{' + CONTEXT + "},"
        '"resource":{"availabilityGroup":"' + task_id + '","requiredCapacity":1},'
        f'"groupId":"{task_id}","id":"{task_id}","type":"noop","runTime":1}}'
    )


def test_get_task_masks_passwords_and_keeps_numbers_as_written(
    client: FlaskClient, db: Database
) -> None:
    posted = (
        '{"type":"index_parallel","id":"secret","spec":{"dataSchema":'
        '{"dataSource":"wiki","ratio":0.50},"ioConfig":{"type":"index_parallel",'
        '"inputSource":{"type":"http","uris":["https://example.com/a.json"],'
        '"httpAuthenticationPassword":"s3cret"}}}}'
    )
    task_id = _post(client, posted)

    added = '"groupId":"secret",' + _resource("secret") + ","
    spec = (
        '"spec":{"dataSchema":{"dataSource":"wiki","ratio":0.50},'
        '"ioConfig":{"type":"index_parallel","inputSource":{"type":"http",'
        '"uris":["https://example.com/a.json"],"httpAuthenticationPassword":%s}}}'
    )
    head = '{"type":"index_parallel","id":"secret",' + added
    tail = ',"context":{' + CONTEXT + "}}"
    assert _payload(client, task_id) == (
        head + spec % '{"type":"default","password":null}' + tail
    )
    assert _stored(db, task_id) == head + spec % '"s3cret"' + tail


def test_get_task_adds_druid_fields_to_rows_stored_before_them(
    client: FlaskClient, db: Database
) -> None:
    """Rows written by earlier versions hold the posted object only: the read adds
    the fields without rewriting the row."""
    old = '{"type":"kill","id":"old","dataSource":"wiki","interval":"2020/2021","x":1.0e1}'
    with db.transaction() as session:
        make_task(session, task_id="old", type="kill", group_id="old", payload=old)

    assert _payload(client, "old") == (
        '{"type":"kill","id":"old","dataSource":"wiki","interval":"2020/2021",'
        '"context":{' + CONTEXT + '},"groupId":"old",' + _resource("old") + ","
        '"x":1.0e1}'
    )
    assert _stored(db, "old") == old


def test_get_task_answers_a_complete_stored_payload_byte_for_byte(
    client: FlaskClient, db: Database
) -> None:
    stored = (
        '{ "type": "noop", "id": "as-is", "groupId": "g",\n'
        '  "resource": {"availabilityGroup": "a", "requiredCapacity": 1},\n'
        '  "context": {"forceTimeChunkLock": true,'
        ' "useLineageBasedSegmentAllocation": true, "\\u00e9": 1.50} }'
    )
    with db.transaction() as session:
        make_task(session, task_id="as-is", group_id="g", payload=stored)

    assert _payload(client, "as-is") == stored


def test_submitted_task_with_exact_numbers_still_reads_as_json(
    client: FlaskClient,
) -> None:
    """Everything else reading the payload (runtime, reports) parses it as JSON."""
    task_id = _post(client, '{"type":"noop","id":"num","runTime":1,"w":1.50e0}')

    response = client.get(f"{BASE}/task/{task_id}")

    assert json.loads(response.get_data(as_text=True))["payload"]["w"] == 1.5
    status: Any = client.get(f"{BASE}/task/{task_id}/status").json
    assert status["status"]["groupId"] == "num"
