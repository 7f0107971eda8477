"""OpenSearch façade wire shapes: strict query-string loaders and TaskInfo dumps.

Load schemas list the parameters each REST handler reads, in the order it reads
them: the first bad value raises OpenSearch's own error (the parsers live in
``services.opensearch``); names no field reads are refused afterwards with
"unrecognized parameter", as ``BaseRestHandler`` does. Dumps keep OpenSearch's
field order (``TaskInfo.toXContent``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, pre_load

from overlord.schemas.druid import dump_task_status_plus as dump_druid_status
from overlord.services import opensearch as rules
from overlord.services.opensearch import ErrorCause, TaskFailure, TaskInfo
from overlord.timeutil import format_druid

# ------------------------------------------------------------------------------ load


class OpenSearchBoolean(fields.Field[bool]):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> bool:
        return rules.parse_boolean(str(value), False)


class OpenSearchTime(fields.Field[int]):
    """A TimeValue in nanoseconds; the error names the parameter."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> int:
        parsed = rules.parse_time_value(str(value), self.data_key or attr or "")
        assert parsed is not None
        return parsed


class OpenSearchTaskId(fields.Field[rules.TaskId]):
    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kw: Any
    ) -> rules.TaskId:
        return rules.parse_task_id(str(value))


class CommaList(fields.Field[list[str]]):
    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kw: Any
    ) -> list[str]:
        return rules.split_commas(str(value))


class RestArgsSchema(Schema):
    """What the REST channel and controller read before any handler does."""

    class Meta:
        unknown = EXCLUDE
        ordered = True

    format = fields.String(load_default=None)
    filter_path = fields.String(load_default=None)
    pretty = OpenSearchBoolean(load_default=False)
    human = OpenSearchBoolean(load_default=False)
    error_trace = OpenSearchBoolean(load_default=False)

    @pre_load
    def _last_values(self, data: Any, **kwargs: Any) -> Any:
        # OpenSearch's query-string decoder keeps the last of repeated names.
        getlist = getattr(data, "getlist", None)
        return {key: getlist(key)[-1] for key in data} if getlist else data


class ListTasksArgsSchema(RestArgsSchema):
    """``RestListTasksAction``: group_by first, then ``generateListTasksRequest``."""

    group_by = fields.String(load_default="nodes")
    nodes = CommaList(load_default=list)
    actions = CommaList(load_default=list)
    detailed = OpenSearchBoolean(load_default=False)
    wait_for_completion = OpenSearchBoolean(load_default=False)
    timeout = OpenSearchTime(load_default=None)
    # new TaskId(parent_task_id) runs after every param has been read.
    parent_task_id = OpenSearchTaskId(load_default=rules.UNSET)


class GetTaskArgsSchema(RestArgsSchema):
    """``RestGetTaskAction`` (the path's task_id is parsed before these)."""

    wait_for_completion = OpenSearchBoolean(load_default=False)
    timeout = OpenSearchTime(load_default=None)


class CancelTasksArgsSchema(RestArgsSchema):
    """``RestCancelTasksAction``; it reads ``group_by`` too (not in the spec)."""

    nodes = CommaList(load_default=list)
    actions = CommaList(load_default=list)
    parent_task_id = OpenSearchTaskId(load_default=rules.UNSET)
    group_by = fields.String(load_default="nodes")
    wait_for_completion = OpenSearchBoolean(load_default=False)


# The _cat parameters every cat handler leaves to the table renderer.
CAT_RESPONSE_PARAMS = ("format", "h", "v", "ts", "pri", "bytes", "size", "time", "s")


class CatHelpArgsSchema(RestArgsSchema):
    """``AbstractCatAction``: ``help`` is read before the handler's own params."""

    help = OpenSearchBoolean(load_default=False)


class CatTasksArgsSchema(CatHelpArgsSchema):
    """``RestTasksAction``: the list request's params, then the table's."""

    nodes = CommaList(load_default=list)
    actions = CommaList(load_default=list)
    detailed = OpenSearchBoolean(load_default=False)
    wait_for_completion = OpenSearchBoolean(load_default=False)
    timeout = OpenSearchTime(load_default=None)
    parent_task_id = OpenSearchTaskId(load_default=rules.UNSET)
    h = fields.String(load_default=None)
    v = OpenSearchBoolean(load_default=False)
    ts = OpenSearchBoolean(load_default=True)
    s = fields.String(load_default=None)
    time = fields.String(load_default=None)
    pri = fields.String(load_default=None)
    bytes = fields.String(load_default=None)
    size = fields.String(load_default=None)


