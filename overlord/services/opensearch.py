"""OpenSearch's ``_tasks`` rules over Druid tasks (spec opensearch-tasks.md).

Task ids are ``<node>:<n>``: one node per installation (the ``cluster`` row), ``n``
the numeric surrogate of ``tasks``. Every active Druid task is a cancellable
``transport`` task with action ``indices:data/write/druid/<type>``; a cancel is a
Druid shutdown. The list request itself is a ``cluster:monitor/tasks/lists`` task
whose id comes from ``next_list_task_id`` (no database write).

Also here: OpenSearch's REST value parsers (booleans, time values, task ids, comma
lists, node selection, ``*`` patterns) with their exact texts, because clients match
on them. No Flask, no marshmallow, no commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy.orm import Session

from overlord.errors import OverlordError
from overlord.jackson import JAVA_LONG_MAX, JAVA_LONG_MIN
from overlord.services import tasks as task_service
from overlord.services.views import TaskStatusPlus, status_plus_for_list
from overlord.states import TaskState
from overlord.store import opensearch as store
from overlord.store.audit import AuditInfo
from overlord.store.headers import opaque_id_of
from overlord.timeutil import to_millis

# The OpenSearch release the façade answers as. ≥ 2.9 so that the REST YAML tests
# run their thread_info case; below the 2026 change (PR #22064) that turned wait
# timeouts into 504, which opensearch-py would retry three times.
VERSION = "2.19.0"
LUCENE_VERSION = "9.12.1"
BUILD_HASH = "overlord"
BUILD_DATE = "2025-02-04T00:00:00.000Z"
NODE_NAME = "overlord"
CLUSTER_NAME = "overlord"
# Sorted by name, as OpenSearch prints them; the YAML test checks they are not empty.
NODE_ROLES = ("cluster_manager", "data", "ingest")

DRUID_ACTION_PREFIX = "indices:data/write/druid/"
LIST_ACTION = "cluster:monitor/tasks/lists"
TASK_TYPE = "transport"
# TransportListTasksAction and TransportGetTaskAction poll every 100 ms.
WAIT_POLL_SECONDS = 0.1
NANOS_PER_MILLI = 1_000_000


# ----------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class ErrorCause:
    """One OpenSearch exception as the REST layer renders it.

    ``opensearch`` is False for plain Java exceptions (IllegalArgumentException,
    NumberFormatException): ``root_cause`` stops at the first of those, as
    ``OpenSearchException.guessRootCauses`` does.
    """

    type: str
    reason: str
    caused_by: ErrorCause | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    opensearch: bool = True

    def root_cause(self) -> ErrorCause:
        cause = self
        while (
            cause.opensearch
            and cause.caused_by is not None
            and cause.caused_by.opensearch
        ):
            cause = cause.caused_by
        return cause


class OpenSearchError(OverlordError):
    """An error answered with OpenSearch's envelope (``error.root_cause``, ``type``,
    ``reason``, ``status``)."""

    def __init__(self, cause: ErrorCause, status: int) -> None:
        super().__init__(cause.reason)
        self.cause = cause
        self.status = status


class BareOpenSearchError(OverlordError):
    """An error OpenSearch's RestController answers with a bare-string ``error``
    (wrong method, no handler, repeated ``X-Opaque-Id``)."""

    def __init__(
        self, message: str, status: int, allow: Sequence[str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.allow = list(allow or ())


def illegal_argument(
    reason: str, caused_by: ErrorCause | None = None
) -> OpenSearchError:
    return OpenSearchError(
        ErrorCause(
            "illegal_argument_exception", reason, caused_by=caused_by, opensearch=False
        ),
        400,
    )


def _number_format(text: str) -> ErrorCause:
    return ErrorCause(
        "number_format_exception", f'For input string: "{text}"', opensearch=False
    )


def validation_failed(*problems: str) -> OpenSearchError:
    """ActionRequestValidationException's text: ``Validation Failed: 1: …;``."""
    text = "".join(f"{n}: {p};" for n, p in enumerate(problems, start=1))
    return OpenSearchError(
        ErrorCause("action_request_validation_exception", f"Validation Failed: {text}"),
        400,
    )


def failed_node(node_id: str, cause: ErrorCause) -> ErrorCause:
    """A ``node_failures`` element: FailedNodeException around the real cause."""
    return ErrorCause(
        "failed_node_exception",
        f"Failed node [{node_id}]",
        caused_by=cause,
        metadata=(("node_id", node_id),),
    )


