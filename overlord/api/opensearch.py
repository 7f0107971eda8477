"""OpenSearch's task management API over the Druid tasks (spec opensearch-tasks.md):
``/_tasks``, ``/_tasks/{id}``, ``/_tasks[/{id}]/_cancel``, ``/_cat/tasks``, ``/`` and
``/_nodes``, on the same port as the Druid API.

Each view: strict parameters → one short transaction around a service call → dump,
with OpenSearch's error envelope. Waits (``wait_for_completion``) poll in short
transactions, never holding one open, and at most ``opensearch_max_waits`` run at
once per process. Never imports the store.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import socket
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from overlord.api import checks, docs, routes
from overlord.api.checks import AuthenticatedOnly, Check, ClusterAction
from overlord.api.docs import (
    OBJECT,
    OPENSEARCH_ERROR,
    OPENSEARCH_PARAMS,
    Operation,
    Param,
    any_answer,
    json_answer,
)
from overlord.api.state import EXTENSION, audit_info, database, settings
from overlord.errors import DatabaseBusy, OverlordError
from overlord.schemas import opensearch as schemas
from overlord.services import opensearch as service
from overlord.services.opensearch import (
    BareOpenSearchError,
    ErrorCause,
    Node,
    OpenSearchError,
    TaskFailure,
    TaskFilter,
    TaskInfo,
    TasksResult,
)
from overlord.timeutil import utcnow

bp = Blueprint("opensearch", __name__)

JSON_TYPE = "application/json; charset=UTF-8"
TEXT_TYPE = "text/plain; charset=UTF-8"
OPAQUE_ID = "X-Opaque-Id"
_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")


# --------------------------------------------------------------------- per-app state


def _state() -> dict[str, Any]:
    value: dict[str, Any] = current_app.extensions[EXTENSION]
    return value


def node() -> Node:
    """This installation's node: its id from the store (read once per process),
    its address from the settings."""
    cached: Node | None = _state().get("opensearch_node")
    if cached is None:
        current = settings()
        address = urllib.parse.urlsplit(current.leader_url)
        host = address.hostname or current.host
        port = address.port or current.port
        ip = _ipv4(host)
        cached = database().run(
            lambda session: service.load_node(session, host=host, ip=ip, port=port)
        )
        _state()["opensearch_node"] = cached
    return cached


def _ipv4(host: str) -> str:
    # _cat/tasks shows the node's IPv4 address (the YAML test matches one).
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    try:
        return socket.gethostbyname(host)
    except OSError:
        return "127.0.0.1"


def _wait_slots() -> threading.BoundedSemaphore:
    slots: threading.BoundedSemaphore | None = _state().get("opensearch_waits")
    if slots is None:
        slots = _state().setdefault(
            "opensearch_waits",
            # 0 refuses every wait.
            threading.BoundedSemaphore(max(settings().opensearch_max_waits, 0)),
        )
    return slots


# ----------------------------------------------------------------- request and reply


@bp.before_request
def _read_opaque_id() -> None:
    # RestController refuses two different values before any handler runs. WSGI
    # servers (granian, gunicorn, Werkzeug) join repeated header lines with a comma,
    # so a value holding a comma cannot be told from two lines: differing parts are
    # refused, equal parts are one value.
    g.opaque_id = None
    raw = request.headers.get(OPAQUE_ID)
    if raw is None:
        return
    parts = list(dict.fromkeys(part.strip() for part in raw.split(",")))
    if len(parts) > 1:
        raise BareOpenSearchError(
            f"multiple values for single-valued header [{OPAQUE_ID}].", 400
        )
    g.opaque_id = parts[0]


@bp.after_request
def _echo_headers(response: Response) -> Response:
    # DefaultRestChannel puts the caller's X-Opaque-Id on every response.
    opaque_id = getattr(g, "opaque_id", None)
    if opaque_id is not None:
        response.headers[OPAQUE_ID] = opaque_id
    if settings().elastic_product_header:
        # elasticsearch-py 8/9 refuse a 2xx without it (opt-in: it names Elastic).
        response.headers["X-Elastic-Product"] = "Elasticsearch"
    return response


def _flag(name: str) -> bool:
    """A REST-channel flag for error bodies (errors are never filtered)."""
    return request.args.get(name) in ("", "true")


def _jackson_pretty(value: Any, depth: int = 0) -> str:
    """OpenSearch's pretty printer: two-space indents, ``"key" : value``, empty
    containers as ``{ }`` and ``[ ]``, arrays one element per line."""
    inner, outer = "  " * (depth + 1), "  " * depth
    if isinstance(value, dict):
        if not value:
            return "{ }"
        items = [
            f"{inner}{json.dumps(k, ensure_ascii=False)} : "
            f"{_jackson_pretty(v, depth + 1)}"
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + outer + "}"
    if isinstance(value, list):
        if not value:
            return "[ ]"
        items = [inner + _jackson_pretty(v, depth + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + outer + "]"
    return json.dumps(value, ensure_ascii=False)


def _json_text(document: Any, pretty: bool) -> str:
    if pretty:
        return _jackson_pretty(document) + "\n"
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def json_reply(document: Any, args: dict[str, Any], status: int = 200) -> Response:
    if args.get("filter_path"):
        document = filter_path(document, service.split_commas(args["filter_path"]))
    return Response(
        _json_text(document, bool(args.get("pretty"))),
        status=status,
        content_type=JSON_TYPE,
    )


# --------------------------------------------------------------------- filter_path


def _advance(patterns: list[list[str]], key: str) -> tuple[bool, list[list[str]]]:
    """Match one key against path patterns: (whole subtree selected, patterns left
    for the children). ``*`` works within a name, ``**`` across levels."""
    whole = False
    rest: list[list[str]] = []
    for pattern in patterns:
        if not pattern:
            continue
        head, tail = pattern[0], pattern[1:]
        if head == "**":
            if not tail:
                whole = True
                continue
            rest.append(pattern)
            matched, deeper = _advance([tail], key)
            whole = whole or matched
            rest.extend(deeper)
        elif service.simple_match([head], key):
            if tail:
                rest.append(tail)
            else:
                whole = True
    return whole, rest


def _include(value: Any, patterns: list[list[str]]) -> Any:
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for key, inner in value.items():
            whole, rest = _advance(patterns, key)
            if whole:
                kept[key] = inner
            elif rest:
                filtered = _include(inner, rest)
                if filtered is not None:
                    kept[key] = filtered
        return kept or None
    if isinstance(value, list):
        items = [item for item in (_include(v, patterns) for v in value) if item]
        return items or None
    return None


def _exclude(value: Any, patterns: list[list[str]]) -> Any:
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for key, inner in value.items():
            whole, rest = _advance(patterns, key)
            if not whole:
                kept[key] = _exclude(inner, rest) if rest else inner
        return kept
    if isinstance(value, list):
        return [_exclude(item, patterns) for item in value]
    return value


def filter_path(document: Any, expressions: list[str]) -> Any:
    """``?filter_path=a.*.b,-c``: keep what the inclusions name, then drop what
    the exclusions (``-``) name; nothing left is ``{}``."""
    includes = [e.split(".") for e in expressions if e and not e.startswith("-")]
    excludes = [e[1:].split(".") for e in expressions if e.startswith("-") and e[1:]]
    if includes:
        document = _include(document, includes)
        if document is None:
            return {}
    if excludes:
        document = _exclude(document, excludes)
    return document


# --------------------------------------------------------------------------- errors


def _stack_trace(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


def _error_document(cause: ErrorCause, error: BaseException) -> dict[str, Any]:
    """``OpenSearchException.generateFailureXContent``: root_cause first (without
    their causes), then the error itself."""
    trace = _flag("error_trace")
    root = schemas.dump_error_cause(cause.root_cause(), skip_cause=True)
    body = schemas.dump_error_cause(cause)
    if trace:
        root["stack_trace"] = body["stack_trace"] = _stack_trace(error)
    return {"root_cause": [root], **body}


def _error_reply(
    document: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> Response:
    response = Response(
        _json_text(document, _flag("pretty")),
        status=status,
        content_type=JSON_TYPE,
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@bp.errorhandler(OpenSearchError)
def _render_opensearch_error(error: OpenSearchError) -> Response:
    return _error_reply(
        {"error": _error_document(error.cause, error), "status": error.status},
        error.status,
    )


@bp.errorhandler(BareOpenSearchError)
def _render_bare_error(error: BareOpenSearchError) -> Response:
    headers = {"Allow": ",".join(error.allow)} if error.allow else None
    return _error_reply(
        {"error": error.message, "status": error.status}, error.status, headers
    )


@bp.errorhandler(OverlordError)
def _render_overlord_error(error: OverlordError) -> Response:
    if isinstance(error, DatabaseBusy):
        # opensearch-py retries 503 on its own.
        cause = ErrorCause("status_exception", error.message)
        return _error_reply(
            {"error": _error_document(cause, error), "status": 503},
            503,
            {"Retry-After": "1"},
        )
    cause = ErrorCause("exception", error.message, opensearch=False)
    return _error_reply({"error": _error_document(cause, error), "status": 500}, 500)


@bp.errorhandler(HTTPException)
def _render_http_error(error: HTTPException) -> Response:
    status = error.code or 500
    headers = {
        name: value
        for name, value in error.get_headers()
        if name.lower() != "content-type"
    }
    return _error_reply(
        {"error": error.description or error.name, "status": status},
        status,
        headers,
    )


def _wrong_method(allowed: list[str]) -> Callable[..., Response]:
    def view(**_: Any) -> Response:
        query = request.query_string.decode("latin-1")
        uri = urllib.parse.quote(request.path, safe="/:,*@!$&'()+;=") + (
            f"?{query}" if query else ""
        )
        raise BareOpenSearchError(
            f"Incorrect HTTP method for uri [{uri}] and method [{request.method}], "
            f"allowed: [{', '.join(allowed)}]",
            405,
            allow=allowed,
        )

    return view


def _route(
    rule: str,
    methods: list[str],
    view: Callable[..., Response],
    *,
    allowed: list[str],
    check: Check,
    doc: Operation,
    elsewhere: tuple[str, ...] = (),
) -> None:
    """Register ``view`` and answer the other methods with OpenSearch's bare 405
    (Flask's routing 405 would take the Druid error shape). ``elsewhere``: methods
    another rule answers on this path."""
    routes.add(bp, rule, view, methods, check=check, doc=doc)
    taken = set(methods) | set(elsewhere) | ({"HEAD"} if "GET" in methods else set())
    others = [m for m in _METHODS if m not in taken]
    if others:
        routes.add(
            bp,
            rule,
            _wrong_method(allowed),
            others,
            check=checks.WRONG_METHOD,
            doc=docs.WRONG_METHOD,
            endpoint=f"wrong_method_{rule}",
        )


def _no_handler(rest: str = "") -> Response:
    raise BareOpenSearchError(
        f"no handler found for uri [{request.full_path.rstrip('?')}] and method "
        f"[{request.method}]",
        400,
    )


def _no_body() -> None:
    # BaseRestHandler: these handlers read no body (opensearch-py sends none).
    if request.get_data(cache=True):
        raise service.illegal_argument(
            f"request [{request.method} {request.path}] does not support having a body"
        )


def _load(schema: Any, *, consumed: frozenset[str] | None = None) -> dict[str, Any]:
    args: dict[str, Any] = schemas.load_args(
        schema, request.args, request.path, consumed=consumed
    )
    _no_body()
    return args


# ------------------------------------------------------------------------- waiting


def _wait_until(done: Callable[[], bool], deadline: float) -> bool:
    """Poll ``done`` (each call its own short transaction) until it holds or the
    deadline passes; True when it held. Holds one of the process's wait slots.

    Raises:
        OpenSearchError: every wait slot is taken (429, rejected execution).
    """
    if done():
        return True
    slots = _wait_slots()
    if not slots.acquire(blocking=False):
        raise service.rejected(
            "rejected execution of waiting for task completion: "
            f"{settings().opensearch_max_waits} waits already in progress on this "
            "server (opensearch_max_waits)"
        )
    try:
        while time.monotonic() < deadline:
            time.sleep(
                min(service.WAIT_POLL_SECONDS, max(deadline - time.monotonic(), 0))
            )
            if done():
                return True
        return False
    finally:
        slots.release()


def _deadline(timeout_nanos: int | None) -> float:
    if timeout_nanos is None:
        return time.monotonic() + settings().opensearch_wait_timeout.total_seconds()
    return time.monotonic() + max(timeout_nanos, 0) / 1e9


# ---------------------------------------------------------------------------- views


def list_tasks() -> Response:
    args = _load(schemas.ListTasksArgsSchema())
    group_by = service.check_group_by(args["group_by"])
    result = _list(args)
    return json_reply(
        schemas.dump_tasks_result(
            result,
            node(),
            group_by=group_by,
            detailed=args["detailed"],
            human=args["human"],
        ),
        args,
    )


def _list(args: dict[str, Any]) -> TasksResult:
    """The list request shared by ``_tasks`` and ``_cat/tasks``: a snapshot, then
    (``wait_for_completion``) the wait for its Druid tasks to finish."""
    current = node()
    flt = TaskFilter(
        nodes=args["nodes"], actions=args["actions"], parent=args["parent_task_id"]
    )
    own = service.ListRequest.begin(g.opaque_id)
    tasks = database().run(
        lambda session: service.list_tasks(
            session, current, flt, own, detailed=args["detailed"]
        )
    )
    if not args["wait_for_completion"]:
        return TasksResult(tasks)
    waiting: list[TaskInfo] = list(tasks)

    def finished() -> bool:
        nonlocal waiting
        waiting = database().run(
            lambda session: service.still_running(session, waiting)
        )
        return not waiting

    if _wait_until(finished, _deadline(args["timeout"])):
        return TasksResult(tasks)
    # The wait runs inside the node's operation: a timeout fails the node.
    return TasksResult(
        [],
        node_failures=[service.failed_node(current.id, service.timed_out(waiting[0]))],
    )


def get_task(task_id: str) -> Response:
    parsed = service.parse_task_id(task_id)
    args = _load(schemas.GetTaskArgsSchema())
    current = node()
    result = database().run(lambda session: service.get_task(session, current, parsed))
    if not result.completed and args["wait_for_completion"]:
        done = _wait_until(
            lambda: (
                not database().run(
                    lambda session: service.is_task_active(session, parsed.id)
                )
            ),
            _deadline(args["timeout"]),
        )
        if not done:
            # 500 until OpenSearch PR #22064 (2026) made it 504; we answer as 2.19
            # does, which opensearch-py does not retry.
            raise OpenSearchError(service.timed_out(result.task), 500)
        result = database().run(
            lambda session: service.get_task(session, current, parsed)
        )
    return json_reply(schemas.dump_get_result(result, human=args["human"]), args)


def cancel_tasks(task_id: str | None = None) -> Response:
    parsed_id = service.parse_task_id(task_id) if task_id is not None else service.UNSET
    args = _load(schemas.CancelTasksArgsSchema())
    group_by = service.check_group_by(args["group_by"])
    if parsed_id.is_set and args["nodes"]:
        raise service.validation_failed("task id cannot be used together with node ids")
    current = node()
    flt = TaskFilter(
        nodes=args["nodes"], actions=args["actions"], parent=args["parent_task_id"]
    )
    targets = database().run(
        lambda session: service.cancel_targets(session, current, flt, parsed_id)
    )
    result = TasksResult([])
    if targets.failure is not None:
        result.node_failures.append(targets.failure)
    info = audit_info()
    for number in targets.numbers:
        try:
            # One transaction per task (and its descendants): one failure does not
            # undo the others, and no lock is held across the whole cancel.
            cancelled = database().run(
                functools.partial(
                    service.cancel_task,
                    node=current,
                    number=number,
                    now=utcnow(),
                    audit=info,
                ),
                write=True,
            )
        except OverlordError as error:
            status = (
                "SERVICE_UNAVAILABLE"
                if isinstance(error, DatabaseBusy)
                else "INTERNAL_SERVER_ERROR"
            )
            result.task_failures.append(
                TaskFailure(
                    task_id=number,
                    node_id=current.id,
                    status=status,
                    reason=ErrorCause("exception", error.message, opensearch=False),
                )
            )
            continue
        if cancelled is not None:
            result.tasks.append(cancelled)
    # wait_for_completion: a Druid shutdown is final in its own transaction (the
    # task and its descendants are FAILED before the commit), so there is nothing
    # left to wait for.
    return json_reply(
        schemas.dump_tasks_result(
            result, current, group_by=group_by, detailed=False, human=args["human"]
        ),
        args,
    )


def cat_tasks() -> Response:
    help_args = schemas.CatHelpArgsSchema().load(request.args)
    if help_args["help"]:
        # With help the task list is never fetched: its params are unread.
        consumed = frozenset(schemas.CatHelpArgsSchema().fields) | frozenset(
            schemas.CAT_RESPONSE_PARAMS
        )
        args = _load(schemas.CatTasksArgsSchema(), consumed=consumed)
        return Response(
            schemas.cat_help(args["detailed"]), status=200, content_type=TEXT_TYPE
        )
    args = _load(schemas.CatTasksArgsSchema())
    result = _list(args)
    table = schemas.cat_tasks_table(
        result.tasks,
        node(),
        detailed=args["detailed"],
        h=args["h"],
        ts=args["ts"],
        s=args["s"],
        time_unit=args["time"],
    )
    if _structured(args["format"]):
        return json_reply(table.documents(), args)
    return Response(table.text(args["v"]), status=200, content_type=TEXT_TYPE)


def _structured(fmt: str | None) -> bool:
    """JSON when ``format=json`` (any case) or, without ``format``, an Accept of
    application/json; any other value is the text table."""
    if fmt is not None:
        return fmt.lower() == "json"
    accept = request.headers.get("Accept", "")
    return any(
        part.split(";")[0].strip().lower() == "application/json"
        for part in accept.split(",")
    )


def cluster_info() -> Response:
    args = _load(schemas.RestArgsSchema())
    return json_reply(schemas.dump_cluster_info(node()), args)


def nodes_info() -> Response:
    args = _load(schemas.NodesInfoArgsSchema())
    return json_reply(schemas.dump_node_info(node()), args)


# -------------------------------------------------------------- the declarations

_ANSWERS = {
    "400": OPENSEARCH_ERROR,
    "404": OPENSEARCH_ERROR,
    "408": OPENSEARCH_ERROR,
    "429": OPENSEARCH_ERROR,
}
_CANCEL = Operation(
    "Cancel tasks (OpenSearch's POST _tasks[/{id}]/_cancel).",
    "OpenSearch _tasks",
    {"200": json_answer(OBJECT, "Cancelled tasks by node."), **_ANSWERS},
    (
        *OPENSEARCH_PARAMS,
        Param("nodes"),
        Param("actions"),
        Param("parent_task_id"),
        Param("wait_for_completion"),
        Param("timeout"),
    ),
)
_CANCEL_CHECK = ClusterAction("cluster:admin/tasks/cancel")

_route(
    "/",
    ["GET"],
    cluster_info,
    allowed=["GET", "HEAD"],
    check=ClusterAction("cluster:monitor/main"),
    doc=Operation(
        "Cluster info (OpenSearch's GET /).",
        "OpenSearch _tasks",
        {"200": json_answer(OBJECT, "Info.")},
        OPENSEARCH_PARAMS,
    ),
)
_route(
    "/_nodes",
    ["GET"],
    nodes_info,
    allowed=["GET"],
    check=ClusterAction("cluster:monitor/nodes/info"),
    doc=Operation(
        "The one node.",
        "OpenSearch _tasks",
        {"200": json_answer(OBJECT, "Nodes."), "400": OPENSEARCH_ERROR},
        OPENSEARCH_PARAMS,
    ),
)
_route(
    "/_tasks",
    ["GET"],
    list_tasks,
    allowed=["GET"],
    check=ClusterAction("cluster:monitor/tasks/lists"),
    doc=Operation(
        "List tasks (OpenSearch's GET _tasks).",
        "OpenSearch _tasks",
        {"200": json_answer(OBJECT, "Tasks by node or parent."), **_ANSWERS},
        (
            *OPENSEARCH_PARAMS,
            Param("nodes"),
            Param("actions"),
            Param("parent_task_id"),
            Param("detailed"),
            Param("group_by"),
            Param("wait_for_completion"),
            Param("timeout"),
        ),
    ),
)
# GET /_tasks/_cancel is a GET of task "_cancel" (malformed id), as in OpenSearch.
_route(
    "/_tasks/_cancel",
    ["POST"],
    cancel_tasks,
    allowed=["GET", "POST"],
    elsewhere=("GET", "HEAD"),
    check=_CANCEL_CHECK,
    doc=_CANCEL,
)
_route(
    "/_tasks/<task_id>",
    ["GET"],
    get_task,
    allowed=["GET"],
    check=ClusterAction("cluster:monitor/task/get"),
    doc=Operation(
        "One task (OpenSearch's GET _tasks/{id}).",
        "OpenSearch _tasks",
        {"200": json_answer(OBJECT, "The task."), **_ANSWERS},
        (
            Param("task_id", "path"),
            *OPENSEARCH_PARAMS,
            Param("wait_for_completion"),
            Param("timeout"),
        ),
    ),
)
_route(
    "/_tasks/<task_id>/_cancel",
    ["POST"],
    cancel_tasks,
    allowed=["POST"],
    check=_CANCEL_CHECK,
    doc=_CANCEL,
)
_route(
    "/_cat/tasks",
    ["GET"],
    cat_tasks,
    allowed=["GET"],
    check=ClusterAction("cluster:monitor/tasks/lists"),
    doc=Operation(
        "Tasks as a table (OpenSearch's _cat/tasks).",
        "OpenSearch _tasks",
        {
            "200": any_answer("Text table, or JSON with format=json."),
            "400": OPENSEARCH_ERROR,
        },
        (
            *OPENSEARCH_PARAMS,
            Param("v"),
            Param("h"),
            Param("s"),
            Param("help"),
            Param("nodes"),
            Param("actions"),
            Param("parent_task_id"),
            Param("detailed"),
            Param("time"),
        ),
    ),
)
routes.add(
    bp,
    "/_tasks/<path:rest>",
    _no_handler,
    _METHODS,
    check=AuthenticatedOnly("answers 400 no handler found"),
    doc=Operation(
        "Any other _tasks path: OpenSearch's 'no handler' answers.",
        "OpenSearch _tasks",
        {"400": OPENSEARCH_ERROR, "405": OPENSEARCH_ERROR},
        (Param("rest", "path"),),
        not_fuzzed="answers every request with an error by design",
    ),
)
