"""Druid's Coordinator metadata paths over published segments, and a newer version's
publish marking the segments it overshadows unused."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from overlord.db import Database
from tests.api.test_druid_actions import DAY, act, task_json
from tests.factories import make_task

COORDINATOR = "/druid/coordinator/v1/metadata"
DAY_IDS = "2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z"


def _segment(version: str, partition: int = 0) -> dict[str, Any]:
    return {
        "dataSource": "wiki",
        "interval": DAY,
        "version": version,
        "loadSpec": {
            "type": "local",
            "path": f"wiki/{version}/{partition}/index.parquet",
        },
        "dimensions": "page",
        "metrics": "count",
        "shardSpec": {"type": "numbered", "partitionNum": partition, "partitions": 0},
        "binaryVersion": 9,
        "size": 10,
    }


def _identified(segment: dict[str, Any]) -> dict[str, Any]:
    partition = segment["shardSpec"]["partitionNum"]
    identifier = f"wiki_{DAY_IDS}_{segment['version']}"
    return {
        **segment,
        "identifier": identifier if partition == 0 else f"{identifier}_{partition}",
    }


def _publish(client: FlaskClient, *segments: dict[str, Any]) -> None:
    response = act(
        client,
        task_json("t"),
        {"type": "segmentTransactionalInsert", "segments": list(segments)},
    )
    assert response.status_code == 200, response.get_data(as_text=True)


def test_no_used_segment_is_404_with_an_empty_body(client: FlaskClient) -> None:
    response = client.get(f"{COORDINATOR}/datasources/wiki/segments?full")

    assert (response.status_code, response.get_data()) == (404, b"")
    assert client.get(f"{COORDINATOR}/datasources").json == []


def test_used_segments_full_and_ids_and_newer_version_overshadows(
    client: FlaskClient, db: Database
) -> None:
    with db.transaction() as session:
        make_task(session, task_id="t")
    assert (
        act(
            client, task_json("t"), {"type": "lockTryAcquire", "interval": DAY}
        ).status_code
        == 200
    )
    _publish(client, _segment("v1"), _segment("v1", 1))

    full = client.get(f"{COORDINATOR}/datasources/wiki/segments?full")
    ids = client.get(f"{COORDINATOR}/datasources/wiki/segments")
    assert (full.status_code, full.json) == (
        200,
        [_identified(_segment("v1")), _identified(_segment("v1", 1))],
    )
    assert ids.json == [f"wiki_{DAY_IDS}_v1", f"wiki_{DAY_IDS}_v1_1"]
    assert client.get(f"{COORDINATOR}/datasources").json == ["wiki"]

    _publish(client, _segment("v2"))

    assert client.get(f"{COORDINATOR}/datasources/wiki/segments?full").json == [
        _identified(_segment("v2"))
    ]
    unused = act(
        client,
        task_json("t"),
        {"type": "segmentListUnused", "dataSource": "wiki", "interval": DAY},
    )
    assert unused.json == {
        "result": [_identified(_segment("v1")), _identified(_segment("v1", 1))]
    }