def rejected(reason: str) -> OpenSearchError:
    """OpenSearchRejectedExecutionException: a full thread pool (429)."""
    return OpenSearchError(ErrorCause("rejected_execution_exception", reason), 429)


# ---------------------------------------------------------------------- value parsing


def parse_boolean(raw: str | None, default: bool) -> bool:
    """``RestRequest.paramAsBoolean``: empty = true, only ``true``/``false`` else.

    Raises:
        OpenSearchError: any other text (400 illegal_argument_exception).
    """
    if raw is None:
        return default
    if raw == "":
        return True
    if not raw.strip():
        return default
    if raw == "true":
        return True
    if raw == "false":
        return False
    raise illegal_argument(
        f"Failed to parse value [{raw}] as only [true] or [false] are allowed."
    )


_LONG = re.compile(r"[+-]?[0-9]+")
# java.lang.Double.parseDouble's decimal syntax (after trimming).
_DOUBLE = re.compile(
    r"[+-]?(?:NaN|Infinity|(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[fFdD]?)"
)


def parse_long(text: str) -> int | None:
    """``Long.parseLong``: None where Java throws NumberFormatException."""
    # No int() of a huge digit string: Python refuses over 4300 digits (a 500).
    if not _LONG.fullmatch(text) or len(text.lstrip("+-").lstrip("0")) > 19:
        return None
    value = int(text)
    return value if JAVA_LONG_MIN <= value <= JAVA_LONG_MAX else None


_TIME_SUFFIXES = (
    ("nanos", 1),
    ("micros", 1_000),
    ("ms", NANOS_PER_MILLI),
    ("s", 1_000_000_000),
)
_MINUTE = 60_000_000_000
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR


def parse_time_value(raw: str | None, setting: str) -> int | None:
    """``TimeValue.parseTimeValue``, in nanoseconds (``-1`` stays -1).

    Raises:
        OpenSearchError: with TimeValue's exact texts (400).
    """
    if raw is None:
        return None
    normalized = raw.lower().strip()
    for suffix, factor in _TIME_SUFFIXES:
        if normalized.endswith(suffix):
            return _time_number(raw, normalized, suffix, setting) * factor
    # Case-sensitive on the raw text: "M" would be months.
    if raw.endswith("m"):
        return _time_number(raw, normalized, "m", setting) * _MINUTE
    if normalized.endswith("h"):
        return _time_number(raw, normalized, "h", setting) * _HOUR
    if normalized.endswith("d"):
        return _time_number(raw, normalized, "d", setting) * _DAY
    if re.fullmatch(r"-0*1", normalized):
        return -1
    if re.fullmatch(r"0+", normalized):
        return 0
    raise illegal_argument(
        f"failed to parse setting [{setting}] with value [{raw}] as a time value: "
        "unit is missing or unrecognized"
    )


def _time_number(raw: str, normalized: str, suffix: str, setting: str) -> int:
    text = normalized[: -len(suffix)].strip()
    value = parse_long(text)
    if value is None:
        if _DOUBLE.fullmatch(text.strip()):
            raise illegal_argument(
                f"failed to parse [{raw}], fractional time values are not supported",
                _number_format(text),
            )
        raise illegal_argument(f"failed to parse [{raw}]", _number_format(text))
    if value < -1:
        raise illegal_argument(
            f"failed to parse setting [{setting}] with value [{raw}] as a time value: "
            "negative durations are not supported"
        )
    return value


@dataclass(frozen=True)
class TaskId:
    """``org.opensearch.core.tasks.TaskId``: ``id == -1`` means unset."""

    node: str
    id: int

    @property
    def is_set(self) -> bool:
        return self.id != -1

    def __str__(self) -> str:
        return f"{self.node}:{self.id}" if self.is_set else "unset"


UNSET = TaskId("", -1)


def parse_task_id(raw: str | None) -> TaskId:
    """Split at the first ``:`` and read a Java long; empty or ``unset`` is unset.

    Raises:
        OpenSearchError: ``malformed task id <raw>`` (with the NumberFormatException
            as ``caused_by`` when the number is bad).
    """
    if not raw or raw == "unset":
        return UNSET
    node, colon, number = raw.partition(":")
    if not colon:
        raise illegal_argument(f"malformed task id {raw}")
    value = parse_long(number)
    if value is None:
        raise illegal_argument(f"malformed task id {raw}", _number_format(number))
    return TaskId(node, value)


