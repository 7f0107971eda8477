"""segmentTransactionalInsert is idempotent under retries and concurrency."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from overlord.db import Database
from overlord.store.models import Segment
from tests.api.test_druid_actions import DAY, act, task_json
from tests.factories import make_task

SEGMENT_ID = "wiki_2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z_v1"


def segment(partition: int = 0) -> dict[str, Any]:
    return {
        "dataSource": "wiki",
        "interval": DAY,
        "version": "v1",
        "loadSpec": {"type": "local", "path": f"wiki/{partition}/index.zip"},
        "dimensions": "page",
        "metrics": "count",
        "shardSpec": {"type": "numbered", "partitionNum": partition, "partitions": 0},
        "binaryVersion": 9,
        "size": 10,
    }


@pytest.fixture
def locked_task(db: Database, client: FlaskClient) -> None:
    with db.transaction() as session:
        make_task(session, task_id="low")
    granted = act(client, task_json("low"), {"type": "lockTryAcquire", "interval": DAY})
    assert granted.status_code == 200


def segment_ids(db: Database) -> list[tuple[str, int]]:
    with db.transaction() as session:
        return [
            (row[0], row[1])
            for row in session.execute(
                select(Segment.id, func.count())
                .group_by(Segment.id)
                .order_by(Segment.id)
            )
        ]


@pytest.mark.usefixtures("locked_task")
def test_publish_retried_answers_success_with_no_new_segments(
    client: FlaskClient, db: Database
) -> None:
    action = {"type": "segmentTransactionalInsert", "segments": [segment()]}

    first = act(client, task_json("low"), action)
    retried = act(client, task_json("low"), action)

    assert (first.status_code, first.json) == (
        200,
        {"result": {"segments": [segment()], "success": True}},
    )
    assert (retried.status_code, retried.json) == (
        200,
        {"result": {"segments": [], "success": True}},
    )
    assert segment_ids(db) == [(SEGMENT_ID, 1)]


@pytest.mark.usefixtures("locked_task")
def test_publish_of_a_set_partly_published_inserts_only_the_new_ones(
    client: FlaskClient, db: Database
) -> None:
    act(
        client,
        task_json("low"),
        {"type": "segmentTransactionalInsert", "segments": [segment(0)]},
    )

    response = act(
        client,
        task_json("low"),
        {"type": "segmentTransactionalInsert", "segments": [segment(0), segment(1)]},
    )

    assert (response.status_code, response.json) == (
        200,
        {"result": {"segments": [segment(1)], "success": True}},
    )
    assert segment_ids(db) == [(SEGMENT_ID, 1), (f"{SEGMENT_ID}_1", 1)]


@pytest.mark.usefixtures("locked_task")
def test_concurrent_publishes_of_the_same_segments_store_one_row_each(
    app: Flask, db: Database
) -> None:
    segments = [segment(partition) for partition in range(4)]
    action = {"type": "segmentTransactionalInsert", "segments": segments}
    start = threading.Barrier(2)
    answers: list[tuple[int, Any]] = []

    def publish() -> None:
        client = app.test_client()
        start.wait(timeout=10)
        response = act(client, task_json("low"), action)
        answers.append((response.status_code, response.json))

    threads = [threading.Thread(target=publish) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # One publish inserted every segment, the other found them all present (or the
    # two split them): every answer is a success and together they inserted each
    # segment exactly once.
    assert sorted(status for status, _ in answers) == [200, 200]
    assert all(body["result"]["success"] is True for _, body in answers)
    inserted = [s for _, body in answers for s in body["result"]["segments"]]
    assert sorted(inserted, key=lambda s: s["shardSpec"]["partitionNum"]) == segments
    assert segment_ids(db) == sorted(
        [(SEGMENT_ID, 1)] + [(f"{SEGMENT_ID}_{n}", 1) for n in range(1, 4)]
    )
