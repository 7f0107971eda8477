"""The OpenSearch _tasks façade through the Flask test client, on every backend:
whole bodies, OpenSearch's exact errors, jsonschema validation against the saved
OpenSearch API specification, waits and cancels."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event

from overlord.db import Database
from overlord.states import RunnerState, TaskState
from overlord.store.models import Task
from overlord.timeutil import utcnow
from tests.factories import make_complete_task, make_task, make_tasks
from tests.opensearch_spec import assert_valid
from tests.statements import record_statements

CREATED = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
CREATED_MS = 1767323045678
LIST_BASE = 1 << 62
DRUID_BASE = "/druid/indexer/v1"


class AtLeast:
    """Equal to any int ≥ ``low`` (running times, the list task's id)."""

    def __init__(self, low: int) -> None:
        self.low = low

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, int) and not isinstance(other, bool) and other >= self.low
        )

    def __repr__(self) -> str:
        return f"AtLeast({self.low})"


@pytest.fixture
def node_id(client: FlaskClient) -> str:
    return str(next(iter(client.get("/_nodes").json["nodes"])))


def add_task(db: Database, **overrides: Any) -> Task:
    values: dict[str, Any] = {"created_at": CREATED, "datasource": "wiki"}
    values.update(overrides)
    with db.transaction() as session:
        return make_task(session, **values)


def druid_status(task_id: str, **overrides: Any) -> dict[str, Any]:
    status: dict[str, Any] = {
        "id": task_id,
        "groupId": task_id,
        "type": "noop",
        "createdTime": "2026-01-02T03:04:05.678Z",
        "queueInsertionTime": "1970-01-01T00:00:00.000Z",
        "statusCode": "RUNNING",
        "status": "RUNNING",
        "runnerStatusCode": "WAITING",
        "duration": -1,
        "location": {"host": None, "port": -1, "tlsPort": -1},
        "dataSource": "wiki",
        "errorMsg": None,
    }
    status.update(overrides)
    if "statusCode" in overrides:
        status["status"] = overrides["statusCode"]
    return status


ZERO = {"cpu_time_in_nanos": 0, "memory_in_bytes": 0}
RESOURCE_STATS = {
    "average": ZERO,
    "total": ZERO,
    "min": ZERO,
    "max": ZERO,
    "thread_info": {"thread_executions": 0, "active_threads": 0},
}


