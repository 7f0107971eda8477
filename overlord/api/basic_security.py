"""Druid's basic-security management API (spec security.md §1.8), so users, roles
and permissions are scriptable over HTTP: ``/druid-ext/basic-security/…``.

Every route needs CONFIG ``security`` READ (GET) or WRITE (the rest), refused with
Druid's text/plain 403 (BasicSecurityResourceFilter: ``SECURITY_RESOURCE`` on each
route). Successes are empty 200s unless stated; refusals are 400
``{"error": …}`` with Druid's texts. One user list serves the authenticator and the
authorizer paths (spec §6.1 item 2): creating a user on the authorization side
when the authentication side already made it is therefore a no-op, so Druid's
documented two-step set-up scripts keep working.
"""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, Response, request

from overlord.api import routes
from overlord.api.checks import SECURITY_RESOURCE
from overlord.api.docs import OBJECT, STRING, Operation, any_answer
from overlord.api.parsing import read_json_body
from overlord.api.responses import empty_response, json_response
from overlord.api.state import database, settings
from overlord.errors import InvalidInput
from overlord.services import auth as auth_service
from overlord.timeutil import utcnow

bp = Blueprint("basic_security", __name__, url_prefix="/druid-ext/basic-security")

AUTHENTICATOR = "basic"
AUTHORIZER = "basic"
AUTHN = "/authentication/db/<authenticator>"
AUTHZ = "/authorization/db/<authorizer>"


def _doc(summary: str, body: dict[str, Any] | None = None) -> Operation:
    return Operation(
        summary,
        "Druid basic security",
        {
            "200": any_answer("Done."),
            "400": any_answer("Refused."),
            "404": any_answer("Unknown authenticator, authorizer, user or role."),
        },
        body=body,
    )


def _authenticator(name: str) -> None:
    if name != AUTHENTICATOR:
        raise InvalidInput(f"Basic authenticator with name [{name}] does not exist.")


def _authorizer(name: str) -> None:
    if name != AUTHORIZER:
        raise InvalidInput(f"Basic authorizer with name [{name}] does not exist.")


def _ok() -> Response:
    return empty_response(200)


# ------------------------------------------------------------------ authentication


@routes.get(
    bp,
    "/authentication/loadStatus",
    check=SECURITY_RESOURCE,
    doc=_doc("Whether the authenticators' caches are loaded."),
)
def authentication_load_status() -> Response:
    return json_response({AUTHENTICATOR: True})


@routes.get(
    bp,
    f"{AUTHN}/users",
    check=SECURITY_RESOURCE,
    doc=_doc("Users of an authenticator."),
)
def authentication_users(authenticator: str) -> Response:
    _authenticator(authenticator)
    return json_response(database().run(auth_service.list_users))


@routes.get(
    bp,
    f"{AUTHN}/users/<user>",
    check=SECURITY_RESOURCE,
    doc=_doc("One user of an authenticator."),
)
def authentication_user(authenticator: str, user: str) -> Response:
    _authenticator(authenticator)

    def read(session: Any) -> Any:
        stored = auth_service.get_user(session, user)
        if stored is None:
            raise InvalidInput(f"User [{user}] does not exist.")
        return stored

    stored = database().run(read)
    credentials = None
    if stored.credentials is not None:
        credentials = {
            "salt": base64.b64encode(stored.credentials.salt).decode("ascii"),
            "hash": base64.b64encode(stored.credentials.hash).decode("ascii"),
            "iterations": stored.credentials.iterations,
        }
    return json_response({"name": user, "credentials": credentials})


@routes.post(
    bp, f"{AUTHN}/users/<user>", check=SECURITY_RESOURCE, doc=_doc("Create a user.")
)
def authentication_create_user(authenticator: str, user: str) -> Response:
    _authenticator(authenticator)
    database().run(
        lambda session: auth_service.create_user(session, user, utcnow()), write=True
    )
    return _ok()


@routes.delete(
    bp, f"{AUTHN}/users/<user>", check=SECURITY_RESOURCE, doc=_doc("Delete a user.")
)
def authentication_delete_user(authenticator: str, user: str) -> Response:
    _authenticator(authenticator)
    database().run(lambda session: auth_service.delete_user(session, user), write=True)
    return _ok()


@routes.post(
    bp,
    f"{AUTHN}/users/<user>/credentials",
    check=SECURITY_RESOURCE,
    doc=_doc(
        "Set a user's password.", {"type": "object", "properties": {"password": STRING}}
    ),
)
def authentication_set_credentials(authenticator: str, user: str) -> Response:
    _authenticator(authenticator)
    document = read_json_body(request)
    if not isinstance(document, dict):
        raise InvalidInput("Invalid credentials update: expected a JSON object")
    password = document.get("password")
    if password is None:
        raise InvalidInput("Cannot assign null password.")
    if not isinstance(password, str):
        raise InvalidInput("Invalid credentials update: password must be a string")
    iterations = document.get("iterations")
    if iterations is None:
        iterations = settings().auth_credential_iterations
    if not isinstance(iterations, int) or isinstance(iterations, bool):
        raise InvalidInput("Invalid credentials update: iterations must be an integer")
    database().run(
        lambda session: auth_service.set_password(
            session, user, password, iterations, utcnow()
        ),
        write=True,
    )
    return _ok()


# ------------------------------------------------------------------- authorization


@routes.get(
    bp,
    "/authorization/loadStatus",
    check=SECURITY_RESOURCE,
    doc=_doc("Whether the authorizers' caches are loaded."),
)
def authorization_load_status() -> Response:
    return json_response({AUTHORIZER: True})