def split_commas(raw: str | None) -> list[str]:
    """``Strings.splitStringByCommaToArray``: Java's split drops trailing empties."""
    if not raw:
        return []
    parts = raw.split(",")
    while parts and parts[-1] == "":
        parts.pop()
    return parts


@cache
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.S)


def simple_match(patterns: Iterable[str], text: str) -> bool:
    """``Regex.simpleMatch``: only ``*`` is special (it matches ``/`` and ``:``
    too), case-sensitive, any pattern may match."""
    return any(_pattern(p).fullmatch(text) is not None for p in patterns)


def _levenshtein_similarity(a: str, b: str) -> float:
    """Lucene's LevenshteinDistance: 1 - distance / longer length."""
    if not a and not b:
        return 1.0
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(
                min(
                    current[j - 1] + 1,
                    previous[j] + 1,
                    previous[j - 1] + (char_a != char_b),
                )
            )
        previous = current
    return 1.0 - previous[-1] / max(len(a), len(b))


def unrecognized_parameters(
    path: str, invalid: Iterable[str], consumed: Iterable[str]
) -> OpenSearchError:
    """``BaseRestHandler.unrecognized``: sorted names, each with the close matches
    (similarity > 0.5, best first, then by name) as "did you mean"."""
    names = sorted(set(invalid))
    candidates = sorted(set(consumed))
    parts: list[str] = []
    for name in names:
        scored = [
            (score, candidate)
            for candidate in candidates
            if (score := _levenshtein_similarity(name, candidate)) > 0.5
        ]
        scored.sort(key=lambda item: (-item[0], item[1]))
        text = f"[{name}]"
        if len(scored) == 1:
            text += f" -> did you mean [{scored[0][1]}]?"
        elif scored:
            text += f" -> did you mean any of [{', '.join(c for _, c in scored)}]?"
        parts.append(text)
    plural = "s" if len(names) > 1 else ""
    return illegal_argument(
        f"request [{path}] contains unrecognized parameter{plural}: {', '.join(parts)}"
    )


GROUP_BY = ("nodes", "parents", "none")


def check_group_by(value: str) -> str:
    """Raises: OpenSearchError for anything but nodes, parents or none."""
    if value not in GROUP_BY:
        raise illegal_argument(
            f"[group_by] must be one of [nodes], [parents] or [none] but was [{value}]"
        )
    return value


# -------------------------------------------------------------------------- the node


@dataclass(frozen=True)
class Node:
    """The one node every server of this store answers as."""

    id: str
    host: str
    ip: str
    port: int
    name: str = NODE_NAME
    roles: tuple[str, ...] = NODE_ROLES

    @property
    def transport_address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def cluster_uuid(self) -> str:
        return self.id


def load_node(session: Session, *, host: str, ip: str, port: int) -> Node:
    """The installation's node (its id is kept in the store)."""
    return Node(id=store.get_node_id(session), host=host, ip=ip, port=port)


def selects_node(node: Node, selectors: Sequence[str]) -> bool:
    """``DiscoveryNodes.resolveNodes`` for a one-node cluster: empty = all; names
    that match nothing are ignored; ``role:false`` removes.

    Raises:
        OpenSearchError: a role selector whose value is not a boolean.
    """
    if not selectors:
        return True
    selected = False
    for item in selectors:
        if item in ("_local", "_master", "_cluster_manager", "_all") or item == node.id:
            selected = True
            continue
        if any(
            simple_match([item], value) for value in (node.name, node.ip, node.host)
        ):
            selected = True
        name, colon, value = item.partition(":")
        if not colon:
            continue
        roles = {"master": "cluster_manager"}.get(name, name)
        if roles in ("data", "ingest", "cluster_manager", "coordinating_only") or any(
            role == roles for role in node.roles
        ):
            wanted = parse_boolean(value, True) if value.strip() else True
            has_role = roles in node.roles or (
                roles == "coordinating_only" and not node.roles
            )
            if has_role:
                selected = wanted
        # A one-node façade has no custom attributes: attr:value matches nothing.
    return selected


# ---------------------------------------------------------------------- task values


