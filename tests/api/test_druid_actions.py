"""POST /druid/indexer/v1/action: lock, allocation and segment actions."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from overlord.db import Database
from overlord.store.models import PendingSegment, TaskLock
from tests.factories import make_complete_task, make_task

ACTION = "/druid/indexer/v1/action"
DAY = "2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z"


def task_json(
    task_id: str, *, priority: int | None = None, group: str | None = None
) -> dict[str, Any]:
    document: dict[str, Any] = {"type": "noop", "id": task_id, "dataSource": "wiki"}
    if group is not None:
        document["groupId"] = group
    if priority is not None:
        document["context"] = {"priority": priority}
    return document


def act(client: FlaskClient, task: dict[str, Any], action: dict[str, Any]) -> Any:
    return client.post(ACTION, json={"task": task, "action": action})


@pytest.fixture
def active_tasks(db: Database) -> None:
    with db.transaction() as session:
        for task_id in ("low", "high", "other"):
            make_task(session, task_id=task_id)
        make_complete_task(session, task_id="finished")


@pytest.mark.usefixtures("active_tasks")
def test_lock_try_acquire_grants_a_time_chunk_lock(client: FlaskClient) -> None:
    response = act(
        client,
        task_json("low"),
        {"type": "lockTryAcquire", "interval": "2024-01-01/2024-01-02"},
    )

    assert response.status_code == 200
    lock = response.json["result"]
    assert list(lock) == [
        "granularity",
        "type",
        "groupId",
        "dataSource",
        "interval",
        "version",
        "priority",
        "revoked",
    ]
    assert {k: v for k, v in lock.items() if k != "version"} == {
        "granularity": "timeChunk",
        "type": "EXCLUSIVE",
        "groupId": "low",
        "dataSource": "wiki",
        "interval": DAY,
        "priority": 50,
        "revoked": False,
    }
    listed = act(client, task_json("low"), {"type": "lockList"}).json
    assert listed == {"result": [lock]}


@pytest.mark.usefixtures("active_tasks")
def test_lock_conflict_with_equal_priority_is_not_granted(client: FlaskClient) -> None:
    act(
        client,
        task_json("low"),
        {"type": "lockTryAcquire", "interval": "2024-01-01/2024-01-02"},
    )

    response = act(
        client,
        task_json("other"),
        {"type": "lockTryAcquire", "interval": "2024-01-01T12/2024-01-03"},
    )

    assert (response.status_code, response.json) == (200, {"result": None})


@pytest.mark.usefixtures("active_tasks")
def test_higher_priority_lock_revokes_the_lower_one(
    client: FlaskClient, db: Database
) -> None:
    act(
        client,
        task_json("low", priority=10),
        {"type": "lockTryAcquire", "interval": "2024-01-01/2024-01-02"},
    )

    granted = act(
        client,
        task_json("high", priority=90),
        {"type": "lockTryAcquire", "interval": "2024-01-01/2024-01-02"},
    )

    assert granted.json["result"]["revoked"] is False
    revoked = act(client, task_json("low", priority=10), {"type": "lockList"}).json[
        "result"
    ]
    assert [lock["revoked"] for lock in revoked] == [True]
    again = act(
        client,
        task_json("low", priority=10),
        {"type": "lockTryAcquire", "interval": "2024-01-01/2024-01-02"},
    )
    assert again.json["result"]["revoked"] is True
    locked = client.post(
        "/druid/indexer/v1/lockedIntervals/v2", json=[{"datasource": "wiki"}]
    ).json
    assert locked == {"wiki": [DAY]}


@pytest.mark.usefixtures("active_tasks")
def test_shared_locks_coexist(client: FlaskClient) -> None:
    shared = {
        "type": "lockTryAcquire",
        "lockType": "SHARED",
        "interval": "2024-01-01/2024-01-02",
    }
    first = act(client, task_json("low"), shared).json["result"]
    second = act(client, task_json("other"), shared).json["result"]

    assert first["type"] == second["type"] == "SHARED"
    assert first["groupId"] != second["groupId"]


@pytest.mark.usefixtures("active_tasks")
def test_lock_release_deletes_the_row(client: FlaskClient, db: Database) -> None:
    act(
        client,
        task_json("low"),
        {"type": "lockTryAcquire", "interval": "2024-01-01/2024-01-02"},
    )

    released = act(
        client,
        task_json("low"),
        {"type": "lockRelease", "interval": "2024-01-01/2024-01-02"},
    )

    assert released.json == {"result": None}
    with db.transaction() as session:
        assert session.scalars(select(TaskLock)).all() == []


@pytest.mark.usefixtures("active_tasks")
def test_lock_for_inactive_task_is_an_action_failure(client: FlaskClient) -> None:
    response = act(
        client,
        task_json("finished"),
        {"type": "lockTryAcquire", "interval": "2024-01-01/2024-01-02"},
    )

    assert response.status_code == 500
    assert response.json == {
        "error": "Unable to grant lock to inactive Task [finished]"
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            {"action": {"type": "lockList"}}, "'task' must not be null", id="no-task"
        ),
        pytest.param(
            {"task": {"type": "noop", "id": "t"}},
            "'action' must not be null",
            id="no-action",
        ),
    ],
)
def test_action_without_task_or_action_is_400(
    client: FlaskClient, body: dict[str, Any], message: str
) -> None:
    response = client.post(ACTION, json=body)

    assert (response.status_code, response.json) == (400, {"error": message})


def test_unknown_action_type_is_400(client: FlaskClient) -> None:
    response = act(client, task_json("t"), {"type": "teleport"})

    assert response.status_code == 400
    assert response.json["error"].startswith(
        "Could not resolve type id 'teleport' as a subtype of `TaskAction`"
    )


def allocate(client: FlaskClient, previous: str | None, **extra: Any) -> Any:
    action = {
        "type": "segmentAllocate",
        "dataSource": "wiki",
        "timestamp": "2024-01-01T05:00:00.000Z",
        "queryGranularity": {"type": "none"},
        "preferredSegmentGranularity": "DAY",
        "sequenceName": "seq_0",
        "previousSegmentId": previous,
        "skipSegmentLineageCheck": False,
        "shardSpecFactory": {"type": "numbered"},
        "lockGranularity": "TIME_CHUNK",
        "taskLockType": "EXCLUSIVE",
    }
    action.update(extra)
    return act(client, task_json("low"), action)


@pytest.mark.usefixtures("active_tasks")
def test_segment_allocate_is_idempotent_and_chains_partitions(
    client: FlaskClient, db: Database
) -> None:
    first = allocate(client, None).json["result"]
    repeated = allocate(client, None).json["result"]
    version = first["version"]
    first_id = f"wiki_2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z_{version}"
    second = allocate(client, first_id).json["result"]

    assert (
        first
        == repeated
        == {
            "dataSource": "wiki",
            "interval": DAY,
            "version": version,
            "shardSpec": {"type": "numbered", "partitionNum": 0, "partitions": 0},
        }
    )
    assert second["shardSpec"] == {
        "type": "numbered",
        "partitionNum": 1,
        "partitions": 0,
    }
    with db.transaction() as session:
        rows = session.scalars(
            select(PendingSegment).order_by(PendingSegment.created_date)
        ).all()
        assert [(r.id, r.sequence_prev_id, r.task_allocator_id) for r in rows] == [
            (first_id, "", "low"),
            (f"{first_id}_1", first_id, "low"),
        ]
        assert all(len(r.sequence_name_prev_id_sha1) == 40 for r in rows)


@pytest.mark.usefixtures("active_tasks")
def test_segment_allocate_for_another_datasource_fails(client: FlaskClient) -> None:
    response = allocate(client, None, dataSource="other")

    assert response.status_code == 500
    assert response.json == {
        "error": "Task dataSource must match action dataSource, [wiki] != [other]."
    }


@pytest.mark.usefixtures("active_tasks")
def test_publish_list_and_nuke_segments(client: FlaskClient) -> None:
    act(
        client,
        task_json("low"),
        {"type": "lockTryAcquire", "interval": "2024-01-01/2024-01-02"},
    )
    segment = {
        "dataSource": "wiki",
        "interval": DAY,
        "version": "v1",
        "loadSpec": {"type": "local", "path": "wiki/0/index.zip"},
        "dimensions": "page",
        "metrics": "count",
        "shardSpec": {"type": "numbered", "partitionNum": 0, "partitions": 1},
        "binaryVersion": 9,
        "size": 10,
    }
    published = act(
        client,
        task_json("low"),
        {"type": "segmentTransactionalInsert", "segments": [segment]},
    )
    listed = act(
        client,
        task_json("low"),
        {"type": "segmentListUsed", "dataSource": "wiki", "intervals": [DAY]},
    )
    act(client, task_json("low"), {"type": "segmentNuke", "segments": [segment]})
    after = act(
        client,
        task_json("low"),
        {"type": "segmentListUsed", "dataSource": "wiki", "intervals": [DAY]},
    )

    assert published.json == {"result": {"segments": [segment], "success": True}}
    assert listed.json == {
        "result": [
            segment
            | {
                "identifier": "wiki_2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z_v1"
            }
        ]
    }
    assert after.json == {"result": []}


@pytest.mark.usefixtures("active_tasks")
def test_publishing_outside_the_tasks_locks_fails(client: FlaskClient) -> None:
    segment = {"dataSource": "wiki", "interval": DAY, "version": "v1"}

    response = act(
        client,
        task_json("low"),
        {"type": "segmentTransactionalInsert", "segments": [segment]},
    )

    assert response.status_code == 500
    assert response.json["error"].startswith(
        "Segments[['wiki_2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z_v1']] are not covered by locks[[]]"
    )


def test_active_locks_reports_a_shared_posse_once(
    client: FlaskClient, db: Database
) -> None:
    with db.transaction() as session:
        make_task(session, task_id="a", group_id="g")
        make_task(session, task_id="b", group_id="g")
    for task_id in ("a", "b"):
        act(
            client,
            task_json(task_id, group="g"),
            {"type": "lockTryAcquire", "interval": "2024-01-01/2024-01-02"},
        )

    locks = client.post(
        "/druid/indexer/v1/activeLocks", json=[{"datasource": "wiki"}]
    ).json

    assert len(locks["datasourceToLocks"]["wiki"]) == 1
    assert locks["datasourceToLocks"]["wiki"][0]["groupId"] == "g"


# ------------------------------------------------------- wrong JSON types: Jackson

HOLDER = 'org.apache.druid.indexing.common.actions.TaskActionHolder["action"]->'
ACTIONS = "org.apache.druid.indexing.common.actions."
SEGMENT = "java.util.HashSet[0]->org.apache.druid.timeline.DataSegment"
OBJECT = "Object value (token `JsonToken.START_OBJECT`)"
ARRAY = "Array value (token `JsonToken.START_ARRAY`)"
INTEGER = "Integer value (token `JsonToken.VALUE_NUMBER_INT`)"


def chain(*links: str) -> str:
    return f" (through reference chain: {HOLDER}{'->'.join(links)})"


def allocate_action(**changes: Any) -> dict[str, Any]:
    action: dict[str, Any] = {
        "type": "segmentAllocate",
        "dataSource": "wiki",
        "timestamp": "2024-01-01T05:00:00.000Z",
        "queryGranularity": "NONE",
        "preferredSegmentGranularity": "DAY",
        "sequenceName": "seq_0",
    }
    return action | changes


def insert_action(**changes: Any) -> dict[str, Any]:
    segment = {"dataSource": "wiki", "interval": DAY, "version": "v1"} | changes
    return {"type": "segmentTransactionalInsert", "segments": [segment]}


WRONG_TYPES = [
    pytest.param(
        {"type": "lockTryAcquire", "interval": {}},
        f"Cannot deserialize value of type `org.joda.time.Interval` from {OBJECT}"
        + chain(f'{ACTIONS}TimeChunkLockTryAcquireAction["interval"]'),
        id="tryAcquire-interval-object",
    ),
    pytest.param(
        {"type": "lockTryAcquire", "interval": DAY, "lockType": "NOPE"},
        "Cannot deserialize value of type `org.apache.druid.indexing.common."
        'TaskLockType` from String "NOPE": not one of the values accepted for Enum '
        "class: [EXCLUSIVE, SHARED, REPLACE, APPEND]"
        + chain(f'{ACTIONS}TimeChunkLockTryAcquireAction["lockType"]'),
        id="tryAcquire-lockType-unknown",
    ),
    pytest.param(
        {"type": "lockAcquire", "interval": DAY, "lockType": 5},
        "Cannot deserialize value of type `org.apache.druid.indexing.common."
        f"TaskLockType` from {INTEGER}"
        + chain(f'{ACTIONS}TimeChunkLockAcquireAction["lockType"]'),
        id="acquire-lockType-number",
    ),
    pytest.param(
        {"type": "lockAcquire", "interval": DAY, "timeoutMs": "soon"},
        'Cannot deserialize value of type `long` from String "soon": not a valid '
        "`long` value" + chain(f'{ACTIONS}TimeChunkLockAcquireAction["timeoutMs"]'),
        id="acquire-timeoutMs-text",
    ),
    pytest.param(
        {"type": "lockAcquire", "interval": DAY, "timeoutMs": 2**63},
        "Numeric value (9223372036854775808) out of range of long "
        "(-9223372036854775808 - 9223372036854775807)"
        + chain(f'{ACTIONS}TimeChunkLockAcquireAction["timeoutMs"]'),
        id="acquire-timeoutMs-beyond-long",
    ),
    pytest.param(
        {"type": "lockRelease", "interval": []},
        f"Cannot deserialize value of type `org.joda.time.Interval` from {ARRAY}"
        + chain(f'{ACTIONS}LockReleaseAction["interval"]'),
        id="release-interval-array",
    ),
    pytest.param(
        {"type": "segmentListUsed", "dataSource": {}, "intervals": [DAY]},
        f"Cannot deserialize value of type `java.lang.String` from {OBJECT}"
        + chain(f'{ACTIONS}RetrieveUsedSegmentsAction["dataSource"]'),
        id="listUsed-dataSource-object",
    ),
    pytest.param(
        {"type": "segmentListUsed", "intervals": DAY},
        "Cannot deserialize value of type `java.util.ArrayList<org.joda.time."
        "Interval>` from String value (token `JsonToken.VALUE_STRING`)"
        + chain(f'{ACTIONS}RetrieveUsedSegmentsAction["intervals"]'),
        id="listUsed-intervals-string",
    ),
    pytest.param(
        {"type": "segmentListUsed", "intervals": [DAY, 5]},
        f"Cannot deserialize value of type `org.joda.time.Interval` from {INTEGER}"
        + chain(
            f'{ACTIONS}RetrieveUsedSegmentsAction["intervals"]',
            "java.util.ArrayList[1]",
        ),
        id="listUsed-interval-element-number",
    ),
    pytest.param(
        {"type": "segmentListUnused", "interval": DAY, "limit": 2**63},
        "Numeric value (9223372036854775808) out of range of int "
        "(-2147483648 - 2147483647)"
        + chain(f'{ACTIONS}RetrieveUnusedSegmentsAction["limit"]'),
        id="listUnused-limit-beyond-int",
    ),
    pytest.param(
        {"type": "segmentListUnused", "interval": DAY, "limit": True},
        "Cannot deserialize value of type `java.lang.Integer` from Boolean value "
        "(token `JsonToken.VALUE_TRUE`)"
        + chain(f'{ACTIONS}RetrieveUnusedSegmentsAction["limit"]'),
        id="listUnused-limit-boolean",
    ),
    pytest.param(
        allocate_action(timestamp={}),
        f"Cannot deserialize value of type `org.joda.time.DateTime` from {OBJECT}"
        + chain(f'{ACTIONS}SegmentAllocateAction["timestamp"]'),
        id="allocate-timestamp-object",
    ),
    pytest.param(
        allocate_action(sequenceName=["seq"]),
        f"Cannot deserialize value of type `java.lang.String` from {ARRAY}"
        + chain(f'{ACTIONS}SegmentAllocateAction["sequenceName"]'),
        id="allocate-sequenceName-array",
    ),
    pytest.param(
        allocate_action(skipSegmentLineageCheck="yes"),
        'Cannot deserialize value of type `boolean` from String "yes": only "true" '
        'or "false" recognized'
        + chain(f'{ACTIONS}SegmentAllocateAction["skipSegmentLineageCheck"]'),
        id="allocate-skipLineage-text",
    ),
    pytest.param(
        allocate_action(taskLockType={}),
        "Cannot deserialize value of type `org.apache.druid.indexing.common."
        f"TaskLockType` from {OBJECT}"
        + chain(f'{ACTIONS}SegmentAllocateAction["taskLockType"]'),
        id="allocate-taskLockType-object",
    ),
    pytest.param(
        allocate_action(lockGranularity="CHUNK"),
        "Cannot deserialize value of type `org.apache.druid.indexing.common."
        'LockGranularity` from String "CHUNK": not one of the values accepted for '
        "Enum class: [TIME_CHUNK, SEGMENT]"
        + chain(f'{ACTIONS}SegmentAllocateAction["lockGranularity"]'),
        id="allocate-lockGranularity-unknown",
    ),
    pytest.param(
        allocate_action(shardSpecFactory="numbered"),
        "Unexpected token (VALUE_STRING), expected START_OBJECT: need JSON Object "
        "to contain As.PROPERTY type information (for class org.apache.druid."
        "timeline.partition.PartialShardSpec)"
        + chain(f'{ACTIONS}SegmentAllocateAction["shardSpecFactory"]'),
        id="allocate-shardSpecFactory-string",
    ),
    pytest.param(
        allocate_action(sequenceName=None),
        "Cannot construct instance of `org.apache.druid.indexing.common.actions."
        "SegmentAllocateAction`, problem: sequenceName"
        f" (through reference chain: {HOLDER[:-2]})",
        id="allocate-sequenceName-missing",
    ),
    pytest.param(
        {"type": "segmentTransactionalInsert", "segments": {}},
        "Cannot deserialize value of type `java.util.Set<org.apache.druid.timeline."
        f"DataSegment>` from {OBJECT}"
        + chain(f'{ACTIONS}SegmentTransactionalInsertAction["segments"]'),
        id="insert-segments-object",
    ),
    pytest.param(
        insert_action(version={}),
        f"Cannot deserialize value of type `java.lang.String` from {OBJECT}"
        + chain(
            f'{ACTIONS}SegmentTransactionalInsertAction["segments"]',
            f'{SEGMENT}["version"]',
        ),
        id="insert-version-object",
    ),
    pytest.param(
        insert_action(size="big"),
        'Cannot deserialize value of type `long` from String "big": not a valid '
        "`long` value"
        + chain(
            f'{ACTIONS}SegmentTransactionalInsertAction["segments"]',
            f'{SEGMENT}["size"]',
        ),
        id="insert-size-text",
    ),
    pytest.param(
        insert_action(loadSpec="wiki/index.zip"),
        "Cannot deserialize value of type `java.util.LinkedHashMap<java.lang.String,"
        "java.lang.Object>` from String value (token `JsonToken.VALUE_STRING`)"
        + chain(
            f'{ACTIONS}SegmentTransactionalInsertAction["segments"]',
            f'{SEGMENT}["loadSpec"]',
        ),
        id="insert-loadSpec-string",
    ),
    pytest.param(
        insert_action(shardSpec={"type": "numbered", "partitionNum": 1.5}),
        "Cannot deserialize value of type `int` from Floating-point value (token "
        "`JsonToken.VALUE_NUMBER_FLOAT`)"
        + chain(
            f'{ACTIONS}SegmentTransactionalInsertAction["segments"]',
            f'{SEGMENT}["shardSpec"]',
            'org.apache.druid.timeline.partition.NumberedShardSpec["partitionNum"]',
        ),
        id="insert-partitionNum-float",
    ),
    pytest.param(
        insert_action(shardSpec={"type": "numbered", "partitionNum": -1}),
        "Cannot construct instance of `org.apache.druid.timeline.partition."
        "NumberedShardSpec`, problem: partitionNum >= 0"
        + chain(
            f'{ACTIONS}SegmentTransactionalInsertAction["segments"]',
            f'{SEGMENT}["shardSpec"]',
        ),
        id="insert-partitionNum-negative",
    ),
    pytest.param(
        insert_action(shardSpec={"type": "nope"}),
        "Please make sure to load all the necessary extensions and jars with type "
        "'nope'. Could not resolve type id 'nope' as a subtype of `org.apache.druid."
        "timeline.partition.ShardSpec` known type ids = [bucket_hash, bucket_range, "
        "bucket_single_dim, building_hashed, building_numbered, building_range, "
        "building_single_dim, hashed, linear, none, numbered, numbered_overwrite, "
        "range, single, tombstone]"
        + chain(
            f'{ACTIONS}SegmentTransactionalInsertAction["segments"]',
            f'{SEGMENT}["shardSpec"]',
        ),
        id="insert-shardSpec-unknown",
    ),
    pytest.param(
        {"type": "segmentNuke", "segments": ["wiki_x"]},
        "Cannot deserialize value of type `org.apache.druid.timeline.DataSegment` "
        "from String value (token `JsonToken.VALUE_STRING`)"
        + chain(f'{ACTIONS}SegmentNukeAction["segments"]', "java.util.HashSet[0]"),
        id="nuke-segment-string",
    ),
]


@pytest.mark.usefixtures("active_tasks")
@pytest.mark.parametrize(("action", "message"), WRONG_TYPES)
def test_wrong_json_types_in_an_action_are_400_with_jacksons_text(
    client: FlaskClient, db: Database, action: dict[str, Any], message: str
) -> None:
    response = act(client, task_json("low"), action)

    assert (response.status_code, response.json) == (400, {"error": message})
    with db.transaction() as session:
        assert session.scalars(select(TaskLock)).all() == []
        assert session.scalars(select(PendingSegment)).all() == []


@pytest.mark.usefixtures("active_tasks")
@pytest.mark.parametrize(
    ("action", "message"),
    [
        pytest.param(
            allocate_action(sequenceName="seq\x00"),
            "Invalid value: contains NUL"
            + chain(f'{ACTIONS}SegmentAllocateAction["sequenceName"]'),
            id="allocate-sequenceName",
        ),
        pytest.param(
            {"type": "segmentListUsed", "dataSource": "wiki\x00", "intervals": [DAY]},
            "Invalid value: contains NUL"
            + chain(f'{ACTIONS}RetrieveUsedSegmentsAction["dataSource"]'),
            id="listUsed-dataSource",
        ),
        pytest.param(
            insert_action(version="v\x00"),
            "Invalid value: contains NUL"
            + chain(
                f'{ACTIONS}SegmentTransactionalInsertAction["segments"]',
                f'{SEGMENT}["version"]',
            ),
            id="insert-version",
        ),
    ],
)
def test_nul_in_a_stored_or_queried_text_is_400(
    client: FlaskClient, db: Database, action: dict[str, Any], message: str
) -> None:
    # PostgreSQL refuses NUL in text even as a query parameter: these were 500s.
    act(client, task_json("low"), {"type": "lockTryAcquire", "interval": DAY})

    response = act(client, task_json("low"), action)

    assert (response.status_code, response.json) == (400, {"error": message})
    with db.transaction() as session:
        assert session.scalars(select(PendingSegment)).all() == []
