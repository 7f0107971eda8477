"""``/console`` as served (one self-contained page) and its pending-segment list."""

from __future__ import annotations

from flask.testing import FlaskClient

from overlord.db import Database
from tests.api.test_druid_actions import allocate
from tests.factories import make_task


def test_console_page_is_self_contained_html(client: FlaskClient) -> None:
    response = client.get("/console")

    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; "
        "style-src 'self' 'unsafe-inline'"
    )
    page = response.get_data(as_text=True)
    assert page.startswith("<!doctype html>")
    # Offline machines: nothing is loaded from another origin.
    assert "http://" not in page
    assert "https://" not in page
    assert "/druid/indexer/v1" in page


def test_pending_segment_list_newest_first(client: FlaskClient, db: Database) -> None:
    with db.transaction() as session:
        make_task(session, task_id="low")
    assert client.get("/console/api/pendingSegments/wiki").json == []
    first = allocate(client, None).json["result"]
    version = first["version"]
    first_id = f"wiki_2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z_{version}"
    allocate(client, first_id)

    listed = client.get("/console/api/pendingSegments/wiki").json

    assert [row["id"] for row in listed] in (
        [f"{first_id}_1", first_id],
        [first_id, f"{first_id}_1"],  # same millisecond: ties by id
    )
    by_id = {row["id"]: row for row in listed}
    assert {
        key: value for key, value in by_id[first_id].items() if key != "createdDate"
    } == {
        "id": first_id,
        "interval": "2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z",
        "version": version,
        "partitionNum": 0,
        "sequenceName": "seq_0",
        "taskAllocatorId": "low",
    }
    assert by_id[f"{first_id}_1"]["partitionNum"] == 1
    assert by_id[first_id]["createdDate"].endswith("Z")
    assert client.get("/console/api/pendingSegments/other").json == []