@dataclass(frozen=True)
class TaskInfo:
    """OpenSearch's TaskInfo for one task; the wire layer picks the fields that
    ``detailed`` and ``human`` show."""

    node: str
    id: int
    type: str
    action: str
    status: TaskStatusPlus | None
    description: str | None
    start_time_millis: int
    running_time_nanos: int
    cancellable: bool
    cancelled: bool
    parent_task_id: str | None
    headers: dict[str, str]
    cancellation_time_millis: int | None = None
    # Druid's facts the GET result needs (not TaskInfo fields).
    druid_state: TaskState | None = None
    error_msg: str | None = None
    active: bool = True

    @property
    def task_id(self) -> str:
        return f"{self.node}:{self.id}"

    def java_text(self) -> str:
        """``Task.toString()``, as timeout messages quote it."""
        return (
            f"Task{{id={self.id}, type='{self.type}', action='{self.action}', "
            f"description='{self.description or ''}', "
            f"parentTask={self.parent_task_id or 'unset'}, "
            f"startTime={self.start_time_millis}, "
            f"startTimeNanos={self.start_time_millis * NANOS_PER_MILLI}}}"
        )


@dataclass(frozen=True)
class TaskFailure:
    """``TaskOperationFailure``: one task whose operation failed."""

    task_id: int
    node_id: str
    status: str
    reason: ErrorCause


@dataclass
class TasksResult:
    """What list and cancel answer: tasks plus failures (HTTP 200 either way)."""

    tasks: list[TaskInfo]
    node_failures: list[ErrorCause] = field(default_factory=list)
    task_failures: list[TaskFailure] = field(default_factory=list)


def _headers(text: str | None) -> dict[str, str]:
    # X-Opaque-Id is the only header OpenSearch core records on tasks.
    value = opaque_id_of(text)
    return {"X-Opaque-Id": value} if value is not None else {}


def _millis(value: dt.datetime) -> int:
    return to_millis(value)


def task_info(row: Any, node: Node, now_ns: int, *, detailed: bool = True) -> TaskInfo:
    """A Druid task row as OpenSearch's TaskInfo.

    Active tasks run from their creation until now; finished ones until they
    finished (their running time is frozen, as in a stored result).
    """
    start_ms = _millis(row.created_at)
    if row.active:
        running = now_ns - start_ms * NANOS_PER_MILLI
    elif row.finished_at is not None:
        running = (_millis(row.finished_at) - start_ms) * NANOS_PER_MILLI
    else:
        running = max(row.duration_ms, 0) * NANOS_PER_MILLI
    cancelled_at = row.shutdown_requested_at
    return TaskInfo(
        node=node.id,
        id=row.id,
        type=TASK_TYPE,
        action=DRUID_ACTION_PREFIX + row.type,
        # Druid's status is built only where it is shown (detailed).
        status=status_plus_for_list(row) if detailed else None,
        description=(
            f"task[{row.task_id}], type[{row.type}], dataSource[{row.datasource}]"
        ),
        start_time_millis=start_ms,
        running_time_nanos=max(running, 0),
        cancellable=True,
        cancelled=cancelled_at is not None,
        parent_task_id=(
            f"{node.id}:{row.parent_surrogate}"
            if row.parent_surrogate is not None
            else None
        ),
        headers=_headers(row.request_headers),
        cancellation_time_millis=(
            _millis(cancelled_at) if cancelled_at is not None else None
        ),
        druid_state=row.status,
        error_msg=row.error_msg,
        active=row.active,
    )


# -------------------------------------------------------------- the list request task

# Synthetic ids sit above every stored surrogate (auto-increment would need 2^62
# inserts to get there) and need no write: 40 bits of milliseconds since 2020 (until
# 2054) above 22 bits of process id (Linux's PID_MAX_LIMIT is 2^22, so the processes
# of one host never share them). Within a process the millisecond field is a
# counter that never repeats (it runs ahead of the clock under >1000 lists/s).
LIST_ID_BASE = 1 << 62
_PID_BITS = 22
_LIST_EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
_list_lock = threading.Lock()
_list_last_tick = 0


def next_list_task_id() -> int:
    """An id for a list request: unique in this process, distinct between the
    processes of one host, always above stored task ids, within a Java long."""
    global _list_last_tick
    with _list_lock:
        tick = max(int(time.time() * 1000) - _LIST_EPOCH_MS, _list_last_tick + 1)
        _list_last_tick = tick
    pid = os.getpid() & ((1 << _PID_BITS) - 1)
    return LIST_ID_BASE + ((tick % (1 << 40)) << _PID_BITS) + pid


