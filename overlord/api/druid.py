"""The Druid Overlord API, ``/druid/indexer/v1/…`` (spec druid-overlord.md §1).

Each view: parse → one transaction around a service call → dump. Unknown query
parameters are ignored everywhere here, as Druid ignores them.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from json.encoder import encode_basestring
from typing import Any

from flask import Blueprint, Response, request
from marshmallow import ValidationError
from werkzeug.exceptions import MethodNotAllowed, NotFound

from overlord import errors as overlord_errors
from overlord.api import routes, security
from overlord.api.checks import (
    CONFIG_RESOURCE,
    STATE_RESOURCE,
    Fixed,
    InternalOrState,
    PathDatasource,
    TaskResource,
    Unsecured,
    in_view,
)
from overlord.api.docs import (
    BAD,
    DATASOURCE,
    ERROR,
    INTEGER,
    LIST_PARAMS,
    LOCK_POLICIES,
    NOT_FOUND_TASK,
    OBJECT,
    STRING,
    TASK_ID,
    TASK_LIST,
    TASK_STATUS,
    TASK_STATUS_PLUS,
    Operation,
    Param,
    any_answer,
    json_answer,
    text_answer,
)
from overlord.api.errors import TextInvalidInput
from overlord.api.parsing import NO_BODY, read_json_body
from overlord.api.responses import (
    JSON,
    dumps,
    empty_response,
    error_response,
    json_response,
    raw_json_response,
)
from overlord.api.state import audit_info, database, settings
from overlord.errors import InvalidInput, NoActiveTasks
from overlord.jackson import JAVA_INT_MAX, JAVA_INT_MIN, JAVA_LONG_MAX, JAVA_LONG_MIN
from overlord.logs import TaskLog
from overlord.schemas.actions import load_action
from overlord.schemas.druid import (
    encode_task_status_plus,
    load_task_list_args,
    lock_filter_policies_schema,
    task_status_schema,
)
from overlord.schemas.locked_intervals import load_min_task_priority
from overlord.schemas.task_specs import load_task_spec
from overlord.schemas.worker_config import (
    DEFAULT_WORKER_CONFIG,
    load_worker_behavior_config,
)
from overlord.services import actions as action_service
from overlord.services import locks as lock_service
from overlord.services import segments as segment_service
from overlord.services import tasks as task_service
from overlord.services import worker_config as worker_config_service
from overlord.services import workers as worker_service
from overlord.services.auth import READ, STATE, WRITE
from overlord.services.locks import LockFilterPolicy
from overlord.services.views import TaskStatusPlus
from overlord.states import ListState
from overlord.taskactions import LockAcquire
from overlord.timeutil import InvalidTime, parse_interval, utcnow

bp = Blueprint("druid", __name__, url_prefix="/druid/indexer/v1")
log = logging.getLogger(__name__)


@routes.post(
    bp,
    "/task",
    check=in_view("DATASOURCE WRITE (+ EXTERNAL READ) after the body is parsed"),
    doc=Operation(
        "Submit a task (Druid's POST /task).",
        "Druid tasks",
        {
            "200": json_answer(
                {
                    "type": "object",
                    "properties": {"task": STRING},
                    "required": ["task"],
                },
                "Accepted: the task id.",
            ),
            "400": BAD,
            "413": any_answer("Body too large."),
        },
        body={
            "type": "object",
            "properties": {"type": STRING},
            "description": "A Druid task spec.",
        },
    ),
)
def submit_task() -> Response:
    # Kept (cached) so the stored payload keeps every number as written.
    posted = request.get_data(cache=True)
    document = read_json_body(request)
    try:
        # The typed model refuses what Druid's Jackson refuses (issue #9 §1); the
        # stored payload stays the posted text.
        load_task_spec(document)
    except ValidationError as error:
        raise overlord_errors.InvalidTaskSpec(str(error.messages[0])) from None
    opaque_id = request.headers.get("X-Opaque-Id")
    headers = {"X-Opaque-Id": opaque_id} if opaque_id is not None else None
    prepared = task_service.prepare_submission(
        document,
        now=utcnow(),
        audit=audit_info(),
        request_headers=headers,
        posted_text=posted.decode("utf-8"),
        authorize=security.submit_authorizer(),
    )
    # Group commit: this process's concurrent submits share one transaction
    # (one autocommit statement on PostgreSQL: tasks, audit rows and NOTIFY); a
    # 200 still means committed.
    submission = task_service.store_submission_grouped(database(), prepared)
    return raw_json_response(f'{{"task":{encode_basestring(submission.task_id)}}}')


@routes.get(
    bp,
    "/task/<path:task_id>",
    check=TaskResource(),
    doc=Operation(
        "A task's payload as Druid serialises it.",
        "Druid tasks",
        {
            "200": json_answer(
                {
                    "type": "object",
                    "properties": {"task": STRING, "payload": OBJECT},
                    "required": ["task", "payload"],
                },
                "The payload.",
            ),
            "404": NOT_FOUND_TASK,
        },
        (TASK_ID,),
    ),
)
def get_task(task_id: str) -> Response:
    if task_id.endswith("/shutdown"):
        # The path converter hands GET /task/{id}/shutdown to this view; Jersey's
        # {taskid} stops at the slash and answers a wrong method with 405.
        raise MethodNotAllowed(valid_methods=["POST", "OPTIONS"])
    payload = database().run(
        lambda session: task_service.get_task_payload(session, task_id)
    )
    return raw_json_response(f'{{"task":{dumps(task_id)},"payload":{payload}}}')


@routes.get(
    bp,
    "/task/<path:task_id>/status",
    check=TaskResource(),
    doc=Operation(
        "A task's status (what Airflow's DruidHook polls).",
        "Druid tasks",
        {
            "200": json_answer(
                {
                    "type": "object",
                    "properties": {"task": STRING, "status": TASK_STATUS_PLUS},
                    "required": ["task", "status"],
                },
                "The status.",
            ),
            "404": NOT_FOUND_TASK,
        },
        (TASK_ID,),
    ),
)
def get_task_status(task_id: str) -> Response:
    # Status polls are most of the traffic (Airflow polls every running task):
    # one statement without BEGIN/COMMIT, and the written-out dump.
    status = task_service.read_task_status(database(), task_id)
    return raw_json_response(_status_body(task_id, status))


# The body is a function of the id asked (MariaDB's collation may match another
# case) and the status read for it, both the key: a changed status is a miss,
# never a stale body. Polls of an unchanged task: 1.9 → 0.5 µs of CPU each.
@functools.lru_cache(maxsize=4096)
def _status_body(task_id: str, status: TaskStatusPlus) -> str:
    head = f'{{"task":{encode_basestring(task_id)},"status":'
    return f"{head}{encode_task_status_plus(status)}}}"


@routes.get(
    bp,
    "/task/<path:task_id>/reports",
    check=TaskResource(),
    doc=Operation(
        "A task's reports (ingestionStatsAndErrors …).",
        "Druid tasks",
        {
            "200": json_answer(OBJECT, "Reports by key."),
            "404": any_answer("No report yet."),
        },
        (TASK_ID,),
    ),
)
def get_task_reports(task_id: str) -> Response:
    report = database().run(
        lambda session: task_service.get_task_reports(session, task_id)
    )
    return raw_json_response(report)


@routes.get(
    bp,
    "/task/<path:task_id>/log",
    check=TaskResource(),
    doc=Operation(
        "A task's log; offset > 0 from that byte, < 0 the last bytes.",
        "Druid tasks",
        {
            "200": text_answer("The log."),
            "404": any_answer("No log yet."),
            "400": any_answer("Bad offset."),
        },
        (TASK_ID, Param("offset", schema={"type": "integer"})),
    ),
)
def get_task_log(task_id: str) -> Response:
    offset = _long_param("offset", 0)
    content = database().run(
        lambda session: task_service.get_task_log(session, task_id, offset)
    )
    return Response(content, status=200, content_type="text/plain; charset=UTF-8")


@routes.get(
    bp,
    "/task/<path:task_id>/segments",
    check=TaskResource(),
    doc=Operation(
        "Deprecated: Druid 31+ answers 404 always.",
        "Druid tasks",
        {"404": json_answer(ERROR, "Segment ids are not kept per task.")},
        (TASK_ID,),
    ),
)
def get_task_segments(task_id: str) -> Response:
    database().run(lambda session: task_service.require_task(session, task_id))
    # Druid ≥ 31 (PR #16309) no longer records segment ids per task.
    return error_response(task_service.SEGMENTS_GONE, 404)


@routes.post(
    bp,
    "/task/<path:task_id>/shutdown",
    check=TaskResource(WRITE),
    doc=Operation(
        "Shut a task down (final at once: FAILED 'Shutdown request from user').",
        "Druid tasks",
        {
            "200": json_answer(
                {
                    "type": "object",
                    "properties": {"task": STRING},
                    "required": ["task"],
                },
                "Shut down (or already complete).",
            ),
            "404": NOT_FOUND_TASK,
        },
        (TASK_ID,),
    ),
)
def shutdown_task(task_id: str) -> Response:
    # No body needed: Airflow sends none (Content-Length: 0), the web console `{}`.
    info = audit_info()
    database().run(
        lambda session: task_service.shutdown_task(
            session, task_id, now=utcnow(), audit=info
        ),
        write=True,
    )
    # Committed: the task transition's line, with the shutdown request's id.
    TaskLog(log, task_id, request.headers.get("X-Opaque-Id")).info(
        "shutdown of task %s requested by %s", task_id, info.author or "anonymous"
    )
    return json_response({"task": task_id})


@routes.post(
    bp,
    "/datasources/<path:datasource>/shutdownAllTasks",
    check=PathDatasource("datasource", (WRITE,)),
    doc=Operation(
        "Shut down every active task of a datasource.",
        "Druid tasks",
        {
            "200": json_answer(
                {
                    "type": "object",
                    "properties": {"dataSource": STRING},
                    "required": ["dataSource"],
                },
                "Done.",
            ),
            "404": any_answer("No active task (empty body)."),
        },
        (DATASOURCE,),
    ),
)
def shutdown_all_tasks(datasource: str) -> Response:
    if _unstorable(datasource):
        raise NoActiveTasks(datasource)
    info = audit_info()
    ended = database().run(
        lambda session: task_service.shutdown_all_tasks(
            session, datasource, now=utcnow(), audit=info
        ),
        write=True,
    )
    # One line for the lot (25 k lines would double shutdownAllTasks' time).
    opaque_id = request.headers.get("X-Opaque-Id")
    log.info(
        "shutdown of %d tasks of %s requested by %s%s",
        len(ended),
        datasource,
        info.author or "anonymous",
        f" opaque_id={opaque_id}" if opaque_id else "",
        extra={"datasource": datasource, "opaque_id": opaque_id},
    )
    return json_response({"dataSource": datasource})


@routes.post(
    bp,
    "/taskStatus",
    check=Fixed(STATE, "STATE", WRITE),
    doc=Operation(
        "Statuses of many tasks (unknown ids omitted).",
        "Druid tasks",
        {
            "200": json_answer(
                {"type": "object", "additionalProperties": TASK_STATUS},
                "Statuses by id.",
            ),
            "400": any_answer("No task ids provided."),
        },
        body={"type": "array", "items": STRING},
    ),
)
def post_task_statuses() -> Response:
    document = read_json_body(request, allow_empty=True)
    if document is NO_BODY or document is None or document == []:
        raise TextInvalidInput("No Task IDs provided.")
    if not isinstance(document, list) or not all(isinstance(i, str) for i in document):
        raise InvalidInput(
            "Cannot deserialize value of type `java.util.HashSet<java.lang.String>` "
            "from the request body: expected a JSON array of task ids"
        )
    # An id no backend could store has no status (PostgreSQL would refuse the query).
    task_ids = [task_id for task_id in document if not _unstorable(task_id)]
    statuses = database().run(
        lambda session: task_service.get_task_statuses(session, task_ids)
    )
    return json_response(
        {
            task_id: task_status_schema.dump(status)
            for task_id, status in statuses.items()
        }
    )


# Rows per HTTP chunk: one chunk per row made chunked framing a third of the cost.
STREAM_CHUNK_ROWS = 200


def _stream_task_list(query: task_service.TaskListQuery) -> Response:
    # Auth on: READ on datasource= up front (text 403), else rows filtered below.
    readable = security.datasource_filter(query.datasource)
    if _unstorable(query.datasource, query.task_type):
        # No stored task matches: answered before streaming, as PostgreSQL would
        # refuse the query once the 200 headers were out (a cut connection).
        return json_response([])
    now = utcnow()
    threshold = settings().recently_finished_threshold

    # Every row is fetched and the transaction ended (its connection back in the
    # pool) before the first byte goes out: a client reading slowly holds neither
    # a pooled connection nor an open transaction (issue 8). Rows are summaries,
    # never payloads, so holding them is cheap; the JSON is still made and sent
    # piece by piece.
    def fetch(session: Any) -> list[TaskStatusPlus]:
        return task_service.list_task_statuses(
            session, query, now=now, recently_finished=threshold
        )

    if task_service.list_needs_transaction(query):
        statuses = database().run(fetch)
    else:
        # A Session and BEGIN/COMMIT, even a Core Connection and result, cost more
        # than a short list's one statement: read on the driver's connection.
        statuses = task_service.read_short_list(
            database(), query, now=now, recently_finished=threshold
        )
    if readable is not None:
        # After the query applied `max`, as Druid filters (securedTaskStatusPlus):
        # a restricted caller may get fewer rows than `max`.
        statuses = [
            status
            for status in statuses
            if status.datasource is not None and readable(status.datasource)
        ]

    if len(statuses) <= STREAM_CHUNK_ROWS:
        # One chunk's worth: one body, the same bytes (granian then writes it with
        # a Content-Length instead of iterating a generator through chunked framing).
        return raw_json_response(
            f"[{','.join(map(encode_task_status_plus, statuses))}]"
        )

    def generate() -> Iterator[str]:
        for start in range(0, len(statuses), STREAM_CHUNK_ROWS):
            chunk = statuses[start : start + STREAM_CHUNK_ROWS]
            text = ",".join(map(encode_task_status_plus, chunk))
            last = start + STREAM_CHUNK_ROWS >= len(statuses)
            yield ("[" if start == 0 else ",") + text + ("]" if last else "")

    return Response(generate(), status=200, mimetype=JSON)


@routes.get(
    bp,
    "/tasks",
    check=in_view("rows by DATASOURCE READ"),
    doc=Operation(
        "Task summaries: complete newest first, then active oldest first.",
        "Druid tasks",
        {"200": TASK_LIST, "400": any_answer("Bad parameter.")},
        LIST_PARAMS,
    ),
)
def list_tasks() -> Response:
    args = load_task_list_args(request.args)
    query = task_service.TaskListQuery(
        state=_list_state(args["state"]),
        datasource=args["datasource"],
        task_type=args["type"],
        created_within=task_service.parse_created_time_interval(
            args["created_time_interval"]
        ),
        max_complete=_max_param(args["max"]),
    )
    return _stream_task_list(query)


# The legacy lists take fewer parameters than Druid's docs claim (spec §1.2).
@routes.get(
    bp,
    "/waitingTasks",
    check=in_view("rows"),
    doc=Operation("Waiting tasks (legacy list).", "Druid tasks", {"200": TASK_LIST}),
)
def list_waiting_tasks() -> Response:
    return _stream_task_list(task_service.TaskListQuery(state=ListState.WAITING))


@routes.get(
    bp,
    "/pendingTasks",
    check=in_view("rows"),
    doc=Operation("Pending tasks (legacy list).", "Druid tasks", {"200": TASK_LIST}),
)
def list_pending_tasks() -> Response:
    return _stream_task_list(task_service.TaskListQuery(state=ListState.PENDING))


@routes.get(
    bp,
    "/runningTasks",
    check=in_view("rows"),
    doc=Operation(
        "Running tasks (legacy list).",
        "Druid tasks",
        {"200": TASK_LIST},
        (Param("type"),),
    ),
)
def list_running_tasks() -> Response:
    return _stream_task_list(
        task_service.TaskListQuery(
            state=ListState.RUNNING, task_type=request.args.get("type")
        )
    )


@routes.get(
    bp,
    "/completeTasks",
    check=in_view("rows"),
    doc=Operation(
        "Complete tasks (legacy list).",
        "Druid tasks",
        {"200": TASK_LIST, "400": any_answer("Bad parameter.")},
        (Param("n"),),
    ),
)
def list_complete_tasks() -> Response:
    return _stream_task_list(
        task_service.TaskListQuery(
            state=ListState.COMPLETE,
            max_complete=_max_param(request.args.get("n"), "n"),
        )
    )


@routes.delete(
    bp,
    "/pendingSegments/<path:datasource>",
    check=PathDatasource("datasource", (READ, WRITE)),
    doc=Operation(
        "Delete the pending segments of a datasource created in an interval.",
        "Druid segments",
        {
            "200": json_answer(
                {
                    "type": "object",
                    "properties": {"numDeleted": INTEGER},
                    "required": ["numDeleted"],
                },
                "Deleted.",
            ),
            "400": BAD,
        },
        (
            DATASOURCE,
            Param("interval", required=True, description="ISO-8601 interval."),
        ),
    ),
)
def delete_pending_segments(datasource: str) -> Response:
    text = request.args.get("interval")
    if text is None:
        raise InvalidInput("Missing required query parameter [interval]")
    try:
        interval = parse_interval(text)
    except InvalidTime as error:
        raise InvalidInput(f"Invalid interval[{text}]: {error}") from error
    if _unstorable(datasource):
        return json_response({"numDeleted": 0})
    info = audit_info()
    deleted = database().run(
        lambda session: segment_service.delete_pending_segments(
            session, datasource, interval, now=utcnow(), audit=info
        ),
        write=True,
    )
    return json_response({"numDeleted": deleted})


@routes.post(
    bp,
    "/action",
    check=InternalOrState(),
    doc=Operation(
        "A task action (peons and tasks; not for end users).",
        "Druid internal",
        {
            "200": json_answer(
                {"type": "object", "properties": {"result": {}}}, "The action's result."
            ),
            "400": BAD,
            "500": json_answer(ERROR, "The action failed: peons retry."),
        },
        body={"type": "object", "properties": {"task": OBJECT, "action": OBJECT}},
        not_fuzzed="Druid answers a failed action with 500 on purpose (peons retry, spec §1.15.1)",
    ),
)
def post_action() -> Response:
    """Task actions (spec §1.15): peons retry on 5xx, so every action is idempotent."""
    document = read_json_body(request)
    if not isinstance(document, dict):
        raise InvalidInput("Task action body must be a JSON object")
    task, action = document.get("task"), document.get("action")
    if task is None:
        raise InvalidInput("'task' must not be null")
    if action is None:
        raise InvalidInput("'action' must not be null")
    if not isinstance(task, dict) or not isinstance(action, dict):
        raise InvalidInput("'task' and 'action' must be JSON objects")
    for key in ("id", "groupId", "dataSource"):
        if _unstorable(task.get(key)):
            raise InvalidInput(f"Invalid value for field [task.{key}]: contains NUL")
    try:
        typed = load_action(action)
    except ValidationError as error:
        raise InvalidInput(str(error.messages[0])) from None
    db = database()
    waits = isinstance(typed, LockAcquire)
    deadline = time.monotonic() + _lock_wait_seconds(
        typed.timeout_ms if isinstance(typed, LockAcquire) else 0,
        settings().action_wait_cap.total_seconds(),
    )
    while True:
        result = db.run(
            lambda session: action_service.perform_action(
                session, task, typed, utcnow()
            ),
            write=True,
        )
        # lockAcquire keeps the request open until granted or timed out, polling in
        # short transactions (none is held while waiting).
        if result is not None or not waits or time.monotonic() >= deadline:
            return json_response({"result": result})
        time.sleep(LOCK_WAIT_POLL_SECONDS)


LOCK_WAIT_POLL_SECONDS = 0.1


def _lock_wait_seconds(timeout_ms: int, cap: float) -> float:
    """How long lockAcquire may hold this HTTP thread: its ``timeoutMs``, at most
    the ``action_wait_cap`` setting. Druid's TimeChunkLockAcquireAction reads
    ``timeoutMs`` 0 (also when absent: a Java long) as "no limit"; a thread here
    never waits unbounded, so that too is the cap."""
    if timeout_ms <= 0:
        return cap
    return min(timeout_ms / 1000, cap)


@routes.get(
    bp,
    "/workers",
    check=STATE_RESOURCE,
    doc=Operation(
        "Workers with their slots and running tasks.",
        "Druid workers",
        {"200": json_answer({"type": "array", "items": OBJECT}, "Workers.")},
    ),
)
def get_workers() -> Response:
    return json_response(database().run(worker_service.list_workers))


@routes.get(
    bp,
    "/totalWorkerCapacity",
    check=CONFIG_RESOURCE,
    doc=Operation(
        "Slots of the live workers.",
        "Druid workers",
        {
            "200": json_answer(
                {
                    "type": "object",
                    "properties": {
                        "currentClusterCapacity": INTEGER,
                        "maximumCapacityWithAutoScale": INTEGER,
                        "usedClusterCapacity": INTEGER,
                    },
                },
                "Capacity.",
            )
        },
    ),
)
def get_total_worker_capacity() -> Response:
    return json_response(database().run(worker_service.total_worker_capacity))


@routes.get(
    bp,
    "/leader",
    check=STATE_RESOURCE,
    doc=Operation(
        "The leader's URL.", "Druid leadership", {"200": text_answer("URL.")}
    ),
)
def get_leader() -> Response:
    # A bare string body, not JSON-quoted, as Druid's resource returns it.
    return Response(settings().leader_url, status=200, mimetype=JSON)


@routes.get(
    bp,
    "/isLeader",
    check=Unsecured(),
    doc=Operation(
        "Whether this server leads.",
        "Druid leadership",
        {
            "200": json_answer(
                {"type": "object", "properties": {"leader": {"type": "boolean"}}},
                "Always the leader today.",
            )
        },
    ),
)
def is_leader() -> Response:
    # Load balancers health-check this (Druid PR #4282): 200 leader, 404 follower.
    return json_response({"leader": True})


def _lock_policies() -> list[LockFilterPolicy]:
    document = read_json_body(request, allow_empty=True)
    if document is NO_BODY or document is None or document == []:
        raise TextInvalidInput("No filter provided")
    if not isinstance(document, list):
        raise InvalidInput(
            "Cannot deserialize value of type `java.util.ArrayList<LockFilterPolicy>` "
            "from Object value: expected a JSON array of lock filter policies"
        )
    try:
        loaded = lock_filter_policies_schema.load(document)
    except ValidationError as error:
        raise InvalidInput(_validation_text(error)) from error
    policies = []
    for item in loaded:
        if _unstorable(item["datasource"]):
            continue  # holds no lock: leaving it out answers as Druid does
        intervals = None
        if item["intervals"] is not None:
            try:
                intervals = [parse_interval(text) for text in item["intervals"]]
            except InvalidTime as error:
                raise InvalidInput(str(error)) from error
        policies.append(
            LockFilterPolicy(
                datasource=item["datasource"],
                priority=item["priority"],
                intervals=intervals,
                context=item["context"] or {},
            )
        )
    return policies


@routes.post(
    bp,
    "/lockedIntervals/v2",
    check=Fixed(STATE, "STATE", WRITE),
    doc=Operation(
        "Locked intervals per datasource (v2, policies).",
        "Druid locks",
        {
            "200": json_answer(OBJECT, "Intervals by datasource."),
            "400": any_answer("Bad body."),
        },
        body=LOCK_POLICIES,
    ),
)
def post_locked_intervals() -> Response:
    policies = _lock_policies()
    result = database().run(
        lambda session: lock_service.locked_intervals(session, policies)
    )
    return json_response(result)


@routes.post(
    bp,
    "/activeLocks",
    check=Fixed(STATE, "STATE", WRITE),
    doc=Operation(
        "Active locks per datasource for lock filter policies.",
        "Druid locks",
        {
            "200": json_answer(
                {"type": "object", "properties": {"datasourceToLocks": OBJECT}},
                "Locks.",
            ),
            "400": any_answer("Bad body."),
        },
        body=LOCK_POLICIES,
    ),
)
def post_active_locks() -> Response:
    policies = _lock_policies()
    result = database().run(
        lambda session: lock_service.active_locks(session, policies)
    )
    return json_response({"datasourceToLocks": result})


def _unstorable(*values: Any) -> bool:
    """A text holding NUL: no stored row can hold it (PostgreSQL refuses NUL in text,
    even as a query parameter, so such a value must not reach a query)."""
    return any(isinstance(value, str) and "\x00" in value for value in values)


def _validation_text(error: ValidationError) -> str:
    messages: Any = error.messages
    parts: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}[{key}]" if prefix else str(key), inner)
        elif isinstance(value, list):
            parts.append(f"{prefix}: {' '.join(str(v) for v in value)}")

    walk("", messages)
    return "; ".join(parts)


def _list_state(text: str | None) -> ListState | None:
    try:
        return task_service.parse_list_state(text)
    except InvalidInput as error:
        # Druid answers this one as text/plain.
        raise TextInvalidInput(error.message) from error


def _max_param(text: str | None, name: str = "max") -> int | None:
    if text is None:
        return None
    value = _int_or_404(name, text)
    if value < 0:
        raise InvalidInput(
            f"Invalid value for query parameter [{name}]: [{text}] must be >= 0"
        )
    return value


def _long_param(name: str, default: int) -> int:
    text = request.args.get(name)
    return default if text is None else _int_or_404(name, text)


def _int_or_404(name: str, text: str) -> int:
    """Jersey answers 404 when a query parameter cannot be converted to its type.

    A number beyond a Java long is a 400 with Jackson's range text instead (issue 8):
    unchecked, it reached the database while the list was already streaming, and
    the client saw 200 headers and then a cut connection.
    Raises:
        NotFound: not an integer.
        InvalidInput: a number outside a Java long.
    """
    stripped = text.strip()
    if _INTEGER.fullmatch(stripped):
        # No int() of a huge digit string: Python refuses over 4300 digits.
        if len(stripped.lstrip("+-").lstrip("0")) <= len(str(JAVA_LONG_MAX)):
            value = int(stripped)
            if JAVA_LONG_MIN <= value <= JAVA_LONG_MAX:
                return value
    elif not _DECIMAL.fullmatch(stripped) or _fits_long(stripped):
        raise NotFound(
            f"Invalid value for query parameter [{name}]: [{text}] is not a number"
        ) from None
    raise InvalidInput(
        f"Invalid value for query parameter [{name}]: Numeric value "
        f"({_long_integer_desc(stripped)}) out of range of long "
        f"({JAVA_LONG_MIN} - {JAVA_LONG_MAX})"
    )


def _long_integer_desc(text: str) -> str:
    """Jackson's ParserBase._longIntegerDesc: 1000 characters or more are summarised."""
    if len(text) < 1000:
        return text
    return f"[Integer with {len(text.lstrip('-'))} digits]"


