"""``single_phase_sub_task`` is a typed task type (an ``index_parallel`` supervisor
submits it; a user may post one too, Druid's Jackson binds it like any task), and
shutting a supervisor down ends its sub-tasks in the same request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from overlord.db import Database
from overlord.states import RunnerState
from overlord.store.models import Task
from tests.factories import make_task

BASE = "/druid/indexer/v1"
SUB_TASK = "org.apache.druid.indexing.common.task.batch.parallel.SinglePhaseSubTask"
SPEC: dict[str, Any] = {
    "dataSchema": {
        "dataSource": "wikipedia",
        "timestampSpec": {"column": "time", "format": "iso"},
        "dimensionsSpec": {"dimensions": ["channel"]},
        "granularitySpec": {"segmentGranularity": "day"},
    },
    "ioConfig": {
        "type": "index_parallel",
        "inputSource": {"type": "local", "files": ["/data/a.json"]},
        "inputFormat": {"type": "json"},
        "appendToExisting": False,
    },
    "tuningConfig": {"type": "index_parallel", "maxNumConcurrentSubTasks": 2},
}


def test_posted_sub_task_is_stored_with_druid_fields_in_jackson_order(
    client: FlaskClient,
) -> None:
    posted = {
        "type": "single_phase_sub_task",
        "id": "sub_1",
        "groupId": "index_parallel_wikipedia_x",
        "supervisorTaskId": "index_parallel_wikipedia_x",
        "subtaskSpecId": "index_parallel_wikipedia_x_0",
        "numAttempts": 0,
        "spec": SPEC,
    }
    response = client.post(f"{BASE}/task", json=posted)
    assert (response.status_code, response.json) == (200, {"task": "sub_1"})

    payload = client.get(f"{BASE}/task/sub_1").json["payload"]  # type: ignore[index]

    assert list(payload) == [
        "type",
        "id",
        "groupId",
        "resource",
        "supervisorTaskId",
        "subtaskSpecId",
        "numAttempts",
        "spec",
        "context",
    ]
    assert payload == {
        **posted,
        "resource": {"availabilityGroup": "sub_1", "requiredCapacity": 1},
        "context": {
            "forceTimeChunkLock": True,
            "useLineageBasedSegmentAllocation": True,
        },
    }
    [listed] = client.get(f"{BASE}/tasks?type=single_phase_sub_task").json  # type: ignore[misc]
    assert (listed["id"], listed["type"], listed["groupId"]) == (
        "sub_1",
        "single_phase_sub_task",
        "index_parallel_wikipedia_x",
    )


def test_generated_id_has_druids_sub_task_format(client: FlaskClient) -> None:
    response = client.post(
        f"{BASE}/task",
        json={"type": "single_phase_sub_task", "supervisorTaskId": "s", "spec": SPEC},
    )
    assert response.status_code == 200
    prefix, letters, when = response.json["task"].rsplit("_", 2)  # type: ignore[index]
    assert prefix == "single_phase_sub_task_wikipedia"
    assert len(letters) == 8
    assert set(letters) <= set("abcdefghijklmnop")
    assert when.endswith("Z")


def _chain(field: str) -> str:
    return f' (through reference chain: {SUB_TASK}["{field}"])'


REFUSALS = [
    pytest.param(
        {"numAttempts": "x", "spec": SPEC},
        'Cannot deserialize value of type `int` from String "x": not a valid `int` '
        "value" + _chain("numAttempts"),
        id="num-attempts-text",
    ),
    pytest.param(
        {"numAttempts": 2**31, "spec": SPEC},
        "Numeric value (2147483648) out of range of int (-2147483648 - 2147483647)"
        + _chain("numAttempts"),
        id="num-attempts-range",
    ),
    pytest.param(
        {"supervisorTaskId": {}, "spec": SPEC},
        "Cannot deserialize value of type `java.lang.String` from Object value "
        "(token `JsonToken.START_OBJECT`)" + _chain("supervisorTaskId"),
        id="supervisor-object",
    ),
    pytest.param(
        {"supervisorTaskId": "s"},
        f"Cannot construct instance of `{SUB_TASK}`, problem: "
        "java.lang.NullPointerException",
        id="no-spec",
    ),
]


@pytest.mark.parametrize(("fields", "message"), REFUSALS)
def test_sub_task_spec_refused_as_druid_refuses_it(
    client: FlaskClient, db: Database, fields: dict[str, Any], message: str
) -> None:
    document = {"type": "single_phase_sub_task", **fields}

    response = client.post(
        f"{BASE}/task", data=json.dumps(document), content_type="application/json"
    )

    assert (response.status_code, response.json) == (400, {"error": message})
    assert db.run(lambda s: s.scalar(select(func.count()).select_from(Task))) == 0


def _statuses(client: FlaskClient, *task_ids: str) -> list[tuple[str, Any]]:
    found = []
    for task_id in task_ids:
        status = client.get(f"{BASE}/task/{task_id}/status").json["status"]  # type: ignore[index]
        found.append((status["status"], status["errorMsg"]))
    return found


def _family(db: Database) -> None:
    """A supervisor, its WAITING and PENDING sub-tasks, a grandchild, a stranger."""
    with db.transaction(write=True) as session:
        make_task(session, task_id="sup", type="index_parallel", datasource="wikipedia")
        make_task(
            session,
            task_id="sub_a",
            type="single_phase_sub_task",
            group_id="sup",
            parent_task_id="sup",
            datasource="wikipedia",
        )
        make_task(
            session,
            task_id="sub_b",
            type="single_phase_sub_task",
            group_id="sup",
            parent_task_id="sup",
            datasource="wikipedia",
            runner_status=RunnerState.PENDING,
        )
        make_task(session, task_id="grand", parent_task_id="sub_a")
        make_task(session, task_id="other", datasource="wikipedia")


def test_shutting_a_supervisor_down_ends_its_sub_tasks_at_once(
    client: FlaskClient, db: Database
) -> None:
    _family(db)

    assert client.post(f"{BASE}/task/sup/shutdown").json == {"task": "sup"}

    stopped = ("FAILED", "Shutdown request from user")
    assert _statuses(client, "sup", "sub_a", "sub_b", "grand", "other") == [
        stopped,
        stopped,
        stopped,
        stopped,
        ("RUNNING", None),
    ]


def test_shutdown_all_tasks_of_a_datasource_ends_sub_tasks_of_other_datasources_too(
    client: FlaskClient, db: Database
) -> None:
    _family(db)

    response = client.post(f"{BASE}/datasources/wikipedia/shutdownAllTasks")

    assert response.json == {"dataSource": "wikipedia"}
    stopped = ("FAILED", "Shutdown request from user")
    # "grand" belongs to datasource wiki: it ends as its supervisor's descendant.
    assert _statuses(client, "sup", "sub_a", "sub_b", "grand", "other") == [stopped] * 5
