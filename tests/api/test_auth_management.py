"""User management over Druid's basic-security HTTP paths and the ``overlord auth``
CLI (issue 12; spec security.md §1.8, §6.2 CoordinatorBasicAuth*ResourceTest)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from overlord.config import Settings
from overlord.db import Database
from overlord.services import auth as auth_service
from tests.authn import ADMIN_PASSWORD, add_user, auth_app, basic
from tests.processes import overlord_env, run_overlord

ADMIN = basic("admin", ADMIN_PASSWORD)
AUTHN = "/druid-ext/basic-security/authentication/db/basic"
AUTHZ = "/druid-ext/basic-security/authorization/db/basic"


@pytest.fixture
def app(settings: Settings, db: Database) -> Flask:
    return auth_app(settings, db)


def _call(
    client: FlaskClient, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    response = client.open(path, method=method, headers=ADMIN, json=body)
    if not response.data:
        return response.status_code, None
    return response.status_code, response.json


def test_load_status(client: FlaskClient) -> None:
    for side in ("authentication", "authorization"):
        response = client.get(
            f"/druid-ext/basic-security/{side}/loadStatus", headers=ADMIN
        )
        assert (response.status_code, response.json) == (200, {"basic": True})


def test_initial_users_and_roles(client: FlaskClient) -> None:
    assert _call(client, "GET", f"{AUTHN}/users") == (200, ["admin", "druid_system"])
    assert _call(client, "GET", f"{AUTHZ}/roles") == (200, ["admin", "druid_system"])
    assert _call(client, "GET", f"{AUTHZ}/users/admin") == (
        200,
        {"name": "admin", "roles": ["admin"]},
    )


def test_create_set_credentials_and_delete_user(client: FlaskClient) -> None:
    assert _call(client, "POST", f"{AUTHN}/users/druid") == (200, None)
    assert _call(client, "GET", f"{AUTHN}/users/druid") == (
        200,
        {"name": "druid", "credentials": None},
    )
    assert _call(
        client, "POST", f"{AUTHN}/users/druid/credentials", {"password": "helloworld"}
    ) == (200, None)
    status, body = _call(client, "GET", f"{AUTHN}/users/druid")
    credentials = body["credentials"]
    salt = base64.b64decode(credentials["salt"])
    digest = base64.b64decode(credentials["hash"])
    assert (status, len(salt), len(digest), credentials["iterations"]) == (
        200,
        32,
        64,
        10000,
    )
    assert auth_service.hash_password("helloworld", salt, 10000) == digest
    assert _call(client, "DELETE", f"{AUTHN}/users/druid") == (200, None)
    missing = {"error": "User [druid] does not exist."}
    assert _call(client, "GET", f"{AUTHN}/users/druid") == (400, missing)
    assert _call(
        client, "POST", f"{AUTHN}/users/druid/credentials", {"password": "x"}
    ) == (400, missing)
    assert _call(client, "DELETE", f"{AUTHN}/users/druid") == (400, missing)


def test_api_user_with_iterations_and_state_reader_role_gets_status(
    client: FlaskClient,
) -> None:
    assert _call(client, "POST", f"{AUTHN}/users/druid")[0] == 200
    body = {"password": "helloworld", "iterations": 5000}
    assert _call(client, "POST", f"{AUTHN}/users/druid/credentials", body)[0] == 200
    # Druid's documented set-up creates the user on the authorization side too.
    assert _call(client, "POST", f"{AUTHZ}/users/druid")[0] == 200
    assert _call(client, "POST", f"{AUTHZ}/roles/druidrole")[0] == 200
    assert _call(client, "POST", f"{AUTHZ}/users/druid/roles/druidrole")[0] == 200
    permissions = [{"resource": {"name": ".*", "type": "STATE"}, "action": "READ"}]
    assert (
        _call(client, "POST", f"{AUTHZ}/roles/druidrole/permissions", permissions)[0]
        == 200
    )
    status, body = _call(client, "GET", f"{AUTHN}/users/druid")
    assert (status, body["credentials"]["iterations"]) == (200, 5000)
    response = client.get("/status", headers=basic("druid", "helloworld"))
    assert response.status_code == 200


def test_conflicts_use_druids_texts(client: FlaskClient) -> None:
    assert _call(client, "POST", f"{AUTHN}/users/u")[0] == 200
    assert _call(client, "POST", f"{AUTHN}/users/u") == (
        400,
        {"error": "User [u] already exists."},
    )
    assert _call(client, "POST", f"{AUTHZ}/roles/r")[0] == 200
    assert _call(client, "POST", f"{AUTHZ}/roles/r") == (
        400,
        {"error": "Role [r] already exists."},
    )
    assert _call(client, "POST", f"{AUTHZ}/users/u/roles/nope") == (
        400,
        {"error": "Role [nope] does not exist."},
    )
    assert _call(client, "POST", f"{AUTHZ}/users/nobody/roles/r") == (
        400,
        {"error": "User [nobody] does not exist."},
    )
    assert _call(client, "POST", f"{AUTHZ}/users/u/roles/r")[0] == 200
    assert _call(client, "POST", f"{AUTHZ}/users/u/roles/r") == (
        400,
        {"error": "User [u] already has role [r]."},
    )
    assert _call(client, "DELETE", f"{AUTHZ}/users/u/roles/r")[0] == 200
    assert _call(client, "DELETE", f"{AUTHZ}/users/u/roles/r") == (
        400,
        {"error": "User [u] does not have role [r]."},
    )
    assert _call(
        client, "GET", "/druid-ext/basic-security/authentication/db/x/users"
    ) == (
        400,
        {"error": "Basic authenticator with name [x] does not exist."},
    )
    assert _call(
        client, "GET", "/druid-ext/basic-security/authorization/db/x/users"
    ) == (
        400,
        {"error": "Basic authorizer with name [x] does not exist."},
    )


def test_deleting_an_assigned_role_removes_it_from_its_users(
    client: FlaskClient,
) -> None:
    for path in (f"{AUTHN}/users/u", f"{AUTHZ}/roles/r", f"{AUTHZ}/users/u/roles/r"):
        assert _call(client, "POST", path)[0] == 200
    assert _call(client, "DELETE", f"{AUTHZ}/roles/r")[0] == 200
    assert _call(client, "GET", f"{AUTHZ}/users/u") == (200, {"name": "u", "roles": []})


def test_role_views_and_permission_replacement(client: FlaskClient) -> None:
    for path in (f"{AUTHN}/users/u", f"{AUTHZ}/roles/r", f"{AUTHZ}/users/u/roles/r"):
        assert _call(client, "POST", path)[0] == 200
    first = [{"resource": {"name": "x", "type": "STATE"}, "action": "READ"}]
    second = [
        {"resource": {"name": "E", "type": "DATASOURCE"}, "action": "write"},
    ]
    assert _call(client, "POST", f"{AUTHZ}/roles/r/permissions", first)[0] == 200
    assert _call(client, "POST", f"{AUTHZ}/roles/r/permissions", second)[0] == 200
    full_permission = {
        "resourceAction": {
            "resource": {"name": "E", "type": "DATASOURCE"},
            "action": "WRITE",
        },
        "resourceNamePattern": "E",
    }
    assert _call(client, "GET", f"{AUTHZ}/roles/r") == (
        200,
        {"name": "r", "permissions": [full_permission]},
    )
    assert _call(client, "GET", f"{AUTHZ}/roles/r?full") == (
        200,
        {"name": "r", "permissions": [full_permission], "users": ["u"]},
    )
    assert _call(client, "GET", f"{AUTHZ}/roles/r?simplifyPermissions") == (
        200,
        {
            "name": "r",
            "users": None,
            "permissions": [
                {"resource": {"name": "E", "type": "DATASOURCE"}, "action": "WRITE"}
            ],
        },
    )
    assert _call(client, "GET", f"{AUTHZ}/roles/r/permissions") == (
        200,
        [full_permission],
    )


def test_invalid_regex_is_refused(client: FlaskClient) -> None:
    assert _call(client, "POST", f"{AUTHZ}/roles/r")[0] == 200
    permissions = [{"resource": {"name": "(", "type": "DATASOURCE"}, "action": "READ"}]
    assert _call(client, "POST", f"{AUTHZ}/roles/r/permissions", permissions) == (
        400,
        {"error": "Invalid permission, resource name regex[(] does not compile."},
    )


def test_management_needs_config_security(client: FlaskClient, db: Database) -> None:
    add_user(db, "nobody", "pw", [("CONFIG", "CONFIG", "READ")])
    add_user(db, "reader", "pw", [("CONFIG", "security", "READ")])
    for user in ("nobody", "reader"):
        response = client.post(f"{AUTHZ}/roles/x", headers=basic(user, "pw"))
        assert response.status_code == 403
        assert response.content_type == "text/plain; charset=UTF-8"
        assert response.get_data(as_text=True) == "Access-Check-Result: Unauthorized"
    response = client.get(f"{AUTHZ}/roles", headers=basic("reader", "pw"))
    assert response.status_code == 200
    response = client.get(f"{AUTHZ}/roles", headers=basic("nobody", "pw"))
    assert response.status_code == 403
    # 403 comes before the 400 of an unknown authorizer.
    response = client.get(
        "/druid-ext/basic-security/authorization/db/x/roles",
        headers=basic("nobody", "pw"),
    )
    assert response.status_code == 403


def test_initial_password_never_changes_an_existing_one(
    settings: Settings, db: Database
) -> None:
    auth_app(settings, db)
    changed = auth_app(settings, db, auth_initial_admin_password="another")
    client = changed.test_client()
    assert client.get("/status", headers=ADMIN).status_code == 200
    assert client.get("/status", headers=basic("admin", "another")).status_code == 401


# ------------------------------------------------------------------------ CLI


def _cli(url: str, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "overlord", "auth", *args, "--database-url", url],
        env=overlord_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stdout, result.stderr


def test_cli_manages_users_roles_and_permissions(
    database_url: str, settings: Settings, db: Database, tmp_path: Path
) -> None:
    url = database_url
    assert _cli(url, "create-user", "u", "--password-stdin", stdin="pw:x\n")[0] == 0
    assert _cli(url, "create-user", "u") == (
        1,
        "",
        "Error: User [u] already exists.\n",
    )
    assert _cli(url, "create-role", "r")[0] == 0
    assert _cli(url, "create-role", "r") == (1, "", "Error: Role [r] already exists.\n")
    assert _cli(url, "assign", "u", "nope") == (
        1,
        "",
        "Error: Role [nope] does not exist.\n",
    )
    assert _cli(url, "assign", "u", "r")[0] == 0
    assert _cli(url, "assign", "u", "r") == (
        1,
        "",
        "Error: User [u] already has role [r].\n",
    )
    assert _cli(url, "grant", "r", "DATASOURCE", "(", "READ") == (
        1,
        "",
        "Error: Invalid permission, resource name regex[(] does not compile.\n",
    )
    assert _cli(url, "grant", "r", "STATE", ".*", "read")[0] == 0
    perms = tmp_path / "perms.json"
    perms.write_text(
        json.dumps(
            [
                {
                    "resource": {"type": "DATASOURCE", "name": "wiki.*"},
                    "action": "READ",
                },
                {"resource": {"type": "STATE", "name": "STATE"}, "action": "READ"},
            ]
        )
    )
    assert _cli(url, "set-permissions", "r", "--file", str(perms))[0] == 0
    status, out, err = _cli(url, "list", "--json")
    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "users": {"u": {"roles": ["r"], "hasPassword": True}},
        "roles": {
            "r": [
                {
                    "resource": {"name": "wiki.*", "type": "DATASOURCE"},
                    "action": "READ",
                },
                {"resource": {"name": "STATE", "type": "STATE"}, "action": "READ"},
            ]
        },
    }
    # The password works, with its colon, and the permissions are in force.
    client = auth_app(settings, db).test_client()
    assert client.get("/status", headers=basic("u", "pw:x")).status_code == 200
    assert _cli(url, "set-password", "u", "--password-stdin", stdin="new\n")[0] == 0
    assert client.get("/status", headers=basic("u", "pw:x")).status_code == 401
    assert client.get("/status", headers=basic("u", "new")).status_code == 200
    assert _cli(url, "unassign", "u", "r")[0] == 0
    assert client.get("/status", headers=basic("u", "new")).status_code == 403
    assert _cli(url, "delete-role", "r")[0] == 0
    assert _cli(url, "delete-user", "u")[0] == 0
    assert _cli(url, "delete-user", "u") == (1, "", "Error: User [u] does not exist.\n")
    assert client.get("/status", headers=basic("u", "new")).status_code == 401


def test_cli_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = run_overlord("auth", "list", "--database-url", url)
    assert result.returncode == 1
    assert result.stderr.endswith("run `overlord db upgrade` first\n")