def is_synthetic(number: int) -> bool:
    return number >= LIST_ID_BASE


@dataclass(frozen=True)
class ListRequest:
    """The in-flight list request, shown as a task of its own."""

    id: int
    start_millis: int
    start_ns: int
    headers: dict[str, str]

    @classmethod
    def begin(cls, opaque_id: str | None) -> ListRequest:
        now_ns = time.time_ns()
        return cls(
            id=next_list_task_id(),
            start_millis=now_ns // NANOS_PER_MILLI,
            start_ns=now_ns,
            headers={"X-Opaque-Id": opaque_id} if opaque_id is not None else {},
        )

    def task_info(self, node: Node, now_ns: int) -> TaskInfo:
        return TaskInfo(
            node=node.id,
            id=self.id,
            type=TASK_TYPE,
            action=LIST_ACTION,
            status=None,
            # A transport request's description is empty, not absent.
            description="",
            start_time_millis=self.start_millis,
            running_time_nanos=max(now_ns - self.start_ns, 0),
            cancellable=False,
            cancelled=False,
            parent_task_id=None,
            headers=self.headers,
        )


# ------------------------------------------------------------------------ the rules


@dataclass(frozen=True)
class TaskFilter:
    """The selection every ``_tasks`` endpoint shares (``BaseTasksRequest``)."""

    nodes: Sequence[str] = ()
    actions: Sequence[str] = ()
    parent: TaskId = UNSET

    def matches(self, info: TaskInfo) -> bool:
        if self.actions and not simple_match(self.actions, info.action):
            return False
        return not self.parent.is_set or info.parent_task_id == str(self.parent)


def _druid_rows(session: Session, node: Node, flt: TaskFilter) -> Iterator[Any]:
    if not flt.parent.is_set:
        return store.iter_active_task_rows(session)
    if flt.parent.node != node.id or is_synthetic(flt.parent.id):
        return iter(())
    return store.iter_active_task_rows(session, parent_surrogate=flt.parent.id)


def list_tasks(
    session: Session,
    node: Node,
    flt: TaskFilter,
    request: ListRequest | None,
    *,
    detailed: bool = False,
) -> list[TaskInfo]:
    """Every active Druid task the filter selects, then the list request itself.

    Raises:
        OpenSearchError: a bad role selector in ``nodes``.
    """
    if not selects_node(node, flt.nodes):
        return []
    now_ns = time.time_ns()
    found = [
        info
        for row in _druid_rows(session, node, flt)
        if flt.matches(info := task_info(row, node, now_ns, detailed=detailed))
    ]
    if request is not None:
        own = request.task_info(node, time.time_ns())
        if flt.matches(own):
            found.append(own)
    return found


def still_running(session: Session, tasks: Iterable[TaskInfo]) -> list[TaskInfo]:
    """The Druid tasks among ``tasks`` that are still active (list tasks never
    count: waiting for them would wait for oneself)."""
    druid = [t for t in tasks if t.action != LIST_ACTION and not is_synthetic(t.id)]
    if not druid:
        return []
    active = store.active_surrogates(session, (t.id for t in druid))
    return [t for t in druid if t.id in active]


def timed_out(task: TaskInfo) -> ErrorCause:
    return ErrorCause(
        "timeout_exception",
        f"Timed out waiting for completion of [{task.java_text()}]",
    )


def not_running(task_id: TaskId) -> ErrorCause:
    return ErrorCause(
        "resource_not_found_exception",
        f"task [{task_id}] isn't running and hasn't stored its results",
    )


@dataclass(frozen=True)
class TaskResult:
    """``GET /_tasks/{id}``: a running task, or a finished one from the store."""

    completed: bool
    task: TaskInfo
    error: ErrorCause | None = None


def get_task(session: Session, node: Node, task_id: TaskId) -> TaskResult:
    """The task behind ``<node>:<n>``: running, or completed from the store.

    Raises:
        OpenSearchError: the id is unset (400), of another node or unknown (404).
    """
    if not task_id.is_set:
        raise validation_failed("task id is required")
    if task_id.node != node.id:
        raise OpenSearchError(
            ErrorCause(
                "resource_not_found_exception",
                f"task [{task_id}] belongs to the node [{task_id.node}] which isn't "
                "part of the cluster and there is no record of the task",
                caused_by=not_running(task_id),
            ),
            404,
        )
    row = None if is_synthetic(task_id.id) else store.get_task_row(session, task_id.id)
    if row is None:
        raise OpenSearchError(not_running(task_id), 404)
    info = task_info(row, node, time.time_ns())
    if info.active:
        return TaskResult(completed=False, task=info)
    return TaskResult(completed=True, task=info, error=_druid_error(info))


