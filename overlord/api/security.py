"""The security seam at the HTTP edge (issue 12; spec security.md §1, §3, §6.1).

Each route declares the check it needs, or that it is unsecured, where it is
registered (``check=`` in ``api/routes.py``; the kinds are in ``api/checks.py``);
app creation fails on a route without one. At run time an endpoint added without a
declaration is refused, as Druid's PreResponseAuthorizationCheckFilter refuses a
route that recorded no check.

With ``auth_enabled`` off nothing is installed (no hook at all: the health check
and the status polls are hot paths). With it on, one ``before_request`` runs in
Druid's order: unsecured paths → authentication (401, even on unknown paths) →
the route's check: a task route looks the task up first (404 before 403). The
checks that need the parsed body or the rows run in their views: submit (400
before 403) and the task lists (filtered per row after ``max``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, g, request

from overlord.api import routes
from overlord.api.checks import (
    Check,
    ClusterAction,
    Fixed,
    InternalOrState,
    PathDatasource,
    TaskResource,
    Unsecured,
)
from overlord.api.errors import TextAccessDenied
from overlord.api.responses import JSON, dumps
from overlord.api.state import EXTENSION, database, settings
from overlord.config import Settings
from overlord.errors import AccessDenied
from overlord.services import auth as auth_service
from overlord.services.auth import (
    CLUSTER,
    DATASOURCE,
    INTERNAL_USER,
    READ,
    STATE,
    WRITE,
    Outcome,
    PasswordVerifier,
    Principal,
    ResourceAction,
    TtlCache,
)
from overlord.services.opensearch import ErrorCause, OpenSearchError
from overlord.timeutil import utcnow

# ------------------------------------------------------------------- the answers

CHALLENGE = "Basic"
OPENSEARCH_CHALLENGE = 'Basic realm="OpenSearch Security"'
UNAUTHORIZED = "Unauthorized"
AUTHENTICATION_FAILED = "User authentication failed."


def _druid_challenge() -> Response:
    """No usable credentials: PreResponseAuthorizationCheckFilter's 401, with one
    challenge per challenging authenticator (the basic one)."""
    response = Response(
        dumps(
            {
                "error": "Unauthorized request",
                "errorMessage": None,
                "errorClass": None,
                "host": _state().host,
            }
        ),
        status=401,
        mimetype=JSON,
    )
    response.headers["WWW-Authenticate"] = CHALLENGE
    return response


def _jetty_error(message: str, status: int = 401) -> Response:
    """``HttpServletResponse.sendError`` through Jetty's ErrorHandler: the format
    follows ``Accept``; no challenge header, never the user name."""
    uri = request.path
    kind = _error_page_kind()
    if kind == "html":
        escaped = html.escape(message)
        body = (
            '<html>\n<head>\n<meta http-equiv="Content-Type" '
            'content="text/html;charset=ISO-8859-1"/>\n'
            f"<title>Error {status} {escaped}</title>\n</head>\n<body>\n"
            f"<h2>HTTP ERROR {status} {escaped}</h2>\n<table>\n"
            f"<tr><th>URI:</th><td>{html.escape(uri)}</td></tr>\n"
            f"<tr><th>STATUS:</th><td>{status}</td></tr>\n"
            f"<tr><th>MESSAGE:</th><td>{escaped}</td></tr>\n"
            "</table>\n\n</body>\n</html>\n"
        )
        response = Response(body, status=status)
        response.headers["Content-Type"] = "text/html;charset=iso-8859-1"
    elif kind == "json":
        # Jetty's writeErrorJson: quoted pairs, one per line.
        pairs = (("url", uri), ("status", str(status)), ("message", message))
        body = (
            "{\n"
            + ",\n".join(
                f"{json.dumps(key)}:{json.dumps(value)}" for key, value in pairs
            )
            + "\n}"
        )
        response = Response(body, status=status)
        response.headers["Content-Type"] = "application/json"
    elif kind == "text":
        body = (
            f"HTTP ERROR {status} {message}\nURI: {uri}\nSTATUS: {status}\n"
            f"MESSAGE: {message}\n"
        )
        response = Response(body, status=status)
        response.headers["Content-Type"] = "text/plain;charset=iso-8859-1"
    else:
        response = Response(b"", status=status)
        del response.headers["Content-Type"]
    response.headers["Cache-Control"] = "must-revalidate,no-cache,no-store"
    return response


def _error_page_kind() -> str:
    """Jetty's ErrorHandler picks the first acceptable type in quality order."""
    accept = request.headers.get("Accept")
    if not accept:
        return "html"
    for value, _ in request.accept_mimetypes:
        kind = value.lower()
        if kind in ("text/html", "text/*", "*/*"):
            return "html"
        if kind in ("application/json", "text/json"):
            return "json"
        if kind == "text/plain":
            return "text"
    return "none"


