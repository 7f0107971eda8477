"""Basic authentication and CLUSTER permissions on the ``_tasks`` surface as
OpenSearch's security plugin answers (issue 12; spec security.md §3)."""

from __future__ import annotations

import base64

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient

from overlord.config import Settings
from overlord.db import Database
from tests.authn import ADMIN_PASSWORD, add_user, auth_app, basic
from tests.factories import make_task

ADMIN = basic("admin", ADMIN_PASSWORD)


@pytest.fixture
def app(settings: Settings, db: Database) -> Flask:
    return auth_app(settings, db)


def _assert_challenge(response: Response) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="OpenSearch Security"'
    assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert response.get_data(as_text=True) == "Unauthorized"


def _denied(action: str, user: str) -> dict[str, object]:
    reason = (
        f"no permissions for [{action}] and User [name={user}, backend_roles=[], "
        "requestedTenant=null]"
    )
    return {
        "error": {
            "root_cause": [{"type": "security_exception", "reason": reason}],
            "type": "security_exception",
            "reason": reason,
        },
        "status": 403,
    }


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-credentials"),
        pytest.param(basic("nobody", "x"), id="unknown-user"),
        pytest.param(basic("admin", "wrong"), id="wrong-password"),
        pytest.param({"Authorization": "Basic !!!"}, id="bad-base64"),
        pytest.param(
            {"Authorization": "Basic " + base64.b64encode(b":pw").decode()},
            id="empty-user",
        ),
        pytest.param({"Authorization": "Bearer x"}, id="bearer"),
    ],
)
@pytest.mark.parametrize("path", ["/_tasks", "/_cat/tasks", "/_nodes", "/", "/_x"])
def test_every_failure_is_the_same_challenge(
    client: FlaskClient, headers: dict[str, str], path: str
) -> None:
    _assert_challenge(client.get(path, headers=headers))


@pytest.mark.parametrize("scheme", ["Basic", "basic", "BASIC"])
def test_scheme_is_read_in_any_case(client: FlaskClient, scheme: str) -> None:
    token = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    response = client.get("/_tasks", headers={"Authorization": f"{scheme} {token}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        ("GET", "/_tasks", "cluster:monitor/tasks/lists"),
        ("GET", "/_cat/tasks", "cluster:monitor/tasks/lists"),
        ("GET", "/_tasks/NODE:1", "cluster:monitor/task/get"),
        ("POST", "/_tasks/_cancel", "cluster:admin/tasks/cancel"),
        ("POST", "/_tasks/NODE:1/_cancel", "cluster:admin/tasks/cancel"),
        ("GET", "/_nodes", "cluster:monitor/nodes/info"),
        ("GET", "/", "cluster:monitor/main"),
    ],
)
def test_missing_cluster_permission_is_security_exception(
    client: FlaskClient, db: Database, method: str, path: str, action: str
) -> None:
    add_user(db, "bob", "pw", [("DATASOURCE", ".*", "READ"), ("STATE", ".*", "WRITE")])
    response = client.open(path, method=method, headers=basic("bob", "pw"))
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert response.json == _denied(action, "bob")


def test_monitor_read_lists_and_gets_but_cannot_cancel(
    client: FlaskClient, db: Database
) -> None:
    add_user(db, "mon", "pw", [("CLUSTER", "cluster:monitor/.*", "READ")])
    headers = basic("mon", "pw")
    assert client.get("/_tasks", headers=headers).status_code == 200
    assert client.get("/_cat/tasks", headers=headers).status_code == 200
    response = client.post("/_tasks/_cancel", headers=headers)
    assert response.json == _denied("cluster:admin/tasks/cancel", "mon")
    # WRITE on a monitor action does not grant READ.
    add_user(db, "writer", "pw", [("CLUSTER", ".*", "WRITE")])
    response = client.get("/_tasks", headers=basic("writer", "pw"))
    assert response.json == _denied("cluster:monitor/tasks/lists", "writer")


def test_lists_are_not_filtered_per_user(client: FlaskClient, db: Database) -> None:
    with db.transaction() as session:
        make_task(session, task_id="of_a", datasource="a")
        make_task(session, task_id="of_b", datasource="b")
    # A user with DATASOURCE rights on `a` only still sees `b`'s task: OpenSearch
    # checks the action, never the rows.
    add_user(
        db,
        "a-user",
        "pw",
        [("DATASOURCE", "a", "READ"), ("CLUSTER", "cluster:monitor/.*", "READ")],
    )
    response = client.get("/_tasks?detailed=true", headers=basic("a-user", "pw"))
    assert response.status_code == 200
    descriptions = sorted(
        task["description"]
        for node in response.json["nodes"].values()
        for task in node["tasks"].values()
    )
    # The list's own transport action has no description.
    assert descriptions == [
        "",
        "task[of_a], type[noop], dataSource[a]",
        "task[of_b], type[noop], dataSource[b]",
    ]


def test_unknown_tasks_path_is_401_then_400(client: FlaskClient) -> None:
    _assert_challenge(client.get("/_tasks/a/b/c"))
    assert client.get("/_tasks/a/b/c", headers=ADMIN).status_code == 400


def test_opaque_id_still_echoed_for_authenticated_calls(client: FlaskClient) -> None:
    response = client.get(
        "/_tasks?group_by=parents", headers={**ADMIN, "X-Opaque-Id": "mine"}
    )
    assert response.status_code == 200
    assert response.headers["X-Opaque-Id"] == "mine"
    assert "failures" not in response.json
