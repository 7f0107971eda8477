"""Basic authentication and permissions on the Druid surface (issue 12; spec
security.md §0, §1, §6.2): Druid's two 401s, the 403 bodies, the order
401 → 404 → 403 and 400 → 403, lists filtered per row, the audit identity."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from sqlalchemy import select

from overlord.api import routes
from overlord.app import create_app
from overlord.config import Settings
from overlord.db import Database
from overlord.states import RunnerState, TaskState
from overlord.store.models import AuditEntry, Task
from tests.authn import (
    ADMIN_PASSWORD,
    INTERNAL_PASSWORD,
    add_user,
    auth_app,
    basic,
)
from tests.factories import make_complete_task, make_pending_segment, make_task

BASE = "/druid/indexer/v1"
HOST_FIELD = "host"
ADMIN = basic("admin", ADMIN_PASSWORD)
FORBIDDEN = {"Access-Check-Result": "Unauthorized"}
TEXT_FORBIDDEN = "Access-Check-Result: Unauthorized"


@pytest.fixture
def app(settings: Settings, db: Database) -> Flask:
    return auth_app(settings, db)


def _challenge_body(response: Response) -> dict[str, Any]:
    body = response.json
    assert isinstance(body, dict)
    assert isinstance(body.pop(HOST_FIELD), str)
    return body


def _assert_challenge(response: Response) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Basic"
    assert response.content_type == "application/json"
    assert _challenge_body(response) == {
        "error": "Unauthorized request",
        "errorMessage": None,
        "errorClass": None,
    }


def _html_page(path: str, message: str) -> str:
    return (
        '<html>\n<head>\n<meta http-equiv="Content-Type" '
        'content="text/html;charset=ISO-8859-1"/>\n'
        f"<title>Error 401 {message}</title>\n</head>\n<body>\n"
        f"<h2>HTTP ERROR 401 {message}</h2>\n<table>\n"
        f"<tr><th>URI:</th><td>{path}</td></tr>\n"
        "<tr><th>STATUS:</th><td>401</td></tr>\n"
        f"<tr><th>MESSAGE:</th><td>{message}</td></tr>\n"
        "</table>\n\n</body>\n</html>\n"
    )


def _raw(token: str) -> dict[str, str]:
    return {"Authorization": token}


# ------------------------------------------------------------------ authentication


def test_auth_off_nothing_is_401_or_403(settings: Settings, db: Database) -> None:
    app = create_app(settings, database=db)
    client = app.test_client()
    assert client.get("/status").status_code == 200
    assert client.get(f"{BASE}/tasks").status_code == 200
    assert client.get("/_tasks").status_code == 200
    response = client.post(f"{BASE}/task", json={"type": "noop", "dataSource": "a"})
    assert response.status_code == 200
    # No auth hook at all when off (the hot paths pay nothing); the one hook left
    # times requests for the metrics.
    hooks = app.before_request_funcs.get(None, [])
    assert [hook.__module__ for hook in hooks] == ["overlord.api.metrics"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-header"),
        pytest.param(_raw("NotBasic YWRtaW46eA=="), id="not-basic"),
        pytest.param(_raw("basic YWRtaW46eA=="), id="lower-case-scheme"),
        pytest.param(_raw("Bearer abc"), id="bearer"),
        pytest.param(_raw("Basic"), id="scheme-only"),
    ],
)
def test_no_usable_credentials_get_the_json_challenge(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    _assert_challenge(client.get("/status", headers=headers))


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param(_raw("Basic this_is_not_base64"), "Unauthorized", id="bad-b64"),
        pytest.param(
            _raw("Basic " + base64.b64encode(b"nocolon").decode()),
            "Unauthorized",
            id="no-colon",
        ),
        pytest.param(basic("nobody", "x"), "Unauthorized", id="unknown-user"),
        pytest.param(
            basic("admin", "wrong"), "User authentication failed.", id="wrong-password"
        ),
    ],
)
def test_failing_basic_header_gets_jetty_page_without_challenge(
    client: FlaskClient, headers: dict[str, str], message: str
) -> None:
    response = client.get("/status", headers=headers)
    assert response.status_code == 401
    assert "WWW-Authenticate" not in response.headers
    assert response.headers["Content-Type"] == "text/html;charset=iso-8859-1"
    assert response.headers["Cache-Control"] == "must-revalidate,no-cache,no-store"
    assert response.get_data(as_text=True) == _html_page("/status", message)


def test_user_without_password_cannot_log_in(client: FlaskClient, db: Database) -> None:
    add_user(db, "nopass", None, [("STATE", ".*", "READ")])
    response = client.get("/status", headers=basic("nopass", ""))
    assert response.status_code == 401
    assert "<tr><th>MESSAGE:</th><td>Unauthorized</td></tr>" in response.text


@pytest.mark.parametrize(
    ("accept", "content_type", "body"),
    [
        pytest.param(
            "application/json",
            "application/json",
            '{\n"url":"/status",\n"status":"401",\n'
            '"message":"User authentication failed."\n}',
            id="json",
        ),
        pytest.param(
            "text/plain",
            "text/plain;charset=iso-8859-1",
            "HTTP ERROR 401 User authentication failed.\nURI: /status\n"
            "STATUS: 401\nMESSAGE: User authentication failed.\n",
            id="text",
        ),
        pytest.param(
            "text/plain;q=0.5, application/json",
            "application/json",
            '{\n"url":"/status",\n"status":"401",\n'
            '"message":"User authentication failed."\n}',
            id="quality-order",
        ),
        pytest.param("image/png", None, "", id="none-acceptable"),
    ],
)
def test_error_page_format_follows_accept(
    client: FlaskClient, accept: str, content_type: str | None, body: str
) -> None:
    headers = {**basic("admin", "wrong"), "Accept": accept}
    response = client.get("/status", headers=headers)
    assert response.status_code == 401
    assert response.headers.get("Content-Type") == content_type
    assert response.get_data(as_text=True) == body


def test_malicious_user_name_is_never_echoed(client: FlaskClient) -> None:
    name = "<script>alert('hello')</script>"
    response = client.get("/status", headers=basic(name, "x"))
    assert response.status_code == 401
    text = response.get_data(as_text=True)
    assert "<tr><th>MESSAGE:</th><td>Unauthorized</td></tr>" in text
    assert name not in text
    assert "alert" not in text


def test_password_with_colon_passes(client: FlaskClient, db: Database) -> None:
    add_user(db, "colon", "hello:hello", [("STATE", ".*", "READ")])
    assert (
        client.get("/status", headers=basic("colon", "hello:hello")).status_code == 200
    )


def test_non_ascii_password_passes(client: FlaskClient, db: Database) -> None:
    add_user(db, "utf", "pässwörd:ü€", [("STATE", ".*", "READ")])
    assert client.get("/status", headers=basic("utf", "pässwörd:ü€")).status_code == 200


@pytest.mark.parametrize(
    ("user", "password"),
    [("admin", ADMIN_PASSWORD), ("druid_system", INTERNAL_PASSWORD)],
)
def test_initial_users_can_read_status(
    client: FlaskClient, user: str, password: str
) -> None:
    assert client.get("/status", headers=basic(user, password)).status_code == 200


@pytest.mark.parametrize(
    "path", ["/status/health", f"{BASE}/isLeader", "/custom/open", "/public/x/y"]
)
def test_unsecured_paths_need_no_credentials(
    settings: Settings, db: Database, path: str
) -> None:
    app = auth_app(settings, db, auth_unsecured_paths="/custom/open, /public/*")
    response = app.test_client().get(path)
    assert response.status_code in (200, 404)
    assert "WWW-Authenticate" not in response.headers


def test_unknown_path_is_401_before_404(client: FlaskClient) -> None:
    _assert_challenge(client.get("/druid/nothing/here"))
    _assert_challenge(client.delete(f"{BASE}/tasks"))  # a 405 once authenticated
    assert client.get("/druid/nothing/here", headers=ADMIN).status_code == 404
    assert client.delete(f"{BASE}/tasks", headers=ADMIN).status_code == 405


def test_options_needs_authentication(client: FlaskClient) -> None:
    _assert_challenge(client.options(f"{BASE}/tasks"))
    assert client.options(f"{BASE}/tasks", headers=ADMIN).status_code == 200


def test_anonymous_identity_serves_requests_without_credentials(
    settings: Settings, db: Database
) -> None:
    app = auth_app(settings, db, auth_anonymous_identity="guest")
    client = app.test_client()
    # No such user yet: anonymous holds nothing.
    response = client.get("/status")
    assert (response.status_code, response.json) == (403, FORBIDDEN)
    add_user(db, "guest", None, [("STATE", "STATE", "READ")])
    assert client.get("/status").status_code == 200
    # A wrong password is still 401 (no fall-through).
    assert client.get("/status", headers=basic("admin", "x")).status_code == 401
    # An unknown user too, without skip-on-failure.
    assert client.get("/status", headers=basic("who", "x")).status_code == 401


def test_skip_on_failure_sends_unknown_user_to_anonymous(
    settings: Settings, db: Database
) -> None:
    app = auth_app(
        settings, db, auth_anonymous_identity="guest", auth_skip_on_failure=True
    )
    add_user(db, "guest", None, [("STATE", "STATE", "READ")])
    client = app.test_client()
    assert client.get("/status", headers=basic("who", "x")).status_code == 200
    response = client.get("/status", headers=basic("admin", "wrong"))
    assert response.status_code == 401
    assert "User authentication failed." in response.text


def test_user_created_with_iterations_and_state_read_gets_status(
    client: FlaskClient, db: Database
) -> None:
    from overlord.services import auth as auth_service
    from overlord.timeutil import utcnow

    add_user(db, "druid", None, [("STATE", ".*", "READ")])
    db.run(
        lambda session: auth_service.set_password(
            session, "druid", "helloworld", 5000, utcnow()
        ),
        write=True,
    )
    assert (
        client.get("/status", headers=basic("druid", "helloworld")).status_code == 200
    )
    response = client.get(f"{BASE}/worker", headers=basic("druid", "helloworld"))
    assert (response.status_code, response.json) == (403, FORBIDDEN)


def test_changes_take_effect_within_the_cache_ttl(
    settings: Settings, db: Database
) -> None:
    app = auth_app(settings, db, auth_cache_ttl=dt.timedelta(hours=1))
    client = app.test_client()
    add_user(db, "late", "pw", [])
    headers = basic("late", "pw")
    assert client.get("/status", headers=headers).status_code == 403
    add_user(db, "other", "pw", [("STATE", ".*", "READ")], role="late-role")
    # Cached for the TTL: the grant is not seen yet.
    assert client.get("/status", headers=headers).status_code == 403
    fresh = auth_app(settings, db, auth_cache_ttl=dt.timedelta(0)).test_client()
    assert fresh.get("/status", headers=headers).status_code == 200


# ------------------------------------------------------------------- authorization


def test_forbidden_body_is_exact(client: FlaskClient, db: Database) -> None:
    add_user(db, "nobody", "pw", [])
    response = client.get("/status", headers=basic("nobody", "pw"))
    assert response.status_code == 403
    assert response.content_type == "application/json"
    assert response.get_data(as_text=True) == '{"Access-Check-Result":"Unauthorized"}'


@pytest.mark.parametrize(
    ("method", "path", "permission"),
    [
        ("GET", "/status", ("STATE", "STATE", "READ")),
        ("GET", "/status/properties", ("STATE", "STATE", "READ")),
        ("GET", f"{BASE}/leader", ("STATE", "STATE", "READ")),
        ("GET", f"{BASE}/workers", ("STATE", "STATE", "READ")),
        ("GET", f"{BASE}/worker", ("CONFIG", "CONFIG", "READ")),
        ("GET", f"{BASE}/worker/history", ("CONFIG", "CONFIG", "READ")),
        ("GET", f"{BASE}/totalWorkerCapacity", ("CONFIG", "CONFIG", "READ")),
        ("POST", f"{BASE}/taskStatus", ("STATE", "STATE", "WRITE")),
        ("POST", f"{BASE}/activeLocks", ("STATE", "STATE", "WRITE")),
        ("POST", f"{BASE}/lockedIntervals/v2", ("STATE", "STATE", "WRITE")),
        ("POST", f"{BASE}/lockedIntervals", ("STATE", "STATE", "WRITE")),
        (
            "GET",
            "/druid/coordinator/v1/metadata/datasources/wiki/segments",
            ("DATASOURCE", "wiki", "READ"),
        ),
    ],
)
def test_filtered_routes_allow_the_permission_and_deny_without(
    client: FlaskClient,
    db: Database,
    method: str,
    path: str,
    permission: tuple[str, str, str],
) -> None:
    kind, name, action = permission
    other = "WRITE" if action == "READ" else "READ"
    add_user(db, "yes", "pw", [permission])
    add_user(db, "no", "pw", [(kind, name, other), (kind, "x" + name, action)])
    denied = client.open(path, method=method, headers=basic("no", "pw"), json=[])
    assert (denied.status_code, denied.json) == (403, FORBIDDEN)
    allowed = client.open(path, method=method, headers=basic("yes", "pw"), json=[])
    assert allowed.status_code != 403


def test_regex_must_match_the_whole_name(client: FlaskClient, db: Database) -> None:
    with db.transaction() as session:
        make_task(session, task_id="t1", datasource="wikipedia")
    add_user(db, "part", "pw", [("DATASOURCE", "wiki", "READ")])
    add_user(db, "whole", "pw", [("DATASOURCE", "wiki.*", "READ")])
    path = f"{BASE}/task/t1/status"
    assert client.get(path, headers=basic("part", "pw")).status_code == 403
    assert client.get(path, headers=basic("whole", "pw")).status_code == 200


@pytest.mark.parametrize(
    "suffix", ["", "/status", "/reports", "/log", "/segments", "/shutdown"]
)
def test_task_routes_answer_404_before_403(
    client: FlaskClient, db: Database, suffix: str
) -> None:
    add_user(db, "nobody", "pw", [])
    method = "POST" if suffix == "/shutdown" else "GET"
    response = client.open(
        f"{BASE}/task/missing{suffix}", method=method, headers=basic("nobody", "pw")
    )
    assert response.status_code == 404
    assert response.get_data(as_text=True) == "Cannot find any task with id: [missing]"


@pytest.mark.parametrize(
    ("suffix", "method", "action"),
    [
        ("", "GET", "READ"),
        ("/status", "GET", "READ"),
        ("/reports", "GET", "READ"),
        ("/log", "GET", "READ"),
        ("/segments", "GET", "READ"),
        ("/shutdown", "POST", "WRITE"),
    ],
)
def test_task_routes_check_the_tasks_datasource(
    client: FlaskClient, db: Database, suffix: str, method: str, action: str
) -> None:
    with db.transaction() as session:
        make_task(session, task_id="t1", datasource="b")
    other = "WRITE" if action == "READ" else "READ"
    add_user(
        db, "a-user", "pw", [("DATASOURCE", "a", "READ"), ("DATASOURCE", "a", "WRITE")]
    )
    add_user(db, "b-other", "pw", [("DATASOURCE", "b", other)])
    add_user(db, "b-user", "pw", [("DATASOURCE", "b", action)])
    path = f"{BASE}/task/t1{suffix}"
    for user in ("a-user", "b-other"):
        response = client.open(path, method=method, headers=basic(user, "pw"))
        assert (response.status_code, response.json) == (403, FORBIDDEN)
    response = client.open(path, method=method, headers=basic("b-user", "pw"))
    assert response.status_code != 403


def test_invalid_task_id_is_400_before_403(client: FlaskClient, db: Database) -> None:
    add_user(db, "nobody", "pw", [])
    response = client.get(f"{BASE}/task/.hidden/status", headers=basic("nobody", "pw"))
    assert response.status_code == 400


def test_denied_shutdown_changes_nothing_and_allowed_one_is_audited(
    client: FlaskClient, db: Database
) -> None:
    with db.transaction() as session:
        make_task(session, task_id="t1", datasource="b")
    add_user(db, "reader", "pw", [("DATASOURCE", "b", "READ")])
    add_user(db, "writer", "pw", [("DATASOURCE", "b", "WRITE")])
    path = f"{BASE}/task/t1/shutdown"
    assert client.post(path, headers=basic("reader", "pw")).status_code == 403
    with db.transaction() as session:
        assert session.scalar(select(Task.active).where(Task.task_id == "t1")) is True
    response = client.post(path, headers=basic("writer", "pw"))
    assert (response.status_code, response.json) == (200, {"task": "t1"})
    with db.transaction() as session:
        assert session.execute(
            select(AuditEntry.type, AuditEntry.identity).order_by(AuditEntry.id)
        ).all() == [("task.shutdown", "writer")]


def test_shutdown_all_tasks_needs_write_on_the_datasource(
    client: FlaskClient, db: Database
) -> None:
    with db.transaction() as session:
        make_task(session, task_id="t1", datasource="b")
    add_user(db, "reader", "pw", [("DATASOURCE", "b", "READ")])
    add_user(db, "writer", "pw", [("DATASOURCE", "b", "WRITE")])
    path = f"{BASE}/datasources/b/shutdownAllTasks"
    response = client.post(path, headers=basic("reader", "pw"))
    assert (response.status_code, response.json) == (403, FORBIDDEN)
    response = client.post(path, headers=basic("writer", "pw"))
    assert (response.status_code, response.json) == (200, {"dataSource": "b"})


def test_delete_pending_segments_needs_read_and_write(
    client: FlaskClient, db: Database
) -> None:
    with db.transaction() as session:
        stamp = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        make_pending_segment(
            session,
            datasource="b",
            created=stamp,
            start=stamp,
            end=stamp + dt.timedelta(days=1),
        )
    add_user(db, "writer", "pw", [("DATASOURCE", "b", "WRITE")])
    add_user(
        db, "both", "pw", [("DATASOURCE", "b", "READ"), ("DATASOURCE", "b", "WRITE")]
    )
    path = f"{BASE}/pendingSegments/b?interval=1000/3000"
    response = client.delete(path, headers=basic("writer", "pw"))
    assert (response.status_code, response.json) == (403, FORBIDDEN)
    response = client.delete(path, headers=basic("both", "pw"))
    assert (response.status_code, response.json) == (200, {"numDeleted": 1})


@pytest.mark.parametrize(
    ("user", "permissions", "allowed"),
    [
        ("druid_system", None, True),
        ("stater", [("STATE", "STATE", "WRITE")], True),
        ("reader", [("STATE", "STATE", "READ")], False),
    ],
)
def test_action_needs_the_internal_identity_or_state_write(
    client: FlaskClient,
    db: Database,
    user: str,
    permissions: list[tuple[str, str, str]] | None,
    allowed: bool,
) -> None:
    password = INTERNAL_PASSWORD
    if permissions is not None:
        password = "pw"
        add_user(db, user, password, permissions)
    response = client.post(f"{BASE}/action", headers=basic(user, password), json={})
    if allowed:
        assert response.status_code == 400  # reached the view: the body is wrong
    else:
        assert (response.status_code, response.json) == (403, FORBIDDEN)


# ----------------------------------------------------------------------- submit

NOOP = {"type": "noop", "dataSource": "b"}
INDEX_SPEC: dict[str, Any] = {
    "dataSchema": {
        "dataSource": "b",
        "timestampSpec": {"column": "ts", "format": "iso"},
        "dimensionsSpec": {"dimensions": ["a"]},
        "granularitySpec": {"segmentGranularity": "DAY", "rollup": False},
    },
    "ioConfig": {
        "type": "index_parallel",
        "inputSource": {"type": "local", "baseDir": "/tmp", "filter": "*.json"},
        "inputFormat": {"type": "json"},
    },
    "tuningConfig": {"type": "index_parallel"},
}
INDEX = {"type": "index_parallel", "spec": INDEX_SPEC}


def _task_ids(db: Database) -> list[str]:
    with db.transaction() as session:
        return list(session.scalars(select(Task.task_id).order_by(Task.id)))


def test_submit_needs_datasource_write_read_only_is_refused(
    client: FlaskClient, db: Database
) -> None:
    add_user(db, "reader", "pw", [("DATASOURCE", "b", "READ")])
    add_user(db, "nobody", "pw", [])
    for user in ("reader", "nobody"):
        response = client.post(f"{BASE}/task", json=NOOP, headers=basic(user, "pw"))
        assert (response.status_code, response.json) == (403, FORBIDDEN)
    assert _task_ids(db) == []
    add_user(db, "writer", "pw", [("DATASOURCE", "b", "WRITE")])
    response = client.post(
        f"{BASE}/task", json={**NOOP, "id": "n1"}, headers=basic("writer", "pw")
    )
    assert (response.status_code, response.json) == (200, {"task": "n1"})
    with db.transaction() as session:
        assert session.execute(
            select(AuditEntry.audit_key, AuditEntry.type, AuditEntry.identity)
        ).all() == [("b", "task", "writer")]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b"{not json", 400, id="bad-json"),
        pytest.param(b'{"type":"nope","dataSource":"b"}', 400, id="unknown-type"),
        pytest.param(b'{"dataSource":"b"}', 400, id="no-type"),
    ],
)
def test_submit_parse_errors_come_before_403(
    client: FlaskClient, db: Database, body: bytes, status: int
) -> None:
    add_user(db, "nobody", "pw", [])
    response = client.post(
        f"{BASE}/task",
        data=body,
        content_type="application/json",
        headers=basic("nobody", "pw"),
    )
    assert response.status_code == status


def test_duplicate_id_is_403_for_a_user_without_write(
    client: FlaskClient, db: Database
) -> None:
    with db.transaction() as session:
        make_task(session, task_id="n1", datasource="b")
    add_user(db, "nobody", "pw", [])
    response = client.post(
        f"{BASE}/task", json={**NOOP, "id": "n1"}, headers=basic("nobody", "pw")
    )
    assert (response.status_code, response.json) == (403, FORBIDDEN)


def test_input_source_security_off_needs_only_datasource_write(
    client: FlaskClient, db: Database
) -> None:
    add_user(db, "writer", "pw", [("DATASOURCE", "b", "WRITE")])
    response = client.post(f"{BASE}/task", json=INDEX, headers=basic("writer", "pw"))
    assert response.status_code == 200, response.text


def test_input_source_security_on_needs_external_read_per_type(
    settings: Settings, db: Database
) -> None:
    client = auth_app(
        settings, db, auth_enable_input_source_security=True
    ).test_client()
    add_user(db, "writer", "pw", [("DATASOURCE", "b", "WRITE")])
    add_user(
        db,
        "inline-only",
        "pw",
        [("DATASOURCE", "b", "WRITE"), ("EXTERNAL", "inline", "READ")],
    )
    add_user(
        db,
        "both",
        "pw",
        [("DATASOURCE", "b", "WRITE"), ("EXTERNAL", "inline|local", "READ")],
    )
    for user in ("writer", "inline-only"):
        response = client.post(f"{BASE}/task", json=INDEX, headers=basic(user, "pw"))
        assert (response.status_code, response.json) == (403, FORBIDDEN)
    response = client.post(f"{BASE}/task", json=INDEX, headers=basic("both", "pw"))
    assert response.status_code == 200, response.text
    # noop has no input sources: DATASOURCE WRITE is enough.
    response = client.post(f"{BASE}/task", json=NOOP, headers=basic("writer", "pw"))
    assert response.status_code == 200


# ------------------------------------------------------------------------ lists


def _seed_lists(db: Database) -> None:
    now = dt.datetime.now(dt.UTC)
    with db.transaction() as session:
        for number, datasource in enumerate(["wikipedia", "buzzfeed"] * 2):
            make_complete_task(
                session,
                task_id=f"done_{number}",
                datasource=datasource,
                created_at=now - dt.timedelta(minutes=10 - number),
            )
        make_task(
            session,
            task_id="run_w",
            datasource="wikipedia",
            runner_status=RunnerState.RUNNING,
            status=TaskState.RUNNING,
        )
        make_task(
            session,
            task_id="run_b",
            datasource="buzzfeed",
            runner_status=RunnerState.RUNNING,
            status=TaskState.RUNNING,
        )


def _ids(response: Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json]


def test_lists_are_filtered_per_row(client: FlaskClient, db: Database) -> None:
    _seed_lists(db)
    add_user(db, "wiki", "pw", [("DATASOURCE", "wikipedia", "READ")])
    headers = basic("wiki", "pw")
    assert _ids(client.get(f"{BASE}/tasks", headers=headers)) == [
        "done_2",
        "done_0",
        "run_w",
    ]
    assert _ids(client.get(f"{BASE}/tasks?state=complete", headers=headers)) == [
        "done_2",
        "done_0",
    ]
    assert _ids(client.get(f"{BASE}/completeTasks", headers=headers)) == [
        "done_2",
        "done_0",
    ]
    assert _ids(client.get(f"{BASE}/runningTasks", headers=headers)) == ["run_w"]
    assert _ids(client.get(f"{BASE}/tasks?type=noop", headers=headers)) == [
        "done_2",
        "done_0",
        "run_w",
    ]
    assert _ids(client.get(f"{BASE}/tasks?datasource=wikipedia", headers=headers)) == [
        "done_2",
        "done_0",
        "run_w",
    ]


def test_lists_filter_after_max(client: FlaskClient, db: Database) -> None:
    _seed_lists(db)
    add_user(db, "wiki", "pw", [("DATASOURCE", "wikipedia", "READ")])
    response = client.get(
        f"{BASE}/tasks?state=complete&max=2", headers=basic("wiki", "pw")
    )
    # The two newest are done_3 (buzzfeed) and done_2: one row survives.
    assert _ids(response) == ["done_2"]


def test_list_with_unreadable_datasource_is_text_403(
    client: FlaskClient, db: Database
) -> None:
    _seed_lists(db)
    add_user(db, "wiki", "pw", [("DATASOURCE", "wikipedia", "READ")])
    response = client.get(
        f"{BASE}/tasks?datasource=buzzfeed", headers=basic("wiki", "pw")
    )
    assert response.status_code == 403
    assert response.content_type == "text/plain; charset=UTF-8"
    assert response.get_data(as_text=True) == TEXT_FORBIDDEN


def test_list_without_any_permission_is_empty_not_403(
    client: FlaskClient, db: Database
) -> None:
    _seed_lists(db)
    add_user(db, "nobody", "pw", [])
    response = client.get(f"{BASE}/tasks", headers=basic("nobody", "pw"))
    assert (response.status_code, response.json) == (200, [])


def test_bad_state_is_400_before_authorization(
    client: FlaskClient, db: Database
) -> None:
    add_user(db, "nobody", "pw", [])
    response = client.get(
        f"{BASE}/tasks?state=blah&datasource=x", headers=basic("nobody", "pw")
    )
    assert response.status_code == 400
    assert response.get_data(as_text=True) == (
        "Invalid task state[blah]. Must be one of [pending, waiting, running, complete]."
    )


# -------------------------------------------------------------- declarations


def test_every_route_declares_its_check(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert {e for e in endpoints if routes.check_of(e) is None} == set()


def test_an_undeclared_route_is_refused(settings: Settings, db: Database) -> None:
    app = auth_app(settings, db)
    app.add_url_rule("/undeclared", "undeclared", lambda: "secret")
    response = app.test_client().get("/undeclared", headers=ADMIN)
    assert (response.status_code, response.get_data()) == (403, b"")


def test_properties_mask_the_initial_passwords(client: FlaskClient) -> None:
    response = client.get("/status/properties", headers=ADMIN)
    assert response.status_code == 200
    properties = response.json
    assert properties["overlord.auth_enabled"] == "true"
    assert properties["overlord.auth_initial_admin_password"] == "<masked>"
    assert properties["overlord.auth_initial_internal_client_password"] == "<masked>"
    assert ADMIN_PASSWORD not in response.text