def _opensearch_challenge() -> Response:
    """OpenSearch's security plugin: the same 401 for missing or wrong credentials."""
    response = Response(
        UNAUTHORIZED, status=401, content_type="text/plain; charset=UTF-8"
    )
    response.headers["WWW-Authenticate"] = OPENSEARCH_CHALLENGE
    return response


def _opensearch_denied(action: str, principal: Principal) -> OpenSearchError:
    # Overlord's roles are the plugin's security roles, not backend roles: [].
    reason = (
        f"no permissions for [{action}] and User [name={principal.name}, "
        "backend_roles=[], requestedTenant=null]"
    )
    return OpenSearchError(ErrorCause("security_exception", reason), 403)


# ---------------------------------------------------------------- per-app state


@dataclass
class SecurityState:
    verifier: PasswordVerifier
    principals: TtlCache[str, Principal | None]
    # Successful authentications by SHA-256(pepper ∥ surface ∥ header): a poll
    # with the same header skips the decode, the lookups and the verification.
    # Never the header itself (it holds the password).
    logins: TtlCache[bytes, Principal]
    pepper: bytes
    task_datasources: TtlCache[str, str]
    unsecured: frozenset[str]
    unsecured_prefixes: tuple[str, ...]
    host: str


def _state() -> SecurityState:
    state: SecurityState = current_app.extensions[EXTENSION]["security"]
    return state


def install(app: Flask, current: Settings) -> None:
    """With auth on: seed the initial users (idempotent) and add the hook."""
    if not current.auth_enabled:
        return
    paths = [p.strip() for p in current.auth_unsecured_paths.split(",") if p.strip()]
    ttl = current.auth_cache_ttl.total_seconds()
    app.extensions[EXTENSION]["security"] = SecurityState(
        verifier=PasswordVerifier(),
        principals=TtlCache(ttl),
        logins=TtlCache(ttl),
        pepper=secrets.token_bytes(32),
        # A task's datasource never changes; the TTL only bounds a reused id.
        task_datasources=TtlCache(ttl),
        unsecured=frozenset(p for p in paths if not p.endswith("*")),
        unsecured_prefixes=tuple(p[:-1] for p in paths if p.endswith("*")),
        host=socket.getfqdn(),
    )
    db = app.extensions[EXTENSION]["database"]
    db.run(
        lambda session: auth_service.seed_initial_users(
            session,
            admin_password=current.auth_initial_admin_password,
            internal_password=current.auth_initial_internal_client_password,
            now=utcnow(),
        ),
        write=True,
    )
    app.before_request(_check_request)


def _is_opensearch(path: str) -> bool:
    return path == "/" or path.startswith("/_")


def _principal(name: str) -> Principal | None:
    return _state().principals.get(
        name,
        lambda: database().run(
            lambda session: auth_service.load_principal(session, name)
        ),
    )


def _anonymous() -> Principal | None:
    name = settings().auth_anonymous_identity
    if not name:
        return None
    return _principal(name) or Principal(name, None, ())


