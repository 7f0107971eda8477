"""Druid's task rules: submit, read, list and shut down tasks. No commit, no Flask."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from overlord import tasktypes
from overlord.db import Database
from overlord.errors import (
    InvalidInput,
    InvalidTaskId,
    InvalidTaskSpec,
    LogNotFound,
    NoActiveTasks,
    ReportNotFound,
    TaskNotFound,
)
from overlord.jackson import value_kind
from overlord.services.ids import MAX_ID_LENGTH, validate_id
from overlord.services.payload import loads_exact, payload_for_read, stored_payload
from overlord.services.views import (
    TaskStatus,
    TaskStatusPlus,
    status_plus_for_status_endpoint,
    statuses_for_list,
    task_status,
)
from overlord.states import SHUTDOWN_BY_USER, ListState, RunnerState, TaskState
from overlord.store import audit as audit_store
from overlord.store import execution as execution_store
from overlord.store import reports as report_store
from overlord.store import tasks as task_store
from overlord.store.audit import AuditInfo
from overlord.timeutil import InvalidTime, minus_clamped, parse_interval

# Jackson's message for a body without the type discriminator.
MISSING_TYPE = (
    "Could not resolve subtype of [simple type, class "
    "org.apache.druid.indexing.common.task.Task]: missing type id property 'type'"
)


def dump_json(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def unknown_type_message(name: str) -> str:
    known = ", ".join(tasktypes.known_type_names())
    return (
        f"Please make sure to load all the necessary extensions and jars with type "
        f"'{name}'. Could not resolve type id '{name}' as a subtype of "
        f"`org.apache.druid.indexing.common.task.Task` known type ids = [{known}]"
    )


@dataclass(frozen=True)
class Submission:
    task_id: str
    surrogate_id: int


@dataclass(frozen=True)
class PreparedSubmission:
    """A checked submit, ready to store (``store_submission``)."""

    task: task_store.NewTask
    audit: task_store.NewAuditEntry


def submit_task(
    session: Session | Connection,
    document: Any,
    *,
    now: dt.datetime,
    audit: AuditInfo,
    request_headers: dict[str, str] | None = None,
    posted_text: str | None = None,
    authorize: Callable[[str, dict[str, Any], str], None] | None = None,
) -> Submission:
    """Store a posted task active and WAITING, refusing what Druid refuses
    (``prepare_submission`` then ``store_submission``, in the caller's
    transaction).

    Raises:
        InvalidTaskSpec, InvalidTaskId, AccessDenied: see ``prepare_submission``.
        TaskAlreadyExists: the id is taken.
    """
    prepared = prepare_submission(
        document,
        now=now,
        audit=audit,
        request_headers=request_headers,
        posted_text=posted_text,
        authorize=authorize,
    )
    return store_submission(session, prepared)


def store_submission(
    session: Session | Connection, prepared: PreparedSubmission
) -> Submission:
    """Insert the task with its audit row and wake the workers: one statement on
    PostgreSQL, so it may run in autocommit mode
    (``Database.write(..., one_statement=True)``).

    Raises:
        TaskAlreadyExists: the id is taken (nothing is written).
    """
    surrogate_id = task_store.insert_task(
        session, prepared.task, prepared.audit, notify=True
    )
    return Submission(task_id=prepared.task.task_id, surrogate_id=surrogate_id)


def store_submission_grouped(
    database: Database, prepared: PreparedSubmission
) -> Submission:
    """``store_submission`` through the process's group commit
    (``store.tasks.submit_grouped``): concurrent submits of this process share one
    transaction, one statement on PostgreSQL. Returns once that transaction has
    committed, so a 200 still means committed.

    Raises:
        TaskAlreadyExists: the id is taken (nothing of this task is written;
            the other submits of the batch are not affected).
    """
    surrogate_id = task_store.submit_grouped(database, (prepared.task, prepared.audit))
    return Submission(task_id=prepared.task.task_id, surrogate_id=surrogate_id)


def prepare_submission(
    document: Any,
    *,
    now: dt.datetime,
    audit: AuditInfo,
    request_headers: dict[str, str] | None = None,
    posted_text: str | None = None,
    authorize: Callable[[str, dict[str, Any], str], None] | None = None,
) -> PreparedSubmission:
    """The rows a posted task is stored as (active and WAITING), refusing what
    Druid refuses; no database access, so a request spends none of it inside its
    transaction.

    Its fields have been checked by the typed model (``schemas.task_specs``, loaded
    by the API first, as services never import marshmallow); here come the checks
    that need no schema: the type, the id and the column lengths.

    The stored payload is the posted object with Druid's additions (``groupId``,
    ``resource``, ``TaskQueue``'s context keys; see ``services.payload``), built from
    ``posted_text`` when given so that every number keeps its written form.

    Raises:
        InvalidTaskSpec: not an object, missing or unknown type, bad fields, an
            explicit id Druid refuses (Jackson's "Cannot construct instance" text).
        InvalidTaskId: a dataSource, groupId or supervisorTaskId longer than its
            column.
        AccessDenied: ``authorize`` (called with the type, the document and the
            datasource once the spec is parsed, before any storage check, as Druid
            authorizes inside the endpoint) refused it.
    """
    if not isinstance(document, dict):
        raise InvalidTaskSpec(
            "Cannot construct instance of `org.apache.druid.indexing.common.task.Task`"
            f": expected a JSON object, got {value_kind(document)}"
        )
    type_name = document.get("type")
    if type_name is None:
        raise InvalidTaskSpec(MISSING_TYPE)
    if not isinstance(type_name, str):
        raise InvalidTaskSpec(unknown_type_message(dump_json(type_name)))
    task_type = tasktypes.lookup(type_name)
    if task_type is None:
        raise InvalidTaskSpec(unknown_type_message(type_name))
    context = document.get("context")
    if context is not None and not isinstance(context, dict):
        raise InvalidTaskSpec("context must be a JSON object")

    exact = loads_exact(posted_text) if posted_text is not None else document
    explicit_id = document.get("id")
    if explicit_id is None:
        task_id = task_type.make_id(document, now)
        document = _with_id(document, task_id)
        exact = _with_id(exact, task_id)
    elif isinstance(explicit_id, str):
        task_id = explicit_id
    else:
        raise InvalidTaskSpec(
            f"Cannot deserialize value of type `java.lang.String` from "
            f"{value_kind(explicit_id)} (id)"
        )
    try:
        # AbstractTask's constructor validates the id: Jackson wraps its refusal.
        validate_id("task ID", task_id)
    except InvalidTaskId as error:
        raise InvalidTaskSpec(task_type.constructor_problem(error.message)) from error
    datasource = task_type.datasource(document)
    if authorize is not None:
        authorize(type_name, document, datasource)
    group_id = task_type.group_id(document, task_id)
    parent = document.get("supervisorTaskId")
    _check_column_lengths(
        dataSource=datasource,
        groupId=group_id,
        supervisorTaskId=parent if isinstance(parent, str) else None,
    )
    payload = stored_payload(
        exact, type_name=type_name, task_id=task_id, group_id=group_id
    )
    return PreparedSubmission(
        task=task_store.NewTask(
            task_id=task_id,
            type=type_name,
            group_id=group_id,
            datasource=datasource,
            created_at=now,
            payload=payload,
            priority=task_type.priority(document),
            parent_task_id=parent if isinstance(parent, str) else None,
            request_headers=dump_json(request_headers) if request_headers else None,
        ),
        audit=task_store.NewAuditEntry(
            key=datasource,
            kind="task",
            payload=dump_json({"id": task_id, "groupId": group_id, "type": type_name}),
            author=audit.author,
            comment=audit.comment,
            identity=audit.identity,
            ip=audit.ip,
        ),
    )


def _check_column_lengths(**values: str | None) -> None:
    """Refuse values longer than their id columns, or holding NUL: PostgreSQL and
    MariaDB would fail the insert (a 500) where SQLite stores them, so every
    backend answers 400.

    Raises:
        InvalidTaskId: a value is longer than ``MAX_ID_LENGTH``.
    """
    for field, value in values.items():
        if value is not None and "\x00" in value:
            # PostgreSQL cannot store NUL (a 500); IdUtils' text, on every backend.
            raise InvalidTaskId(
                f"Invalid value for field [{field}]: Value [{value}] contains illegal "
                f"UTF8 character [#0] at position [{value.index(chr(0))}]"
            )
        if value is not None and len(value) > MAX_ID_LENGTH:
            raise InvalidTaskId(
                f"Invalid value for field [{field}]: Value [{value}] is longer than "
                f"{MAX_ID_LENGTH} characters."
            )


def _with_id(document: dict[str, Any], task_id: str) -> dict[str, Any]:
    """The posted object with ``id`` after ``type``, where Druid's Jackson puts it;
    a posted ``"id": null`` is replaced where it stands."""
    if "id" in document:
        return {**document, "id": task_id}
    result: dict[str, Any] = {}
    for key, value in document.items():
        result[key] = value
        if key == "type":
            result["id"] = task_id
    if "id" not in result:
        result["id"] = task_id
    return result


def require_task(session: Session, task_id: str) -> None:
    """Druid's TaskResourceFilter: validate the path id, then 404 unknown tasks.

    Raises:
        InvalidTaskId: the id has a ``/`` or starts with ``.``.
        TaskNotFound: no such task.
    """
    validate_id("taskId", task_id)
    if not task_store.task_exists(session, task_id):
        raise TaskNotFound(task_id)


def get_task_payload(session: Session, task_id: str) -> str:
    """The payload as Druid serialises the task (``services.payload``): the stored
    text with Druid's additions where an older row lacks them, password fields masked.

    Raises:
        TaskNotFound: no such task.
    """
    validate_id("taskId", task_id)
    task = task_store.get_task(session, task_id)
    if task is None:
        raise TaskNotFound(task_id)
    return payload_for_read(
        task.payload, type_name=task.type, task_id=task.task_id, group_id=task.group_id
    )


def get_task_status(session: Session | Connection, task_id: str) -> TaskStatusPlus:
    """``GET /task/{id}/status``.

    Raises:
        TaskNotFound: no such task.
    """
    validate_id("taskId", task_id)
    row = task_store.get_task_summary(session, task_id)
    if row is None:
        raise TaskNotFound(task_id)
    return status_plus_for_status_endpoint(row)


def read_task_status(database: Database, task_id: str) -> TaskStatusPlus:
    """``GET /task/{id}/status`` as ``get_task_status``, on the store's fastest
    read (``Database.fetch_one``): most of the traffic is this poll.

    Raises:
        TaskNotFound: no such task.
    """
    validate_id("taskId", task_id)
    row = task_store.read_task_summary(database, task_id)
    if row is None:
        raise TaskNotFound(task_id)
    return status_plus_for_status_endpoint(row)


def get_task_statuses(session: Session, task_ids: list[str]) -> dict[str, TaskStatus]:
    """``POST /taskStatus``: statuses of the ids that exist, in the order asked."""
    unique = list(dict.fromkeys(task_ids))
    found = {
        row.task_id: task_status(row)
        for row in task_store.get_task_summaries(session, unique)
    }
    return {task_id: found[task_id] for task_id in unique if task_id in found}


def shutdown_task(
    session: Session, task_id: str, *, now: dt.datetime, audit: AuditInfo
) -> None:
    """Make an active task FAILED "Shutdown request from user", inactive, its locks
    released, in the caller's transaction. A finished task keeps its status.

    Raises:
        TaskNotFound: no such task.
    """
    require_task(session, task_id)
    if _shut_down(session, task_id, now):
        audit_store.insert_audit(
            session,
            key=task_id,
            kind="task.shutdown",
            payload=dump_json({"id": task_id}),
            info=audit,
            now=now,
        )


def shutdown_all_tasks(
    session: Session, datasource: str, *, now: dt.datetime, audit: AuditInfo
) -> list[str]:
    """Shut down every active task of a datasource.

    Raises:
        NoActiveTasks: the datasource has none (Druid answers 404).
    """
    stopped = execution_store.shut_down_datasource_tasks(
        session, datasource, error_msg=SHUTDOWN_BY_USER, now=now
    )
    if not stopped:
        raise NoActiveTasks(datasource)
    _end_descendants(session, stopped, now)
    execution_store.notify_workers(session)
    audit_store.insert_audit(
        session,
        key=datasource,
        kind="task.shutdownAll",
        payload=dump_json({"dataSource": datasource, "taskIds": stopped}),
        info=audit,
        now=now,
    )
    return stopped


def _shut_down(session: Session, task_id: str, now: dt.datetime) -> bool:
    """FAILED "Shutdown request from user", inactive, locks and allocated pending
    segments released, workers woken: final before the caller's commit.

    The task's active sub-tasks (``supervisorTaskId`` = this task) end the same way:
    Druid's stopped ``index_parallel`` supervisor kills its running sub-tasks
    (TaskMonitor.stop → OverlordClient.cancelTask); here it holds even when the
    supervisor's process is gone, and a sub-task still WAITING or PENDING goes too.
    """
    if not execution_store.end_task(
        session,
        task_id,
        status=TaskState.FAILED,
        error_msg=SHUTDOWN_BY_USER,
        now=now,
        shutdown=True,
    ):
        return False
    _end_descendants(session, [task_id], now)
    execution_store.notify_workers(session)
    return True


def _end_descendants(
    session: Session, supervisors: Sequence[str], now: dt.datetime
) -> None:
    """End the active sub-tasks of ``supervisors`` and theirs in turn, whatever
    their datasource (one read of the active sub-tasks, then one end per
    descendant)."""
    children: dict[str, list[str]] = {}
    for child, parent in task_store.active_sub_tasks(session):
        children.setdefault(parent, []).append(child)
    if not children:
        return
    pending = [child for parent in supervisors for child in children.get(parent, [])]
    seen = set(supervisors)
    while pending:
        child = pending.pop(0)
        if child in seen:
            continue
        seen.add(child)
        if execution_store.end_task(
            session,
            child,
            status=TaskState.FAILED,
            error_msg=SHUTDOWN_BY_USER,
            now=now,
            shutdown=True,
        ):
            pending.extend(children.get(child, []))


@dataclass(frozen=True)
class TaskListQuery:
    """``GET /tasks`` parameters after parsing."""

    state: ListState | None = None
    datasource: str | None = None
    task_type: str | None = None
    created_within: dt.timedelta | None = None
    max_complete: int | None = None


def parse_list_state(text: str | None) -> ListState | None:
    """Raises: InvalidInput with Druid's text for an unknown state."""
    if text is None:
        return None
    try:
        return ListState(text.lower())
    except ValueError:
        raise InvalidInput(
            f"Invalid task state[{text}]. Must be one of "
            f"[{', '.join(state.value for state in ListState)}]."
        ) from None


def parse_created_time_interval(text: str | None) -> dt.timedelta | None:
    """Druid keeps only the length of ``createdTimeInterval`` (``_`` for ``/``):
    "created within the last (end - start)", issue #11589.

    Raises:
        InvalidInput: not an interval.
    """
    if text is None:
        return None
    try:
        return parse_interval(text.replace("_", "/")).duration
    except InvalidTime as error:
        raise InvalidInput(f"Invalid createdTimeInterval[{text}]: {error}") from error


_RUNNER_STATES = {
    ListState.WAITING: RunnerState.WAITING,
    ListState.PENDING: RunnerState.PENDING,
    ListState.RUNNING: RunnerState.RUNNING,
}


def list_task_statuses(
    session: Session | Connection,
    query: TaskListQuery,
    *,
    now: dt.datetime,
    recently_finished: dt.timedelta,
) -> list[TaskStatusPlus]:
    """``GET /tasks`` and the legacy lists: complete tasks first (newest created
    first), then active ones (oldest first). ``max`` limits only the complete
    ones; Druid's pending-segment duty relies on this order (``max=1`` = newest
    complete). Fetched whole, so the caller can end its transaction (or return
    its connection) before sending them (see ``list_needs_transaction``)."""
    statuses: list[TaskStatusPlus] = []
    if query.state in (None, ListState.COMPLETE) and query.max_complete != 0:
        since = minus_clamped(now, query.created_within or recently_finished)
        rows = task_store.list_complete_tasks(
            session,
            created_since=since,
            datasource=query.datasource,
            task_type=query.task_type,
            limit=query.max_complete,
        )
        statuses.extend(statuses_for_list(rows))
    if query.state is not ListState.COMPLETE:
        rows = task_store.list_active_tasks(
            session,
            datasource=query.datasource,
            task_type=query.task_type,
            runner_state=_RUNNER_STATES.get(query.state) if query.state else None,
        )
        statuses.extend(statuses_for_list(rows))
    return statuses


def read_short_list(
    database: Database,
    query: TaskListQuery,
    *,
    now: dt.datetime,
    recently_finished: dt.timedelta,
) -> list[TaskStatusPlus]:
    """``list_task_statuses`` for a query ``list_needs_transaction`` refuses (one
    statement, at most ``LIST_BATCH`` complete rows), on the store's raw driver
    read (``task_store.read_complete_tasks``)."""
    assert not list_needs_transaction(query)
    assert query.max_complete is not None
    if query.max_complete == 0:
        return []
    since = minus_clamped(now, query.created_within or recently_finished)
    rows = task_store.read_complete_tasks(
        database,
        created_since=since,
        datasource=query.datasource,
        task_type=query.task_type,
        limit=query.max_complete,
    )
    return statuses_for_list(rows)


def list_needs_transaction(query: TaskListQuery) -> bool:
    """False when ``list_task_statuses`` makes at most one statement, for at most
    ``LIST_BATCH`` rows: then a connection without a transaction (``read_short_list``)
    gives a consistent answer. Longer lists read through a server-side cursor,
    which PostgreSQL opens only inside a transaction, and ``state``-less ones
    make two statements."""
    return not (
        query.state is ListState.COMPLETE
        and query.max_complete is not None
        and query.max_complete <= task_store.LIST_BATCH
    )


REPORT_NOT_FOUND = (
    "No task reports were found for this task. The task may not exist, "
    "or it may not have completed yet."
)
LOG_NOT_FOUND = (
    "No log was found for this task. The task may not exist, "
    "or it may not have begun running yet."
)


def get_task_reports(session: Session, task_id: str) -> str:
    """Raises: TaskNotFound; ReportNotFound with Druid's text."""
    require_task(session, task_id)
    report = report_store.get_report(session, task_id)
    if report is None:
        raise ReportNotFound(REPORT_NOT_FOUND)
    return report


def get_task_log(session: Session, task_id: str, offset: int) -> bytes:
    """Druid's LogUtils.streamFile: 0 = all, >0 = from that byte, <0 = last |n| bytes.

    Raises: TaskNotFound; LogNotFound with Druid's text.
    """
    require_task(session, task_id)
    size = report_store.log_size(session, task_id)
    if size is None:
        raise LogNotFound(LOG_NOT_FOUND)
    start = offset if offset >= 0 else max(0, size + offset)
    if start >= size:
        return b""
    return report_store.read_log(session, task_id, start)


SEGMENTS_GONE = (
    "Segment IDs committed by a task action are not persisted anymore. Use the "
    "metric 'segment/added/bytes' to identify the segments created by a task."
)