def _druid_error(info: TaskInfo) -> ErrorCause | None:
    if info.druid_state is not TaskState.FAILED:
        return None
    reason = info.error_msg or "task failed"
    if info.cancelled:
        return ErrorCause("task_cancelled_exception", reason)
    return ErrorCause("druid_task_failed_exception", reason)


def is_task_active(session: Session, number: int) -> bool:
    return bool(store.active_surrogates(session, [number]))


@dataclass(frozen=True)
class CancelTargets:
    """The tasks a cancel will shut down, or the node failure that stops it."""

    numbers: list[int]
    failure: ErrorCause | None = None


def cancel_targets(
    session: Session, node: Node, flt: TaskFilter, task_id: TaskId
) -> CancelTargets:
    """``TransportCancelTasksAction.processTasks``: by id, or every cancellable
    task the filter selects (no filter = every active task).

    Raises:
        OpenSearchError: a bad role selector in ``nodes``.
    """
    if not task_id.is_set:
        found = list_tasks(session, node, flt, None)
        return CancelTargets([t.id for t in found if t.cancellable])
    if task_id.node != node.id:
        return CancelTargets(
            [],
            failed_node(
                task_id.node,
                ErrorCause(
                    "no_such_node_exception",
                    f"No such node [{task_id.node}]",
                    metadata=(("node_id", task_id.node),),
                ),
            ),
        )
    row = None if is_synthetic(task_id.id) else store.get_task_row(session, task_id.id)
    if row is None or not row.active:
        return CancelTargets(
            [],
            failed_node(
                node.id,
                ErrorCause(
                    "resource_not_found_exception", f"task [{task_id}] is not found"
                ),
            ),
        )
    if not flt.matches(task_info(row, node, time.time_ns())):
        return CancelTargets(
            [],
            failed_node(
                node.id,
                ErrorCause(
                    "illegal_argument_exception",
                    f"task [{task_id}] doesn't support this operation",
                    opensearch=False,
                ),
            ),
        )
    return CancelTargets([task_id.id])


def cancel_task(
    session: Session, node: Node, number: int, *, now: dt.datetime, audit: AuditInfo
) -> TaskInfo | None:
    """Shut the task and its active descendants down (Druid's shutdown, final in
    this transaction); its TaskInfo as cancelled, or None when it had already
    finished without being cancelled.

    Raises:
        TaskNotFound: the row vanished meanwhile.
    """
    row = store.get_task_row(session, number)
    if row is None:
        return None
    if row.active:
        # Cancelling a parent cancels its descendants (cancelTaskAndDescendants).
        pending = [row.task_id]
        seen: set[str] = set()
        while pending:
            batch = [task_id for task_id in pending if task_id not in seen]
            seen.update(batch)
            for task_id in batch:
                task_service.shutdown_task(session, task_id, now=now, audit=audit)
            pending = store.active_children(session, batch) if batch else []
        row = store.get_task_row(session, number)
        if row is None:  # pragma: no cover - deleted in our own transaction
            return None
    if row.shutdown_requested_at is None:
        return None
    return dataclasses.replace(task_info(row, node, time.time_ns()), active=False)


def task_forest(tasks: Sequence[TaskInfo]) -> list[tuple[TaskInfo, list[Any]]]:
    """``group_by=parents``: each task under its parent when the parent is in the
    result, else at the top (a filtered-out or finished parent). Children keep the
    order of ``tasks``."""
    by_id = {t.task_id: t for t in tasks}
    children: dict[str, list[TaskInfo]] = {}
    roots: list[TaskInfo] = []
    for task in tasks:
        parent = task.parent_task_id
        if parent is not None and parent in by_id and parent != task.task_id:
            children.setdefault(parent, []).append(task)
        else:
            roots.append(task)

    def build(task: TaskInfo, depth: int) -> tuple[TaskInfo, list[Any]]:
        kids = children.get(task.task_id, []) if depth < 1000 else []
        return task, [build(kid, depth + 1) for kid in kids]

    return [build(root, 0) for root in roots]