_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_DECIMAL = re.compile(
    r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII
)


def _fits_long(text: str) -> bool:
    """A decimal such as ``1e3`` or ``2.5`` stays "not a number" (404) unless its value
    is beyond a long (``1e400``): then it is out of range like a long digit string."""
    try:
        return JAVA_LONG_MIN <= Decimal(text) <= JAVA_LONG_MAX
    except InvalidOperation:  # pragma: no cover - _DECIMAL admits only decimals
        return True


@routes.post(
    bp,
    "/lockedIntervals",
    check=Fixed(STATE, "STATE", WRITE),
    doc=Operation(
        "Locked intervals per datasource (v1, minimum priority per datasource).",
        "Druid locks",
        {
            "200": json_answer(OBJECT, "Intervals by datasource."),
            "400": any_answer("Bad body."),
        },
        body={"type": "object", "additionalProperties": INTEGER},
    ),
)
def post_locked_intervals_v1() -> Response:
    """The deprecated v1 query, still served by Druid up to 30 (removed in
    ``OverlordResource@32747cd``): ``{"<ds>": <minTaskPriority>}`` → the same answer
    as v2 for one policy per datasource with that priority and no context.
    """
    document = read_json_body(request, allow_empty=True)
    if document is NO_BODY or document is None or document == {}:
        # A String entity on a JSON-producing method: bare text, not JSON-quoted.
        raise TextInvalidInput("No Datasource provided")
    try:
        minimum = load_min_task_priority(document)
    except ValidationError as error:
        raise InvalidInput(" ".join(error.messages)) from error
    policies = [
        LockFilterPolicy(datasource=datasource, priority=priority)
        for datasource, priority in minimum.items()
    ]
    result = database().run(
        lambda session: lock_service.locked_intervals(session, policies)
    )
    return json_response(result)