class NodesInfoArgsSchema(RestArgsSchema):
    flat_settings = OpenSearchBoolean(load_default=False)
    timeout = OpenSearchTime(load_default=None)


def load_args(
    schema: Schema,
    args: Mapping[str, Any],
    path: str,
    *,
    consumed: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Load ``args`` with ``schema``, then refuse every name it does not read.

    Raises:
        OpenSearchError: the first bad value in reading order, then unrecognized
            parameters (with "did you mean").
    """
    loaded: dict[str, Any] = schema.load(args)
    known = consumed if consumed is not None else frozenset(schema.fields)
    unknown = [name for name in args if name not in known]
    if unknown:
        raise rules.unrecognized_parameters(path, unknown, known)
    return loaded


# ------------------------------------------------------------------------------ dump


def time_value_text(nanos: int) -> str:
    """``TimeValue.toString()``: the largest unit reached, one decimal truncated."""
    if nanos < 0:
        return str(nanos)
    if nanos == 0:
        return "0s"
    for size, suffix in (
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "micros"),
    ):
        if nanos >= size:
            return _decimal_text(nanos / size) + suffix
    return _decimal_text(float(nanos)) + "nanos"


def _decimal_text(value: float) -> str:
    text = repr(value)
    if "e" in text or "E" in text:
        mantissa, _, exponent = text.lower().partition("e")
        whole, _, fraction = mantissa.partition(".")
        digit = fraction[:1]
        exp = f"E{int(exponent)}"
        return f"{whole}.{digit}{exp}" if digit and digit != "0" else f"{whole}{exp}"
    whole, _, fraction = text.partition(".")
    digit = fraction[:1]
    return f"{whole}.{digit}" if digit and digit != "0" else whole


_ZERO_STAT = {"cpu_time_in_nanos": 0, "memory_in_bytes": 0}
# 2.9+ prints average/total/min/max and thread_info; Druid tasks run in their own
# processes, which OpenSearch's resource tracker cannot see: zeros, as OpenSearch
# prints for tasks without tracking.
RESOURCE_STATS = {
    "average": _ZERO_STAT,
    "total": _ZERO_STAT,
    "min": _ZERO_STAT,
    "max": _ZERO_STAT,
    "thread_info": {"thread_executions": 0, "active_threads": 0},
}


def dump_task_info(
    task: TaskInfo, *, detailed: bool, human: bool, stats: bool = True
) -> dict[str, Any]:
    """``TaskInfo.toXContent`` (2.8+ fields, ``cancelled`` always, as OpenSearch).

    ``detailed`` shows status, description and resource_stats (stored results never
    have resource_stats); ``human`` adds start_time and running_time. Written out
    rather than a marshmallow schema: a list dumps up to every active task, and a
    schema's ~50 µs per object would be most of the request.
    """
    document: dict[str, Any] = {
        "node": task.node,
        "id": task.id,
        "type": task.type,
        "action": task.action,
    }
    if detailed:
        if task.status is not None:
            document["status"] = dump_druid_status(task.status)
        if task.description is not None:
            document["description"] = task.description
    if human:
        document["start_time"] = format_druid(
            dt.datetime.fromtimestamp(task.start_time_millis / 1000, tz=dt.UTC)
        )
    document["start_time_in_millis"] = task.start_time_millis
    if human:
        document["running_time"] = time_value_text(task.running_time_nanos)
    document["running_time_in_nanos"] = task.running_time_nanos
    document["cancellable"] = task.cancellable
    document["cancelled"] = task.cancelled
    if task.parent_task_id is not None:
        document["parent_task_id"] = task.parent_task_id
    document["headers"] = task.headers
    if detailed and stats:
        document["resource_stats"] = RESOURCE_STATS
    if task.cancellation_time_millis is not None:
        document["cancellation_time_millis"] = task.cancellation_time_millis
    return document


def dump_error_cause(cause: ErrorCause, *, skip_cause: bool = False) -> dict[str, Any]:
    """``OpenSearchException.innerToXContent``: type, reason, metadata, caused_by."""
    document: dict[str, Any] = {"type": cause.type, "reason": cause.reason}
    document.update(cause.metadata)
    if cause.caused_by is not None and not skip_cause:
        document["caused_by"] = dump_error_cause(cause.caused_by)
    return document


def dump_task_failure(failure: TaskFailure) -> dict[str, Any]:
    return {
        "task_id": failure.task_id,
        "node_id": failure.node_id,
        "status": failure.status,
        "reason": dump_error_cause(failure.reason),
    }


def dump_node_summary(node: rules.Node) -> dict[str, Any]:
    """The node keys of ``group_by=nodes``: ``ip`` carries the transport port there."""
    return {
        "name": node.name,
        "transport_address": node.transport_address,
        "host": node.host,
        "ip": node.transport_address,
        "roles": list(node.roles),
    }


def dump_tasks_result(
    result: rules.TasksResult,
    node: rules.Node,
    *,
    group_by: str,
    detailed: bool,
    human: bool,
) -> dict[str, Any]:
    """``ListTasksResponse`` in one of its three groupings, failures first."""

    def dump(task: TaskInfo) -> dict[str, Any]:
        return dump_task_info(task, detailed=detailed, human=human)

    document: dict[str, Any] = {}
    if result.task_failures:
        document["task_failures"] = [dump_task_failure(f) for f in result.task_failures]
    if result.node_failures:
        document["node_failures"] = [dump_error_cause(f) for f in result.node_failures]
    if group_by == "nodes":
        nodes: dict[str, Any] = {}
        if result.tasks:
            nodes[node.id] = dump_node_summary(node) | {
                "tasks": {task.task_id: dump(task) for task in result.tasks}
            }
        document["nodes"] = nodes
    elif group_by == "parents":

        def group(task: TaskInfo, children: list[Any]) -> dict[str, Any]:
            dumped = dump(task)
            if children:
                dumped["children"] = [group(*child) for child in children]
            return dumped

        document["tasks"] = {
            task.task_id: group(task, children)
            for task, children in rules.task_forest(result.tasks)
        }
    else:
        document["tasks"] = [dump(task) for task in result.tasks]
    return document


def dump_get_result(result: rules.TaskResult, *, human: bool) -> dict[str, Any]:
    """``GetTaskResponse``: completed, task, error, response.

    A running task is detailed with resource_stats; a finished one is a stored
    result (detailed, no resource_stats). The spec's TaskResponse only fits a
    bulk-by-scroll result, so a successful Druid task's ``response`` carries zero
    bulk-by-scroll counters and Druid's status under ``druid_status``.
    """
    document: dict[str, Any] = {
        "completed": result.completed,
        "task": dump_task_info(
            result.task, detailed=True, human=human, stats=not result.completed
        ),
    }
    if result.error is not None:
        document["error"] = dump_error_cause(result.error)
    elif result.completed and result.task.status is not None:
        document["response"] = _bulk_shaped_response(result.task)
    return document


def _bulk_shaped_response(task: TaskInfo) -> dict[str, Any]:
    status = task.status
    assert status is not None
    return {
        "took": max(status.duration, 0),
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
        "druid_status": dump_druid_status(status),
    }


def dump_node_info(node: rules.Node) -> dict[str, Any]:
    """``GET /_nodes``: the one node, ``ip`` without a port here."""
    return {
        "_nodes": {"total": 1, "successful": 1, "failed": 0},
        "cluster_name": rules.CLUSTER_NAME,
        "nodes": {
            node.id: {
                "name": node.name,
                "transport_address": node.transport_address,
                "host": node.host,
                "ip": node.ip,
                "version": rules.VERSION,
                "build_type": "tar",
                "build_hash": rules.BUILD_HASH,
                "roles": list(node.roles),
            }
        },
    }


def dump_cluster_info(node: rules.Node) -> dict[str, Any]:
    """``GET /``: what opensearch-py's ``info()`` and the YAML runner read."""
    return {
        "name": node.name,
        "cluster_name": rules.CLUSTER_NAME,
        "cluster_uuid": node.cluster_uuid,
        "version": {
            "distribution": "opensearch",
            "number": rules.VERSION,
            "build_type": "tar",
            "build_hash": rules.BUILD_HASH,
            "build_date": rules.BUILD_DATE,
            "build_snapshot": False,
            "lucene_version": rules.LUCENE_VERSION,
            "minimum_wire_compatibility_version": "7.10.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "The OpenSearch Project: https://opensearch.org/",
    }


# --------------------------------------------------------------------------- _cat


@dataclass(frozen=True)
class CatColumn:
    """One column of ``RestTasksAction.getTableWithHeader``."""

    name: str
    aliases: tuple[str, ...]
    default: bool
    description: str
    detailed: bool = False


CAT_TASKS_COLUMNS = (
    CatColumn("id", (), False, "id of the task with the node"),
    CatColumn("action", ("ac",), True, "task action"),
    CatColumn("task_id", ("ti",), True, "unique task id"),
    CatColumn("parent_task_id", ("pti",), True, "parent task id"),
    CatColumn("type", ("ty",), True, "task type"),
    CatColumn("start_time", ("start",), True, "start time in ms"),
    CatColumn("timestamp", ("ts", "hms", "hhmmss"), True, "start time in HH:MM:SS"),
    CatColumn("running_time_ns", ("time",), False, "running time ns"),
    CatColumn("running_time", ("time",), True, "running time"),
    CatColumn("node_id", ("ni",), False, "unique node id"),
    CatColumn("ip", ("i",), True, "ip address"),
    CatColumn("port", ("po",), False, "bound transport port"),
    CatColumn("node", ("n",), True, "node name"),
    CatColumn("version", ("v",), False, "es version"),
    CatColumn("x_opaque_id", ("x",), False, "X-Opaque-ID header"),
    CatColumn("description", ("desc",), True, "task action", detailed=True),
    CatColumn(
        "resource_stats", (), False, "resource consumption info of the task", True
    ),
)


@dataclass(frozen=True)
class TimeCell:
    """A TimeValue cell: rendered as text, or in the unit ``time`` asks for."""

    nanos: int


_TIME_UNITS = {
    "d": 86_400_000_000_000,
    "h": 3_600_000_000_000,
    "m": 60_000_000_000,
    "s": 1_000_000_000,
    "ms": 1_000_000,
    "micros": 1_000,
    "nanos": 1,
}


def _cat_columns(detailed: bool) -> list[CatColumn]:
    return [c for c in CAT_TASKS_COLUMNS if detailed or not c.detailed]


def cat_help(detailed: bool) -> str:
    """``?help``: name | aliases | description, each padded (the last one too)."""
    columns = _cat_columns(detailed)
    rows = [(c.name, ",".join(c.aliases), c.description) for c in columns]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "".join(
        " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        + "\n"
        for row in rows
    )


def _cat_row(task: TaskInfo, node: rules.Node, detailed: bool) -> dict[str, Any]:
    start = dt.datetime.fromtimestamp(task.start_time_millis / 1000, tz=dt.UTC)
    row: dict[str, Any] = {
        "id": task.id,
        "action": task.action,
        "task_id": task.task_id,
        "parent_task_id": task.parent_task_id or "-",
        "type": task.type,
        "start_time": task.start_time_millis,
        "timestamp": start.strftime("%H:%M:%S"),
        "running_time_ns": task.running_time_nanos,
        "running_time": TimeCell(task.running_time_nanos),
        "node_id": node.id[:4],
        "ip": node.ip,
        "port": node.port,
        "node": node.name,
        "version": rules.VERSION,
        "x_opaque_id": task.headers.get("X-Opaque-Id", "-"),
    }
    if detailed:
        row["description"] = task.description
        row["resource_stats"] = _resource_stats_text()
    return row


def _resource_stats_text() -> str:
    # TaskResourceStats.toString(): pretty-printed JSON over several lines.
    lines = ["{"]
    for index, (name, value) in enumerate(RESOURCE_STATS.items()):
        inner = ",\n".join(f'    "{k}" : {v}' for k, v in value.items())
        comma = "," if index < len(RESOURCE_STATS) - 1 else ""
        lines.append(f'  "{name}" : {{\n{inner}\n  }}{comma}')
    lines.append("}")
    return "\n".join(lines)


def _display_columns(
    h: str | None, ts: bool, columns: list[CatColumn]
) -> list[tuple[str, str]]:
    """``RestTable.buildDisplayHeaders``: (column, shown name) pairs."""
    shown: list[tuple[str, str]] = []
    if h is None:
        shown = [(c.name, c.name) for c in columns if c.default]
    else:
        requested: list[str] = []
        for item in rules.split_commas(h):
            if "*" in item:
                for column in columns:
                    if rules.simple_match([item], column.name) or any(
                        rules.simple_match([item], alias) for alias in column.aliases
                    ):
                        requested.append(column.name)
            else:
                requested.append(item)
        names = {c.name for c in columns}
        for item in dict.fromkeys(requested):
            if item in names:
                shown.append((item, item))
                continue
            match = None
            for column in columns:  # a shared alias resolves to the later column
                if item in column.aliases:
                    match = (column.name, item)
            if match is not None:
                shown.append(match)
    return [pair for pair in shown if ts or pair[0] != "timestamp"]


def _sort_rows(
    rows: list[dict[str, Any]], s: str | None, columns: list[CatColumn]
) -> list[dict[str, Any]]:
    if s is None:
        return rows
    aliases: dict[str, str] = {}
    for column in columns:
        aliases[column.name] = column.name
        for alias in column.aliases:
            aliases[alias] = column.name
    keys: list[tuple[str, bool]] = []
    for item in rules.split_commas(s):
        name, reverse = item, False
        if name.endswith(":desc"):
            name, reverse = name[: -len(":desc")], True
        elif name.endswith(":asc"):
            name = name[: -len(":asc")]
        if name not in aliases:
            raise rules.OpenSearchError(
                ErrorCause(
                    "unsupported_operation_exception",
                    f"Unable to sort by unknown sort key `{name}`",
                    opensearch=False,
                ),
                # OpenSearch answers 500 (an UnsupportedOperationException); issue 8
                # wants every bad input a 4xx, so the type and text stay, not the 500.
                400,
            )
        keys.append((aliases[name], reverse))
    ordered = list(rows)
    for name, reverse in reversed(keys):

        def key(row: dict[str, Any], name: str = name) -> tuple[int, Any]:
            value = row.get(name)
            if isinstance(value, TimeCell):
                value = value.nanos
            return (0, 0) if value is None else (1, value)

        ordered.sort(key=key, reverse=reverse)
    return ordered


def _render_cell(value: Any, time_unit: str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, TimeCell):
        if time_unit in _TIME_UNITS:
            return str(value.nanos // _TIME_UNITS[time_unit])
        return time_value_text(value.nanos)
    return str(value)


@dataclass(frozen=True)
class CatTable:
    """The rendered ``_cat/tasks`` table: shown names and string cells."""

    headers: list[str]
    rows: list[list[str | None]]

    def text(self, verbose: bool) -> str:
        lines = ([self.headers] if verbose else []) + [
            [cell or "" for cell in row] for row in self.rows
        ]
        if not lines or not self.headers:
            return "\n" * len(lines)
        widths = [max(len(line[i]) for line in lines) for i in range(len(self.headers))]
        out = []
        for line in lines:
            cells = [
                cell if i == len(line) - 1 else cell.ljust(widths[i])
                for i, cell in enumerate(line)
            ]
            out.append(" ".join(cells) + "\n")
        return "".join(out)

    def documents(self) -> list[dict[str, str | None]]:
        return [dict(zip(self.headers, row, strict=True)) for row in self.rows]


def cat_tasks_table(
    tasks: list[TaskInfo],
    node: rules.Node,
    *,
    detailed: bool,
    h: str | None,
    ts: bool,
    s: str | None,
    time_unit: str | None,
) -> CatTable:
    """Rows as a parent/child forest (each level by start time), then ``s``.

    Raises:
        OpenSearchError: an unknown sort key (400; OpenSearch answers 500).
    """
    columns = _cat_columns(detailed)
    rows: list[dict[str, Any]] = []

    def walk(forest: list[tuple[TaskInfo, list[Any]]]) -> None:
        for task, children in sorted(forest, key=lambda g: g[0].start_time_millis):
            rows.append(_cat_row(task, node, detailed))
            walk(children)

    walk(rules.task_forest(tasks))
    rows = _sort_rows(rows, s, columns)
    shown = _display_columns(h, ts, columns)
    return CatTable(
        headers=[display for _, display in shown],
        rows=[
            [_render_cell(row[name], time_unit) for name, _ in shown] for row in rows
        ],
    )