def _credentials(opensearch: bool) -> tuple[str, str] | bool | None:
    """(user, password) from ``Authorization``; None = no credentials (the scheme
    is absent or not Basic); False = a Basic header that cannot be read."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    if opensearch:
        # HTTPHelper: trimmed, "basic " in any case, the second space-separated part.
        trimmed = header.strip()
        if not trimmed.lower().startswith("basic "):
            return None
        parts = trimmed.split(" ")
        encoded = parts[1] if len(parts) > 1 else ""
    else:
        # BasicHTTPAuthenticator: exactly "Basic " (case-sensitive, one space).
        if len(header) < 7 or not header.startswith("Basic "):
            return None
        encoded = header[6:]
    decoded = _base64(encoded)
    if decoded is None:
        return False
    text = decoded.decode("utf-8", errors="replace")
    user, colon, password = text.partition(":")  # first colon (Druid PR #15109)
    if not colon or (opensearch and not user):
        return False
    return user, password


def _base64(encoded: str) -> bytes | None:
    """Java's basic Base64 decoder: the standard alphabet, padding optional but
    exact when present."""
    if len(encoded) % 4 == 1:
        return None
    if "=" not in encoded:
        encoded += "=" * (-len(encoded) % 4)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _authenticate(opensearch: bool) -> Principal | Response:
    header = request.headers.get("Authorization")
    if header is None:
        return _login(opensearch)
    state = _state()
    key = hashlib.sha256(
        state.pepper + (b"o" if opensearch else b"d") + header.encode("utf-8")
    ).digest()
    cached = state.logins.peek(key)
    if cached is not None:
        return cached
    result = _login(opensearch)
    if isinstance(result, Principal) and result.credentials is not None:
        state.logins.put(key, result)
    return result


def _login(opensearch: bool) -> Principal | Response:
    current = settings()
    credentials = _credentials(opensearch)
    if credentials is None:
        anonymous = _anonymous()
        if anonymous is not None:
            return anonymous
        return _opensearch_challenge() if opensearch else _druid_challenge()
    if credentials is False:
        return _opensearch_challenge() if opensearch else _jetty_error(UNAUTHORIZED)
    assert isinstance(credentials, tuple)
    user, password = credentials
    principal = _principal(user)
    outcome = auth_service.authenticate(principal, password, _state().verifier)
    if outcome is Outcome.AUTHENTICATED:
        assert principal is not None
        return principal
    if outcome is Outcome.UNKNOWN_USER and current.auth_skip_on_failure:
        anonymous = _anonymous()
        if anonymous is not None:
            return anonymous
    if opensearch:
        return _opensearch_challenge()
    if outcome is Outcome.WRONG_PASSWORD:
        return _jetty_error(AUTHENTICATION_FAILED)
    return _jetty_error(UNAUTHORIZED)


def _unsecured_path(path: str) -> bool:
    state = _state()
    return path in state.unsecured or any(
        path.startswith(prefix) for prefix in state.unsecured_prefixes
    )


def _method_action() -> str:
    return READ if request.method in ("GET", "HEAD") else WRITE


def _check_request() -> Response | None:
    rule = request.url_rule
    check = routes.check_of(rule.endpoint) if rule is not None else None
    if isinstance(check, Unsecured) or _unsecured_path(request.path):
        return None
    result = _authenticate(_is_opensearch(request.path))
    if isinstance(result, Response):
        return result
    g.principal = result
    g.identity = result.name
    if rule is None or request.method == "OPTIONS":
        # An unknown path or method answers its 404/405 once authenticated; OPTIONS
        # only lists the methods.
        return None
    if check is None:
        # Druid's safety net: a route that never recorded a check is refused.
        return Response(b"", status=403)
    _authorize_route(check, result)
    return None


def _authorize_route(check: Check, principal: Principal) -> None:
    args: dict[str, Any] = request.view_args or {}
    if isinstance(check, Fixed):
        action = check.action or _method_action()
        if not principal.allows(check.resource_type, check.name, action):
            raise TextAccessDenied() if check.text else AccessDenied()
    elif isinstance(check, TaskResource):
        task_id = str(args["task_id"])
        if request.endpoint == "druid.get_task" and task_id.endswith("/shutdown"):
            return  # the view answers 405 (Jersey routes before the filters)
        datasource = _state().task_datasources.get(
            task_id,
            lambda: database().run(
                lambda session: auth_service.task_datasource(session, task_id)
            ),
        )
        if not principal.allows(
            DATASOURCE, datasource, check.action or _method_action()
        ):
            raise AccessDenied()
    elif isinstance(check, PathDatasource):
        name = str(args[check.argument])
        for action in check.actions or (_method_action(),):
            if not principal.allows(DATASOURCE, name, action):
                raise AccessDenied()
    elif isinstance(check, InternalOrState):
        if principal.name != INTERNAL_USER and not principal.allows(
            STATE, "STATE", WRITE
        ):
            raise AccessDenied()
    elif isinstance(check, ClusterAction):
        action = READ if check.name.startswith("cluster:monitor/") else WRITE
        if not principal.allows(CLUSTER, check.name, action):
            raise _opensearch_denied(check.name, principal)


# ------------------------------------------------------------- checks in views


def identity() -> str | None:
    """The authenticated identity (None with auth off), for the audit log."""
    value: str | None = g.get("identity")
    return value


def submit_authorizer() -> Callable[[str, dict[str, Any], str], None] | None:
    """The check ``POST /task`` runs once the body is parsed, before storing it;
    None with auth off."""
    principal: Principal | None = g.get("principal")
    if principal is None:
        return None
    input_security = settings().auth_enable_input_source_security

    def authorize(type_name: str, document: dict[str, Any], datasource: str) -> None:
        needed: list[ResourceAction] = auth_service.submit_resource_actions(
            type_name, document, datasource, input_source_security=input_security
        )
        # Evaluated in turn; the first denial wins (AuthorizationUtils).
        for item in needed:
            if not principal.allows(item.resource_type, item.name, item.action):
                raise AccessDenied()

    return authorize


def datasource_filter(datasource: str | None = None) -> Callable[[str], bool] | None:
    """For the task lists: None when every row is shown (auth off, or a
    ``datasource=`` the caller may READ: checked here first, text/plain 403);
    otherwise a predicate keeping rows whose datasource the caller may READ
    (AuthorizationUtils.filterAuthorizedResources, cached per datasource)."""
    principal: Principal | None = g.get("principal")
    if principal is None:
        return None
    if datasource is not None:
        if not principal.allows(DATASOURCE, datasource, READ):
            raise TextAccessDenied()
        return None
    seen: dict[str, bool] = {}

    def readable(name: str) -> bool:
        allowed = seen.get(name)
        if allowed is None:
            allowed = seen[name] = principal.allows(DATASOURCE, name, READ)
        return allowed

    return readable