# --- Worker behaviour config (the web console's "Overlord dynamic config") ---------


@routes.get(
    bp,
    "/worker",
    check=CONFIG_RESOURCE,
    doc=Operation(
        "The worker behaviour config.",
        "Druid workers",
        {"200": any_answer("The config (JSON), or empty when none was set.")},
    ),
)
def get_worker_config() -> Response:
    text = database().run(
        lambda session: worker_config_service.get_worker_config(
            session, DEFAULT_WORKER_CONFIG
        )
    )
    return raw_json_response(text)


@routes.post(
    bp,
    "/worker",
    check=CONFIG_RESOURCE,
    doc=Operation(
        "Set the worker behaviour config.",
        "Druid workers",
        {"200": any_answer("Stored."), "400": BAD},
        body=OBJECT,
    ),
)
def set_worker_config() -> Response:
    """200 with no entity once stored and audited (``X-Druid-Author`` and
    ``X-Druid-Comment`` name who and why), as ``OverlordResource.setWorkerConfig``."""
    document = read_json_body(request)
    try:
        config = load_worker_behavior_config(document)
    except ValidationError as error:
        raise InvalidInput(" ".join(error.messages)) from error
    info = audit_info()
    database().run(
        lambda session: worker_config_service.set_worker_config(
            session, config, audit=info, now=utcnow()
        ),
        write=True,
    )
    return empty_response(200)


@routes.get(
    bp,
    "/worker/history",
    check=CONFIG_RESOURCE,
    doc=Operation(
        "Changes of the worker config.",
        "Druid workers",
        {
            "200": json_answer({"type": "array", "items": OBJECT}, "Audit entries."),
            "400": BAD,
        },
        (Param("interval"), Param("count")),
    ),
)
def get_worker_config_history() -> Response:
    text = request.args.get("interval")
    interval = None
    if text is not None:
        try:
            interval = parse_interval(text)
        except InvalidTime as error:
            # Druid's Intervals.of throws outside the endpoint's try (a 500); 400 here.
            raise InvalidInput(str(error)) from error
    count_text = request.args.get("count")
    count = None
    if count_text is not None:
        count = _int_or_404("count", count_text)
        if not JAVA_INT_MIN <= count <= JAVA_INT_MAX:
            # Jersey cannot convert it to an Integer: 404, as for any non-number.
            raise NotFound(
                f"Invalid value for query parameter [count]: [{count_text}] is not a "
                "number"
            )
    entries = database().run(
        lambda session: worker_config_service.worker_config_history(
            session, interval=interval, count=count, now=utcnow()
        )
    )
    return json_response(entries)