@routes.get(
    bp, f"{AUTHZ}/users", check=SECURITY_RESOURCE, doc=_doc("Users of an authorizer.")
)
def authorization_users(authorizer: str) -> Response:
    _authorizer(authorizer)
    return json_response(database().run(auth_service.list_users))


@routes.get(
    bp, f"{AUTHZ}/roles", check=SECURITY_RESOURCE, doc=_doc("Roles of an authorizer.")
)
def authorization_roles(authorizer: str) -> Response:
    _authorizer(authorizer)
    return json_response(database().run(auth_service.list_roles))


def _role_document(session: Any, role: str) -> dict[str, Any]:
    """A role as Druid's GET …/roles/{r} shows it; ``full`` and
    ``simplifyPermissions`` act by presence."""
    permissions = auth_service.get_role_permissions(session, role)
    full = "full" in request.args
    if "simplifyPermissions" in request.args:
        return {
            "name": role,
            "users": auth_service.get_role_users(session, role) if full else None,
            "permissions": [auth_service.permission_document(p) for p in permissions],
        }
    document: dict[str, Any] = {
        "name": role,
        "permissions": [_full_permission(p) for p in permissions],
    }
    if full:
        document["users"] = auth_service.get_role_users(session, role)
    return document


def _full_permission(permission: auth_service.PermissionRow) -> dict[str, Any]:
    return {
        "resourceAction": auth_service.permission_document(permission),
        "resourceNamePattern": permission.resource_name,
    }


@routes.get(
    bp,
    f"{AUTHZ}/users/<user>",
    check=SECURITY_RESOURCE,
    doc=_doc("One user and its roles."),
)
def authorization_user(authorizer: str, user: str) -> Response:
    _authorizer(authorizer)

    def read(session: Any) -> dict[str, Any]:
        roles = auth_service.get_user_roles(session, user)
        if "full" in request.args:
            return {
                "name": user,
                "roles": [_role_document(session, role) for role in roles],
            }
        return {"name": user, "roles": roles}

    return json_response(database().run(read))


@routes.post(
    bp,
    f"{AUTHZ}/users/<user>",
    check=SECURITY_RESOURCE,
    doc=_doc("Create a user (authorization side)."),
)
def authorization_create_user(authorizer: str, user: str) -> Response:
    _authorizer(authorizer)

    # Made on the authentication side already: one list serves both.
    database().run(
        lambda session: auth_service.create_user_if_absent(session, user, utcnow()),
        write=True,
    )
    return _ok()


@routes.delete(
    bp,
    f"{AUTHZ}/users/<user>",
    check=SECURITY_RESOURCE,
    doc=_doc("Delete a user (authorization side)."),
)
def authorization_delete_user(authorizer: str, user: str) -> Response:
    _authorizer(authorizer)
    database().run(lambda session: auth_service.delete_user(session, user), write=True)
    return _ok()


@routes.get(bp, f"{AUTHZ}/roles/<role>", check=SECURITY_RESOURCE, doc=_doc("One role."))
def authorization_role(authorizer: str, role: str) -> Response:
    _authorizer(authorizer)
    return json_response(database().run(lambda session: _role_document(session, role)))


@routes.post(
    bp, f"{AUTHZ}/roles/<role>", check=SECURITY_RESOURCE, doc=_doc("Create a role.")
)
def authorization_create_role(authorizer: str, role: str) -> Response:
    _authorizer(authorizer)
    database().run(
        lambda session: auth_service.create_role(session, role, utcnow()), write=True
    )
    return _ok()


@routes.delete(
    bp, f"{AUTHZ}/roles/<role>", check=SECURITY_RESOURCE, doc=_doc("Delete a role.")
)
def authorization_delete_role(authorizer: str, role: str) -> Response:
    _authorizer(authorizer)
    database().run(lambda session: auth_service.delete_role(session, role), write=True)
    return _ok()


@routes.post(
    bp,
    f"{AUTHZ}/users/<user>/roles/<role>",
    check=SECURITY_RESOURCE,
    doc=_doc("Assign a role to a user."),
)
def authorization_assign_role(authorizer: str, user: str, role: str) -> Response:
    _authorizer(authorizer)
    database().run(
        lambda session: auth_service.assign_role(session, user, role), write=True
    )
    return _ok()


@routes.delete(
    bp,
    f"{AUTHZ}/users/<user>/roles/<role>",
    check=SECURITY_RESOURCE,
    doc=_doc("Take a role from a user."),
)
def authorization_unassign_role(authorizer: str, user: str, role: str) -> Response:
    _authorizer(authorizer)
    database().run(
        lambda session: auth_service.unassign_role(session, user, role), write=True
    )
    return _ok()


@routes.get(
    bp,
    f"{AUTHZ}/roles/<role>/permissions",
    check=SECURITY_RESOURCE,
    doc=_doc("A role's permissions."),
)
def authorization_role_permissions(authorizer: str, role: str) -> Response:
    _authorizer(authorizer)
    permissions = database().run(
        lambda session: auth_service.get_role_permissions(session, role)
    )
    return json_response([_full_permission(p) for p in permissions])


@routes.post(
    bp,
    f"{AUTHZ}/roles/<role>/permissions",
    check=SECURITY_RESOURCE,
    doc=_doc("Replace a role's permissions.", {"type": "array", "items": OBJECT}),
)
def authorization_set_permissions(authorizer: str, role: str) -> Response:
    _authorizer(authorizer)
    permissions = auth_service.parse_permissions(read_json_body(request))
    database().run(
        lambda session: auth_service.set_permissions(session, role, permissions),
        write=True,
    )
    return _ok()