def info(
    node: str,
    task: Task,
    *,
    detailed: bool = False,
    stats: bool = True,
    headers: dict[str, str] | None = None,
    parent: int | None = None,
    status: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The TaskInfo OpenSearch prints for a Druid task, in its field order."""
    body: dict[str, Any] = {
        "node": node,
        "id": task.id,
        "type": "transport",
        "action": f"indices:data/write/druid/{task.type}",
    }
    if detailed:
        body["status"] = status or druid_status(task.task_id)
        body["description"] = (
            f"task[{task.task_id}], type[{task.type}], dataSource[{task.datasource}]"
        )
    body["start_time_in_millis"] = CREATED_MS
    body["running_time_in_nanos"] = AtLeast(0)
    body["cancellable"] = True
    body["cancelled"] = False
    if parent is not None:
        body["parent_task_id"] = f"{node}:{parent}"
    body["headers"] = headers or {}
    if detailed and stats:
        body["resource_stats"] = RESOURCE_STATS
    body.update(extra)
    return body


def list_task(
    node: str, *, detailed: bool = False, opaque: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "node": node,
        "id": AtLeast(LIST_BASE),
        "type": "transport",
        "action": "cluster:monitor/tasks/lists",
    }
    if detailed:
        body["description"] = ""
    body.update(
        start_time_in_millis=AtLeast(CREATED_MS),
        running_time_in_nanos=AtLeast(0),
        cancellable=False,
        cancelled=False,
        headers={"X-Opaque-Id": opaque} if opaque else {},
    )
    if detailed:
        body["resource_stats"] = RESOURCE_STATS
    return body


def node_summary(node: str) -> dict[str, Any]:
    return {
        "name": "overlord",
        "transport_address": "127.0.0.1:8090",
        "host": "127.0.0.1",
        "ip": "127.0.0.1:8090",
        "roles": ["cluster_manager", "data", "ingest"],
    }


def error(kind: str, reason: str, status: int, **more: Any) -> dict[str, Any]:
    root = {"type": kind, "reason": reason}
    return {"error": {"root_cause": [root], **root, **more}, "status": status}


def list_task_key(body: dict[str, Any], node: str) -> str:
    keys = [
        k for k in body["nodes"][node]["tasks"] if int(k.split(":")[1]) >= LIST_BASE
    ]
    assert len(keys) == 1
    return keys[0]


# ------------------------------------------------------------------------- listing


def test_list_groups_active_druid_tasks_and_itself_by_node(
    client: FlaskClient, db: Database, node_id: str
) -> None:
    parent = add_task(db, task_id="index_parallel_wiki", type="index_parallel")
    child = add_task(
        db,
        task_id="sub_1",
        type="single_phase_sub_task",
        parent_task_id="index_parallel_wiki",
        request_headers='{"X-Opaque-Id":"airflow"}',
    )
    add_task(db, task_id="done", active=False, status=TaskState.SUCCESS)

    response = client.get("/_tasks", headers={"X-Opaque-Id": "me"})

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert response.headers["X-Opaque-Id"] == "me"
    body = response.json
    own = list_task_key(body, node_id)
    assert body == {
        "nodes": {
            node_id: node_summary(node_id)
            | {
                "tasks": {
                    f"{node_id}:{parent.id}": info(node_id, parent),
                    f"{node_id}:{child.id}": info(
                        node_id,
                        child,
                        parent=parent.id,
                        headers={"X-Opaque-Id": "airflow"},
                    ),
                    own: list_task(node_id, opaque="me"),
                }
            }
        }
    }
    assert list(body["nodes"][node_id]["tasks"][own]) == list(
        list_task(node_id, opaque="me")
    )
    assert_valid(body, "tasks", "tasks.list@200")


def test_list_detailed_adds_status_description_and_resource_stats(
    client: FlaskClient, db: Database, node_id: str
) -> None:
    task = add_task(
        db,
        task_id="running",
        runner_status=RunnerState.RUNNING,
        queue_inserted_at=CREATED,
        location_host="h",
        location_port=8100,
        location_tls_port=-1,
    )

    body = client.get("/_tasks?detailed&group_by=none").json

    status = druid_status(
        "running",
        runnerStatusCode="RUNNING",
        queueInsertionTime="2026-01-02T03:04:05.678Z",
        location={"host": "h", "port": 8100, "tlsPort": -1},
    )
    assert body == {
        "tasks": [
            info(node_id, task, detailed=True, status=status),
            list_task(node_id, detailed=True),
        ]
    }
    assert list(body["tasks"][0]) == list(info(node_id, task, detailed=True))
    assert_valid(body, "tasks", "tasks.list@200")


def test_list_group_by_parents_nests_children_and_orphans_go_on_top(
    client: FlaskClient, db: Database, node_id: str
) -> None:
    parent = add_task(db, task_id="p", type="index_parallel")
    child = add_task(db, task_id="c", parent_task_id="p")
    grandchild = add_task(db, task_id="g", parent_task_id="c")
    orphan = add_task(db, task_id="o", parent_task_id="gone")

    body = client.get("/_tasks?group_by=parents&actions=indices:*").json

    assert body == {
        "tasks": {
            f"{node_id}:{parent.id}": info(node_id, parent)
            | {
                "children": [
                    info(node_id, child, parent=parent.id)
                    | {"children": [info(node_id, grandchild, parent=child.id)]}
                ]
            },
            f"{node_id}:{orphan.id}": info(node_id, orphan),
        }
    }
    assert_valid(body, "tasks", "tasks.list@200")
    # Filtering the parent out puts its child on top.
    only_children = client.get(
        f"/_tasks?group_by=parents&parent_task_id={node_id}:{parent.id}"
    ).json
    assert only_children == {
        "tasks": {f"{node_id}:{child.id}": info(node_id, child, parent=parent.id)}
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("actions=indices:data/write/*", ["a", "b"], id="prefix"),
        pytest.param("actions=*kill", ["b"], id="suffix"),
        pytest.param("actions=indices:data/write/druid/noop", ["a"], id="exact"),
        pytest.param("actions=INDICES:*", [], id="case-sensitive"),
        pytest.param("actions=*/noop,*kill", ["a", "b"], id="any-pattern"),
        pytest.param("actions=cluster:monitor/tasks/lists", ["list"], id="list-task"),
        pytest.param("nodes=_local", ["a", "b", "list"], id="local"),
        pytest.param("nodes=_all,data:false", [], id="role-removes"),
        pytest.param("nodes=nosuch", [], id="unknown-node-ignored"),
        pytest.param("nodes=127.0.0.*", ["a", "b", "list"], id="ip-wildcard"),
        pytest.param("nodes=over*", ["a", "b", "list"], id="name-wildcard"),
        pytest.param("parent_task_id=other:1", [], id="foreign-parent"),
        pytest.param("parent_task_id=unset", ["a", "b", "list"], id="unset-parent"),
    ],
)
def test_list_filters_select_tasks(
    client: FlaskClient, db: Database, node_id: str, query: str, expected: list[str]
) -> None:
    add_task(db, task_id="a")
    add_task(db, task_id="b", type="kill")

    body = client.get(f"/_tasks?group_by=none&detailed&{query}").json

    found = [t["status"]["id"] if "status" in t else "list" for t in body["tasks"]]
    assert found == expected


def test_list_node_filter_by_own_id_and_no_tasks_is_empty_nodes(
    client: FlaskClient, node_id: str
) -> None:
    body = client.get(f"/_tasks?nodes={node_id}&actions=nothing").json
    assert body == {"nodes": {}}
    assert_valid(body, "tasks", "tasks.list@200")
    assert client.get("/_tasks?group_by=none&actions=x").json == {"tasks": []}
    assert client.get("/_tasks?group_by=parents&actions=x").json == {"tasks": {}}


def test_list_human_adds_start_time_and_running_time_in_order(
    client: FlaskClient, db: Database, node_id: str
) -> None:
    add_task(db, task_id="h")
    body = client.get("/_tasks?human&group_by=none&actions=indices:*").json
    (task,) = body["tasks"]
    assert list(task) == [
        "node",
        "id",
        "type",
        "action",
        "start_time",
        "start_time_in_millis",
        "running_time",
        "running_time_in_nanos",
        "cancellable",
        "cancelled",
        "headers",
    ]
    assert task["start_time"] == "2026-01-02T03:04:05.678Z"
    assert task["running_time"].endswith(("d", "h", "m"))
    assert_valid(body, "tasks", "tasks.list@200")


def test_list_pretty_and_filter_path_shape_the_output(
    client: FlaskClient, db: Database, node_id: str
) -> None:
    task = add_task(db, task_id="p")
    text = client.get(
        "/_tasks?pretty&group_by=none&actions=indices:*&filter_path=tasks.id,tasks.headers"
    ).get_data(as_text=True)
    assert text == (
        '{\n  "tasks" : [\n    {\n      "id" : ' + str(task.id) + ",\n"
        '      "headers" : { }\n    }\n  ]\n}\n'
    )
    body = client.get("/_tasks?filter_path=nodes.*.tasks.*.id,-**.ip").json
    assert body["nodes"][node_id]["tasks"][f"{node_id}:{task.id}"] == {"id": task.id}
    assert client.get("/_tasks?filter_path=nothing").json == {}
    excluded = client.get(f"/_tasks?filter_path=-nodes.*.tasks&nodes={node_id}").json
    assert excluded == {"nodes": {node_id: node_summary(node_id)}}


def test_list_of_many_tasks_runs_a_fixed_number_of_queries(
    client: FlaskClient, db: Database, node_id: str
) -> None:
    with db.transaction() as session:
        make_tasks(
            session,
            [
                {"task_id": f"t{i}", "created_at": CREATED, "parent_task_id": "t0"}
                for i in range(300)
            ],
        )
    with record_statements(db.engine) as statements:
        body = client.get("/_tasks?detailed&group_by=parents").json
    assert len(body["tasks"]) == 2  # t0 with 299 children, and the list task
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 2, selects


def test_list_task_ids_are_unique_and_above_stored_ids(
    client: FlaskClient, node_id: str
) -> None:
    ids = set()
    for _ in range(20):
        body = client.get("/_tasks?group_by=none").json
        ids.add(body["tasks"][0]["id"])
    assert len(ids) == 20
    assert all(LIST_BASE <= i < 2**63 for i in ids)
    # A list task is never running afterwards: GET and cancel find nothing.
    some = min(ids)
    assert client.get(f"/_tasks/{node_id}:{some}").status_code == 404


# ----------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        pytest.param(
            "/_tasks?master_timeout=30s",
            "request [/_tasks] contains unrecognized parameter: [master_timeout]",
            id="master_timeout",
        ),
        pytest.param(
            "/_tasks?cluster_manager_timeout=30s",
            "request [/_tasks] contains unrecognized parameter: [cluster_manager_timeout]",
            id="cm_timeout",
        ),
        pytest.param(
            "/_tasks?group=parents",
            "request [/_tasks] contains unrecognized parameter: [group] -> did you mean [group_by]?",
            id="group",
        ),
        pytest.param(
            "/_tasks?detail=true",
            "request [/_tasks] contains unrecognized parameter: [detail] -> did you mean [detailed]?",
            id="detail",
        ),
        pytest.param(
            "/_tasks?node=x",
            "request [/_tasks] contains unrecognized parameter: [node] -> did you mean [nodes]?",
            id="node",
        ),
        pytest.param(
            "/_tasks?action=x&zzz=1",
            "request [/_tasks] contains unrecognized parameters: [action] -> did you mean [actions]?, [zzz]",
            id="two",
        ),
        pytest.param(
            "/_tasks/N:1?detailed=true",
            "request [/_tasks/N:1] contains unrecognized parameter: [detailed]",
            id="get-detailed",
        ),
        pytest.param(
            "/_tasks?detailed=1",
            "Failed to parse value [1] as only [true] or [false] are allowed.",
            id="bool",
        ),
        pytest.param(
            "/_tasks?wait_for_completion=yes",
            "Failed to parse value [yes] as only [true] or [false] are allowed.",
            id="bool-wait",
        ),
        pytest.param(
            "/_tasks?timeout=30",
            "failed to parse setting [timeout] with value [30] as a time value: unit is missing or unrecognized",
            id="bare-number",
        ),
        pytest.param(
            "/_tasks?timeout=1M",
            "failed to parse setting [timeout] with value [1M] as a time value: unit is missing or unrecognized",
            id="months",
        ),
        pytest.param(
            "/_tasks?timeout=-5s",
            "failed to parse setting [timeout] with value [-5s] as a time value: negative durations are not supported",
            id="negative",
        ),
        pytest.param(
            "/_tasks?group_by=x",
            "[group_by] must be one of [nodes], [parents] or [none] but was [x]",
            id="group_by",
        ),
        pytest.param(
            "/_tasks?parent_task_id=-1", "malformed task id -1", id="parent-minus-one"
        ),
        pytest.param("/_tasks/abc", "malformed task id abc", id="no-colon"),
        pytest.param(
            "/_tasks?detailed=1&foo=1",
            "Failed to parse value [1] as only [true] or [false] are allowed.",
            id="value-before-unknown",
        ),
        pytest.param(
            "/_tasks?group_by=x&foo=1",
            "request [/_tasks] contains unrecognized parameter: [foo]",
            id="unknown-before-group_by",
        ),
        pytest.param(
            "/_cat/tasks?group_by=parents",
            "request [/_cat/tasks] contains unrecognized parameter: [group_by]",
            id="cat-group_by",
        ),
        pytest.param(
            "/_cat/tasks?help&nodes=x",
            "request [/_cat/tasks] contains unrecognized parameter: [nodes]",
            id="cat-help-nodes",
        ),
        pytest.param(
            "/?foo=1", "request [/] contains unrecognized parameter: [foo]", id="info"
        ),
    ],
)
def test_bad_parameters_give_opensearch_400(
    client: FlaskClient, url: str, reason: str
) -> None:
    response = client.get(url, headers={"X-Opaque-Id": "bad"})
    assert response.status_code == 400
    assert response.json == error("illegal_argument_exception", reason, 400)
    assert response.headers["X-Opaque-Id"] == "bad"


@pytest.mark.parametrize(
    ("url", "reason", "cause"),
    [
        pytest.param(
            "/_tasks/x:abc",
            "malformed task id x:abc",
            'For input string: "abc"',
            id="id",
        ),
        pytest.param(
            "/_tasks/a:b:c",
            "malformed task id a:b:c",
            'For input string: "b:c"',
            id="two-colons",
        ),
        pytest.param(
            "/_tasks?timeout=1.5s",
            "failed to parse [1.5s], fractional time values are not supported",
            'For input string: "1.5"',
            id="fraction",
        ),
        pytest.param(
            "/_tasks?timeout=abcs",
            "failed to parse [abcs]",
            'For input string: "abc"',
            id="not-a-number",
        ),
        pytest.param(
            "/_tasks?parent_task_id=n:99999999999999999999",
            "malformed task id n:99999999999999999999",
            'For input string: "99999999999999999999"',
            id="overflow",
        ),
    ],
)
def test_bad_numbers_carry_number_format_cause(
    client: FlaskClient, url: str, reason: str, cause: str
) -> None:
    response = client.get(url)
    assert response.status_code == 400
    assert response.json == error(
        "illegal_argument_exception",
        reason,
        400,
        caused_by={"type": "number_format_exception", "reason": cause},
    )


@pytest.mark.parametrize(
    "timeout",
    ["0", "-1", "30s", "1m", "2h", "1d", "100ms", "5micros", "7nanos", " 10S "],
)
def test_time_values_opensearch_accepts(client: FlaskClient, timeout: str) -> None:
    assert client.get("/_tasks", query_string={"timeout": timeout}).status_code == 200


def test_body_is_refused_and_error_trace_adds_stack(client: FlaskClient) -> None:
    response = client.post(
        "/_tasks/_cancel", data="{}", content_type="application/json"
    )
    assert response.json == error(
        "illegal_argument_exception",
        "request [POST /_tasks/_cancel] does not support having a body",
        400,
    )
    traced = client.get("/_tasks?detailed=x&error_trace=true").json
    assert "stack_trace" in traced["error"]
    assert "stack_trace" in traced["error"]["root_cause"][0]


def test_wrong_method_and_unknown_path_give_bare_string_errors(
    client: FlaskClient,
) -> None:
    response = client.delete("/_tasks?x=y")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    assert response.json == {
        "error": "Incorrect HTTP method for uri [/_tasks?x=y] and method [DELETE], allowed: [GET]",
        "status": 405,
    }
    cancel = client.get("/_tasks/N:1/_cancel")
    assert cancel.status_code == 405
    assert cancel.json["error"].endswith("and method [GET], allowed: [POST]")
    assert client.put("/_cat/tasks").status_code == 405
    nothing = client.get("/_tasks/a/b/c")
    assert nothing.status_code == 400
    assert nothing.json == {
        "error": "no handler found for uri [/_tasks/a/b/c] and method [GET]",
        "status": 400,
    }
    # GET of "_cancel" is a GET of a task named so, as in OpenSearch.
    assert client.get("/_tasks/_cancel").json == error(
        "illegal_argument_exception", "malformed task id _cancel", 400
    )


def test_repeated_opaque_id_with_two_values_is_refused(client: FlaskClient) -> None:
    response = client.get(
        "/_tasks", headers=[("X-Opaque-Id", "a"), ("X-Opaque-Id", "b")]
    )
    assert response.status_code == 400
    assert response.json == {
        "error": "multiple values for single-valued header [X-Opaque-Id].",
        "status": 400,
    }
    same = client.get(
        "/_tasks?group_by=none", headers=[("X-Opaque-Id", "a"), ("X-Opaque-Id", "a")]
    )
    assert same.status_code == 200
    assert same.json["tasks"][0]["headers"] == {"X-Opaque-Id": "a"}


# -------------------------------------------------------------------- GET one task


def test_get_running_task_is_detailed_with_resource_stats(
    client: FlaskClient, db: Database, node_id: str
) -> None:
    task = add_task(db, task_id="r", request_headers='{"X-Opaque-Id":"x"}')
    body = client.get(f"/_tasks/{node_id}:{task.id}").json
    assert body == {
        "completed": False,
        "task": info(node_id, task, detailed=True, headers={"X-Opaque-Id": "x"}),
    }
    assert_valid(body, "tasks", "tasks.get@200")


def test_get_completed_success_is_a_stored_result_with_bulk_shaped_response(
    client: FlaskClient, db: Database, node_id: str
) -> None:
    finished = CREATED + dt.timedelta(seconds=2)
    with db.transaction() as session:
        task = make_complete_task(
            session,
            task_id="ok",
            created_at=CREATED,
            finished_at=finished,
            duration_ms=1500,
        )
    body = client.get(f"/_tasks/{node_id}:{task.id}").json
    status = druid_status(
        "ok", statusCode="SUCCESS", runnerStatusCode="NONE", duration=1500
    )
    assert body == {
        "completed": True,
        "task": info(node_id, task, detailed=True, stats=False, status=status)
        | {"running_time_in_nanos": 2_000_000_000},
        "response": {
            "took": 1500,
            "timed_out": False,
            "total": 0,
            "updated": 0,
            "created": 0,
            "deleted": 0,
            "batches": 0,
            "version_conflicts": 0,
            "noops": 0,
            "retries": {"bulk": 0, "search": 0},
            "throttled_millis": 0,
            "requests_per_second": -1.0,
            "throttled_until_millis": 0,
            "failures": [],
            "druid_status": status,
        },
    }
    assert_valid(body, "tasks", "tasks.get@200")


def test_get_failed_task_has_error_and_druid_shutdown_is_cancelled(
    client: FlaskClient, db: Database, node_id: str
) -> None:
    with db.transaction() as session:
        failed = make_complete_task(
            session,
            task_id="bad",
            created_at=CREATED,
            status=TaskState.FAILED,
            error_msg="boom",
        )
    body = client.get(f"/_tasks/{node_id}:{failed.id}").json
    assert body["error"] == {"type": "druid_task_failed_exception", "reason": "boom"}
    assert body["task"]["cancelled"] is False
    assert_valid(body, "tasks", "tasks.get@200")

    task = add_task(db, task_id="stopme")
    assert client.post(f"{DRUID_BASE}/task/stopme/shutdown").status_code == 200
    body = client.get(f"/_tasks/{node_id}:{task.id}").json
    assert body["completed"] is True
    assert body["task"]["cancelled"] is True
    assert body["task"]["cancellation_time_millis"] == AtLeast(CREATED_MS)
    assert list(body["task"])[-1] == "cancellation_time_millis"
    assert body["error"] == {
        "type": "task_cancelled_exception",
        "reason": "Shutdown request from user",
    }
    assert_valid(body, "tasks", "tasks.get@200")


def test_get_unknown_foreign_and_unset_ids(client: FlaskClient, node_id: str) -> None:
    unknown = client.get(f"/_tasks/{node_id}:99")
    assert unknown.status_code == 404
    reason = f"task [{node_id}:99] isn't running and hasn't stored its results"
    assert unknown.json == error("resource_not_found_exception", reason, 404)
    foreign = client.get("/_tasks/foo:1")
    assert foreign.status_code == 404
    assert foreign.json == {
        "error": {
            "root_cause": [
                {
                    "type": "resource_not_found_exception",
                    "reason": "task [foo:1] isn't running and hasn't stored its results",
                }
            ],
            "type": "resource_not_found_exception",
            "reason": "task [foo:1] belongs to the node [foo] which isn't part of the "
            "cluster and there is no record of the task",
            "caused_by": {
                "type": "resource_not_found_exception",
                "reason": "task [foo:1] isn't running and hasn't stored its results",
            },
        },
        "status": 404,
    }
    unset = client.get(f"/_tasks/{node_id}:-1")
    assert unset.json == error(
        "action_request_validation_exception",
        "Validation Failed: 1: task id is required;",
        400,
    )


def test_get_wait_returns_as_soon_as_the_task_completes(
    client: FlaskClient, db: Database, node_id: str
) -> None:
    task = add_task(db, task_id="w")

    def finish() -> None:
        time.sleep(0.4)
        with db.transaction(write=True) as session:
            row = session.get(Task, task.id)
            assert row is not None
            row.active, row.status = False, TaskState.SUCCESS
            row.runner_status, row.finished_at = RunnerState.NONE, utcnow()

    worker = threading.Thread(target=finish)
    started = time.monotonic()
    worker.start()
    body = client.get(
        f"/_tasks/{node_id}:{task.id}?wait_for_completion&timeout=10s"
    ).json
    elapsed = time.monotonic() - started
    worker.join()
    assert body["completed"] is True
    assert body["task"]["status"]["statusCode"] == "SUCCESS"
    assert 0.35 < elapsed < 2
    assert_valid(body, "tasks", "tasks.get@200")


def test_get_wait_never_holds_a_transaction_open(
    client: FlaskClient, db: Database, node_id: str
) -> None:
    task = add_task(db, task_id="hold")
    begun = ended = 0

    def on_begin(*_: Any) -> None:
        nonlocal begun
        begun += 1

    def on_end(*_: Any) -> None:
        nonlocal ended
        ended += 1

    def shutdown_meanwhile() -> None:
        time.sleep(0.3)
        # A write on SQLite needs every reader gone: it would time out if the
        # waiting request held its transaction.
        with db.transaction(write=True) as session:
            row = session.get(Task, task.id)
            assert row is not None
            row.active = False
            assert (begun - ended) <= 1  # only ours is open

    event.listen(db.engine, "begin", on_begin)
    event.listen(db.engine, "commit", on_end)
    event.listen(db.engine, "rollback", on_end)
    try:
        worker = threading.Thread(target=shutdown_meanwhile)
        worker.start()
        response = client.get(f"/_tasks/{node_id}:{task.id}?wait_for_completion=true")
        worker.join()
    finally:
        event.remove(db.engine, "begin", on_begin)
        event.remove(db.engine, "commit", on_end)
        event.remove(db.engine, "rollback", on_end)
    assert response.json["completed"] is True
    assert begun >= 3  # one short transaction per poll


def test_get_wait_times_out_with_500_timeout_exception(
    client: FlaskClient, db: Database, node_id: str
) -> None:
    task = add_task(db, task_id="slow")
    started = time.monotonic()
    response = client.get(
        f"/_tasks/{node_id}:{task.id}?wait_for_completion=true&timeout=200ms"
    )
    assert 0.2 <= time.monotonic() - started < 2
    text = (
        f"Timed out waiting for completion of [Task{{id={task.id}, type='transport', "
        "action='indices:data/write/druid/noop', description='task[slow], type[noop], "
        f"dataSource[wiki]', parentTask=unset, startTime={CREATED_MS}, "
        f"startTimeNanos={CREATED_MS}000000}}]"
    )
    assert response.status_code == 500
    assert response.json == error("timeout_exception", text, 500)


def test_list_wait_times_out_as_node_failure(
    client: FlaskClient, db: Database, node_id: str
) -> None:
    task = add_task(db, task_id="lw")
    body = client.get("/_tasks?wait_for_completion&timeout=100ms&group_by=none").json
    assert body == {
        "node_failures": [
            {
                "type": "failed_node_exception",
                "reason": f"Failed node [{node_id}]",
                "node_id": node_id,
                "caused_by": {
                    "type": "timeout_exception",
                    "reason": "Timed out waiting for completion of [Task{id="
                    f"{task.id}, type='transport', action='indices:data/write/druid/noop'"
                    ", description='task[lw], type[noop], dataSource[wiki]', "
                    f"parentTask=unset, startTime={CREATED_MS}, startTimeNanos="
                    f"{CREATED_MS}000000}}]",
                },
            }
        ],
        "tasks": [],
    }
    assert_valid(body, "tasks", "tasks.list@200")
    # Nothing to wait for (only the list task itself): returns at once.
    assert (
        client.get("/_tasks?wait_for_completion&actions=cluster:*").status_code == 200
    )


# --------------------------------------------------------------------------- cancel


def test_cancel_by_id_shuts_down_task_and_descendants(
    client: FlaskClient, db: Database, node_id: str
) -> None:
    parent = add_task(db, task_id="par")
    child = add_task(db, task_id="kid", parent_task_id="par")
    grandchild = add_task(db, task_id="grand", parent_task_id="kid")
    other = add_task(db, task_id="other")

    response = client.post(
        f"/_tasks/{node_id}:{parent.id}/_cancel", headers={"X-Opaque-Id": "c"}
    )

    assert response.headers["X-Opaque-Id"] == "c"
    assert response.json == {
        "nodes": {
            node_id: node_summary(node_id)
            | {
                "tasks": {
                    f"{node_id}:{parent.id}": info(
                        node_id,
                        parent,
                        cancelled=True,
                        cancellation_time_millis=AtLeast(CREATED_MS),
                    )
                }
            }
        }
    }
    assert_valid(response.json, "tasks", "tasks.cancel@200")
    for task_id in ("par", "kid", "grand"):
        status = client.get(f"{DRUID_BASE}/task/{task_id}/status").json["status"]
        assert (status["statusCode"], status["errorMsg"]) == (
            "FAILED",
            "Shutdown request from user",
        )
    assert (
        client.get(f"{DRUID_BASE}/task/other/status").json["status"]["statusCode"]
        == "RUNNING"
    )
    del child, grandchild, other


def test_cancel_all_with_filters_lists_each_cancelled_task(
    client: FlaskClient, db: Database, node_id: str
) -> None:
    a = add_task(db, task_id="a")
    b = add_task(db, task_id="b", type="kill")
    body = client.post("/_tasks/_cancel?actions=*noop&group_by=none").json
    assert body == {
        "tasks": [
            info(
                node_id, a, cancelled=True, cancellation_time_millis=AtLeast(CREATED_MS)
            )
        ]
    }
    everything = client.post(
        "/_tasks/_cancel?group_by=none&wait_for_completion=true"
    ).json
    assert [t["id"] for t in everything["tasks"]] == [b.id]
    assert client.post("/_tasks/_cancel").json == {"nodes": {}}


@pytest.mark.parametrize(
    ("path", "failure"),
    [
        pytest.param(
            "{node}:99",
            {
                "type": "resource_not_found_exception",
                "reason": "task [{node}:99] is not found",
            },
            id="unknown",
        ),
        pytest.param(
            "{node}:{done}",
            {
                "type": "resource_not_found_exception",
                "reason": "task [{node}:{done}] is not found",
            },
            id="finished",
        ),
        pytest.param(
            "{node}:{live}?actions=nothing",
            {
                "type": "illegal_argument_exception",
                "reason": "task [{node}:{live}] doesn't support this operation",
            },
            id="filtered",
        ),
    ],
)
def test_cancel_failures_are_200_node_failures(
    client: FlaskClient, db: Database, node_id: str, path: str, failure: dict[str, str]
) -> None:
    live = add_task(db, task_id="live")
    done = add_task(db, task_id="done", active=False, status=TaskState.SUCCESS)
    values = {"node": node_id, "live": live.id, "done": done.id}
    response = client.post(
        "/_tasks/" + path.format(**values).replace("?", "/_cancel?", 1)
        if "?" in path
        else f"/_tasks/{path.format(**values)}/_cancel"
    )
    assert response.status_code == 200
    assert response.json == {
        "node_failures": [
            {
                "type": "failed_node_exception",
                "reason": f"Failed node [{node_id}]",
                "node_id": node_id,
                "caused_by": {k: v.format(**values) for k, v in failure.items()},
            }
        ],
        "nodes": {},
    }
    assert_valid(response.json, "tasks", "tasks.cancel@200")
    assert (
        client.get(f"{DRUID_BASE}/task/live/status").json["status"]["statusCode"]
        == "RUNNING"
    )


def test_cancel_parameter_rules(
    client: FlaskClient, db: Database, node_id: str
) -> None:
    task = add_task(db, task_id="keep")
    both = client.post(f"/_tasks/{node_id}:{task.id}/_cancel?nodes=_local")
    assert both.json == error(
        "action_request_validation_exception",
        "Validation Failed: 1: task id cannot be used together with node ids;",
        400,
    )
    timeout = client.post("/_tasks/_cancel?timeout=10s")
    assert timeout.json == error(
        "illegal_argument_exception",
        "request [/_tasks/_cancel] contains unrecognized parameter: [timeout]",
        400,
    )
    bad_group = client.post("/_tasks/_cancel?group_by=x")
    assert bad_group.status_code == 400
    # Nothing was cancelled by the refused requests.
    assert (
        client.get(f"{DRUID_BASE}/task/keep/status").json["status"]["statusCode"]
        == "RUNNING"
    )


# -------------------------------------------------------------------------- _cat


def test_cat_tasks_text_table_with_header(
    client: FlaskClient, db: Database, node_id: str
) -> None:
    parent = add_task(db, task_id="p1")
    child = add_task(db, task_id="c1", parent_task_id="p1", type="kill")
    text = client.get(
        "/_cat/tasks?v&h=action,ti,pti,type,start_time,timestamp,ip,node&actions=indices:*"
    ).get_data(as_text=True)
    tid = f"{node_id}:{parent.id}"
    cid = f"{node_id}:{child.id}"
    width = len(cid)
    assert text == (
        f"action{' ' * 24}{'ti'.ljust(width)} {'pti'.ljust(width)} type      "
        f"start_time    timestamp ip        node\n"
        f"indices:data/write/druid/noop {tid.ljust(width)} {'-'.ljust(width)} transport "
        f"{CREATED_MS} 03:04:05  127.0.0.1 overlord\n"
        f"indices:data/write/druid/kill {cid} {tid.ljust(width)} transport "
        f"{CREATED_MS} 03:04:05  127.0.0.1 overlord\n"
    )


def test_cat_tasks_json_sort_and_time_unit(
    client: FlaskClient, db: Database, node_id: str
) -> None:
    add_task(db, task_id="j1", request_headers='{"X-Opaque-Id":"who"}')
    add_task(db, task_id="j2", type="kill")
    rows = client.get(
        "/_cat/tasks?format=JSON&h=id,ac,x,running_time,desc&detailed&s=ac:desc"
        "&actions=indices:*&time=d"
    ).json
    assert [(r["ac"], r["x"]) for r in rows] == [
        ("indices:data/write/druid/noop", "who"),
        ("indices:data/write/druid/kill", "-"),
    ]
    assert all(r["running_time"].isdigit() for r in rows)
    assert rows[0]["desc"] == "task[j1], type[noop], dataSource[wiki]"
    assert list(rows[0]) == ["id", "ac", "x", "running_time", "desc"]
    assert_valid(rows, "cat", "cat.tasks@200")
    unknown = client.get("/_cat/tasks?s=nope")
    assert unknown.status_code == 400  # OpenSearch: 500; issue 8: bad input is a 4xx
    assert unknown.json == error(
        "unsupported_operation_exception",
        "Unable to sort by unknown sort key `nope`",
        400,
    )


def test_cat_tasks_help_and_empty_table(client: FlaskClient) -> None:
    text = client.get("/_cat/tasks?help").get_data(as_text=True)
    lines = text.split("\n")
    assert lines[0] == "id              |               | id of the task with the node"
    assert lines[
        6
    ] == "timestamp       | ts,hms,hhmmss | " + "start time in HH:MM:SS".ljust(28)
    assert len(lines) == 16
    assert client.get("/_cat/tasks?actions=none").get_data(as_text=True) == ""
    header_only = client.get("/_cat/tasks?actions=none&v&h=ac,ti").get_data(
        as_text=True
    )
    assert header_only == "ac ti\n"


# --------------------------------------------------------------------- GET /, nodes


def test_info_and_nodes_describe_the_one_node(
    client: FlaskClient, node_id: str
) -> None:
    body = client.get("/").json
    assert body == {
        "name": "overlord",
        "cluster_name": "overlord",
        "cluster_uuid": node_id,
        "version": {
            "distribution": "opensearch",
            "number": "2.19.0",
            "build_type": "tar",
            "build_hash": "overlord",
            "build_date": "2025-02-04T00:00:00.000Z",
            "build_snapshot": False,
            "lucene_version": "9.12.1",
            "minimum_wire_compatibility_version": "7.10.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "The OpenSearch Project: https://opensearch.org/",
    }
    assert_valid(body, "_core", "info@200")
    nodes = client.get("/_nodes").json
    assert nodes == {
        "_nodes": {"total": 1, "successful": 1, "failed": 0},
        "cluster_name": "overlord",
        "nodes": {
            node_id: {
                "name": "overlord",
                "transport_address": "127.0.0.1:8090",
                "host": "127.0.0.1",
                "ip": "127.0.0.1",
                "version": "2.19.0",
                "build_type": "tar",
                "build_hash": "overlord",
                "roles": ["cluster_manager", "data", "ingest"],
            }
        },
    }
    assert_valid(nodes, "nodes", "nodes.info@200")
    assert len(node_id) == 22


def test_druid_submit_keeps_opaque_id_for_the_facade(
    client: FlaskClient, node_id: str
) -> None:
    response = client.post(
        f"{DRUID_BASE}/task",
        json={"type": "noop", "id": "opaque"},
        headers={"X-Opaque-Id": "dashboards"},
    )
    assert response.status_code == 200
    tasks = client.get("/_tasks?group_by=none&detailed&actions=indices:*").json["tasks"]
    assert [(t["status"]["id"], t["headers"]) for t in tasks] == [
        ("opaque", {"X-Opaque-Id": "dashboards"})
    ]
    assert json.loads(client.get("/_tasks?group_by=none").get_data())["tasks"][0][
        "headers"
    ] == {"X-Opaque-Id": "dashboards"}
