"""``GET /openapi.json`` and ``GET /openapi``: an OpenAPI 3.1 document of every
route the app serves, built with apispec (marshmallow plugin) from the schemas the
views use, and a rendered page.

Every route of the app's URL map is described by exactly one entry of OPERATIONS
(keyed by Flask endpoint); tests/api/test_openapi.py enumerates ``app.url_map``
against the document, so a new route without its entry fails the suite.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app

from overlord import __version__
from overlord.api.responses import json_response
from overlord.schemas.druid import (
    TaskLocationSchema,
    TaskStatusPlusSchema,
    TaskStatusSchema,
)

bp = Blueprint("openapi", __name__)

JSON = "application/json"
TEXT = "text/plain"
ANY: dict[str, Any] = {}
STRING = {"type": "string"}
NULL_STRING = {"type": ["string", "null"]}
INTEGER = {"type": "integer"}
OBJECT = {"type": "object"}
TASK_STATUS_PLUS = {"$ref": "#/components/schemas/TaskStatusPlus"}
TASK_STATUS = {"$ref": "#/components/schemas/TaskStatus"}
ERROR = {
    "type": "object",
    "properties": {"error": {}},
    "description": 'Druid\'s `{"error": …}` or its DruidException envelope.',
}


@dataclass(frozen=True)
class Param:
    name: str
    where: str = "query"
    schema: dict[str, Any] = field(default_factory=lambda: dict(STRING))
    description: str = ""
    required: bool = False

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "name": self.name,
            "in": self.where,
            "required": self.required or self.where == "path",
            "schema": self.schema,
        }
        if self.description:
            document["description"] = self.description
        return document


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {TEXT: {"schema": STRING}}}


def _any(description: str) -> dict[str, Any]:
    """An answer whose body differs by surface or client (JSON, text or empty)."""
    return {"description": description}


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    responses: dict[str, dict[str, Any]]
    params: tuple[Param, ...] = ()
    body: dict[str, Any] | None = None
    example: Any = None
    # Operations schemathesis must not fuzz, with the reason.
    not_fuzzed: str = ""


TASK_ID = Param("task_id", "path", description="A Druid task id (any text but '/').")
DATASOURCE = Param("datasource", "path")
NOT_FOUND_TASK = _any("No such task.")
BAD = _json(ERROR, "Bad input (Druid's error body).")
LIST_PARAMS = (
    Param("state", description="waiting, pending, running or complete."),
    Param("datasource"),
    Param("type"),
    Param("createdTimeInterval", description="ISO interval or period."),
    Param("max", description="At most this many complete tasks."),
)
TASK_LIST = _json({"type": "array", "items": TASK_STATUS_PLUS}, "Task summaries.")
OPENSEARCH_PARAMS = (
    Param("pretty"),
    Param("human"),
    Param("error_trace"),
    Param("filter_path"),
    Param("format"),
)
OPENSEARCH_ERROR = _any("OpenSearch's error envelope.")
WRONG_METHOD = Operation(
    "Any other method: OpenSearch's 405 answer.",
    "OpenSearch _tasks",
    {"405": OPENSEARCH_ERROR},
    not_fuzzed="answers every request with 405 by design",
)
LOCK_POLICIES = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "datasource": STRING,
            "priority": INTEGER,
            "intervals": {"type": ["array", "null"], "items": STRING},
            "context": {"type": ["object", "null"]},
        },
        "required": ["datasource"],
    },
}

OPERATIONS: dict[str, Operation] = {
    # ------------------------------------------------------------------ Druid
    "druid.submit_task": Operation(
        "Submit a task (Druid's POST /task).",
        "Druid tasks",
        {
            "200": _json(
                {
                    "type": "object",
                    "properties": {"task": STRING},
                    "required": ["task"],
                },
                "Accepted: the task id.",
            ),
            "400": BAD,
            "413": _any("Body too large."),
        },
        body={
            "type": "object",
            "properties": {"type": STRING},
            "description": "A Druid task spec.",
        },
    ),
    "druid.get_task": Operation(
        "A task's payload as Druid serialises it.",
        "Druid tasks",
        {
            "200": _json(
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
    "druid.get_task_status": Operation(
        "A task's status (what Airflow's DruidHook polls).",
        "Druid tasks",
        {
            "200": _json(
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
    "druid.get_task_reports": Operation(
        "A task's reports (ingestionStatsAndErrors …).",
        "Druid tasks",
        {"200": _json(OBJECT, "Reports by key."), "404": _any("No report yet.")},
        (TASK_ID,),
    ),
    "druid.get_task_log": Operation(
        "A task's log; offset > 0 from that byte, < 0 the last bytes.",
        "Druid tasks",
        {
            "200": _text("The log."),
            "404": _any("No log yet."),
            "400": _any("Bad offset."),
        },
        (TASK_ID, Param("offset", schema={"type": "integer"})),
    ),
    "druid.get_task_segments": Operation(
        "Deprecated: Druid 31+ answers 404 always.",
        "Druid tasks",
        {"404": _json(ERROR, "Segment ids are not kept per task.")},
        (TASK_ID,),
    ),
    "druid.shutdown_task": Operation(
        "Shut a task down (final at once: FAILED 'Shutdown request from user').",
        "Druid tasks",
        {
            "200": _json(
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
    "druid.shutdown_all_tasks": Operation(
        "Shut down every active task of a datasource.",
        "Druid tasks",
        {
            "200": _json(
                {
                    "type": "object",
                    "properties": {"dataSource": STRING},
                    "required": ["dataSource"],
                },
                "Done.",
            ),
            "404": _any("No active task (empty body)."),
        },
        (DATASOURCE,),
    ),
    "druid.post_task_statuses": Operation(
        "Statuses of many tasks (unknown ids omitted).",
        "Druid tasks",
        {
            "200": _json(
                {"type": "object", "additionalProperties": TASK_STATUS},
                "Statuses by id.",
            ),
            "400": _any("No task ids provided."),
        },
        body={"type": "array", "items": STRING},
    ),
    "druid.list_tasks": Operation(
        "Task summaries: complete newest first, then active oldest first.",
        "Druid tasks",
        {"200": TASK_LIST, "400": _any("Bad parameter.")},
        LIST_PARAMS,
    ),
    "druid.list_waiting_tasks": Operation(
        "Waiting tasks (legacy list).", "Druid tasks", {"200": TASK_LIST}
    ),
    "druid.list_pending_tasks": Operation(
        "Pending tasks (legacy list).", "Druid tasks", {"200": TASK_LIST}
    ),
    "druid.list_running_tasks": Operation(
        "Running tasks (legacy list).",
        "Druid tasks",
        {"200": TASK_LIST},
        (Param("type"),),
    ),
    "druid.list_complete_tasks": Operation(
        "Complete tasks (legacy list).",
        "Druid tasks",
        {"200": TASK_LIST, "400": _any("Bad parameter.")},
        (Param("n"),),
    ),
    "druid.delete_pending_segments": Operation(
        "Delete the pending segments of a datasource created in an interval.",
        "Druid segments",
        {
            "200": _json(
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
    "druid.post_action": Operation(
        "A task action (peons and tasks; not for end users).",
        "Druid internal",
        {
            "200": _json(
                {"type": "object", "properties": {"result": {}}}, "The action's result."
            ),
            "400": BAD,
            "500": _json(ERROR, "The action failed: peons retry."),
        },
        body={"type": "object", "properties": {"task": OBJECT, "action": OBJECT}},
        not_fuzzed="Druid answers a failed action with 500 on purpose (peons retry, spec §1.15.1)",
    ),
    "druid.post_active_locks": Operation(
        "Active locks per datasource for lock filter policies.",
        "Druid locks",
        {
            "200": _json(
                {"type": "object", "properties": {"datasourceToLocks": OBJECT}},
                "Locks.",
            ),
            "400": _any("Bad body."),
        },
        body=LOCK_POLICIES,
    ),
    "druid.post_locked_intervals": Operation(
        "Locked intervals per datasource (v2, policies).",
        "Druid locks",
        {"200": _json(OBJECT, "Intervals by datasource."), "400": _any("Bad body.")},
        body=LOCK_POLICIES,
    ),
    "druid.post_locked_intervals_v1": Operation(
        "Locked intervals per datasource (v1, minimum priority per datasource).",
        "Druid locks",
        {"200": _json(OBJECT, "Intervals by datasource."), "400": _any("Bad body.")},
        body={"type": "object", "additionalProperties": INTEGER},
    ),
    "druid.get_workers": Operation(
        "Workers with their slots and running tasks.",
        "Druid workers",
        {"200": _json({"type": "array", "items": OBJECT}, "Workers.")},
    ),
    "druid.get_total_worker_capacity": Operation(
        "Slots of the live workers.",
        "Druid workers",
        {
            "200": _json(
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
    "druid.get_leader": Operation(
        "The leader's URL.", "Druid leadership", {"200": _text("URL.")}
    ),
    "druid.is_leader": Operation(
        "Whether this server leads.",
        "Druid leadership",
        {
            "200": _json(
                {"type": "object", "properties": {"leader": {"type": "boolean"}}},
                "Always the leader today.",
            )
        },
    ),
    "druid.get_worker_config": Operation(
        "The worker behaviour config.",
        "Druid workers",
        {"200": _any("The config (JSON), or empty when none was set.")},
    ),
    "druid.set_worker_config": Operation(
        "Set the worker behaviour config.",
        "Druid workers",
        {"200": _any("Stored."), "400": BAD},
        body=OBJECT,
    ),
    "druid.get_worker_config_history": Operation(
        "Changes of the worker config.",
        "Druid workers",
        {
            "200": _json({"type": "array", "items": OBJECT}, "Audit entries."),
            "400": BAD,
        },
        (Param("interval"), Param("count")),
    ),
    # ----------------------------------------------------------- Coordinator
    "coordinator.get_datasources": Operation(
        "Datasources with used segments (Druid Coordinator metadata path).",
        "Druid segments",
        {"200": _json({"type": "array", "items": STRING}, "Names.")},
        (Param("full"), Param("simple")),
    ),
    "coordinator.get_datasource_segments": Operation(
        "Used segments of a datasource (DataSegment JSON with ?full).",
        "Druid segments",
        {
            "200": _json({"type": "array"}, "Segments or ids."),
            "404": _any("No used segment (empty body)."),
        },
        (DATASOURCE, Param("full")),
    ),
    # ----------------------------------------------------------------- process
    "health.get_status": Operation(
        "Version and memory (Druid's /status).",
        "Process",
        {
            "200": _json(
                {"type": "object", "properties": {"version": STRING}}, "Status."
            )
        },
    ),
    "health.get_health": Operation(
        "Liveness: `true`.", "Process", {"200": _json({"const": True}, "Healthy.")}
    ),
    "health.get_properties": Operation(
        "Effective settings (passwords masked).",
        "Process",
        {"200": _json({"type": "object", "additionalProperties": STRING}, "Settings.")},
    ),
    "metrics.get_metrics": Operation(
        "Prometheus metrics.",
        "Process",
        {"200": _text("Text exposition format 0.0.4.")},
    ),
    "openapi.get_openapi": Operation(
        "This document.", "Process", {"200": _json(OBJECT, "OpenAPI 3.1.")}
    ),
    "openapi.get_openapi_page": Operation(
        "This document, rendered.",
        "Process",
        {"200": {"description": "HTML.", "content": {"text/html": {"schema": STRING}}}},
    ),
    # ----------------------------------------------------------------- console
    "console.get_console": Operation(
        "The web console page.",
        "Console",
        {"200": {"description": "HTML.", "content": {"text/html": {"schema": STRING}}}},
    ),
    "console.get_pending_segments": Operation(
        "Pending segments of a datasource, newest first (the console's list).",
        "Console",
        {
            "200": _json(
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": STRING,
                            "interval": STRING,
                            "version": NULL_STRING,
                            "partitionNum": {"type": ["integer", "null"]},
                            "sequenceName": STRING,
                            "taskAllocatorId": NULL_STRING,
                            "createdDate": NULL_STRING,
                        },
                    },
                },
                "Pending segments.",
            )
        },
        (DATASOURCE,),
    ),
    # -------------------------------------------------------------- OpenSearch
    "opensearch.cluster_info": Operation(
        "Cluster info (OpenSearch's GET /).",
        "OpenSearch _tasks",
        {"200": _json(OBJECT, "Info.")},
        OPENSEARCH_PARAMS,
    ),
    "opensearch.nodes_info": Operation(
        "The one node.",
        "OpenSearch _tasks",
        {"200": _json(OBJECT, "Nodes."), "400": OPENSEARCH_ERROR},
        OPENSEARCH_PARAMS,
    ),
    "opensearch.list_tasks": Operation(
        "List tasks (OpenSearch's GET _tasks).",
        "OpenSearch _tasks",
        {
            "200": _json(OBJECT, "Tasks by node or parent."),
            "400": OPENSEARCH_ERROR,
            "404": OPENSEARCH_ERROR,
            "408": OPENSEARCH_ERROR,
            "429": OPENSEARCH_ERROR,
        },
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
    "opensearch.get_task": Operation(
        "One task (OpenSearch's GET _tasks/{id}).",
        "OpenSearch _tasks",
        {
            "200": _json(OBJECT, "The task."),
            "400": OPENSEARCH_ERROR,
            "404": OPENSEARCH_ERROR,
            "408": OPENSEARCH_ERROR,
            "429": OPENSEARCH_ERROR,
        },
        (
            Param("task_id", "path"),
            *OPENSEARCH_PARAMS,
            Param("wait_for_completion"),
            Param("timeout"),
        ),
    ),
    "opensearch.cancel_tasks": Operation(
        "Cancel tasks (OpenSearch's POST _tasks[/{id}]/_cancel).",
        "OpenSearch _tasks",
        {
            "200": _json(OBJECT, "Cancelled tasks by node."),
            "400": OPENSEARCH_ERROR,
            "404": OPENSEARCH_ERROR,
            "408": OPENSEARCH_ERROR,
            "429": OPENSEARCH_ERROR,
        },
        (
            *OPENSEARCH_PARAMS,
            Param("nodes"),
            Param("actions"),
            Param("parent_task_id"),
            Param("wait_for_completion"),
            Param("timeout"),
        ),
    ),
    "opensearch.cat_tasks": Operation(
        "Tasks as a table (OpenSearch's _cat/tasks).",
        "OpenSearch _tasks",
        {"200": _any("Text table, or JSON with format=json."), "400": OPENSEARCH_ERROR},
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
    "opensearch._no_handler": Operation(
        "Any other _tasks path: OpenSearch's 'no handler' answers.",
        "OpenSearch _tasks",
        {"400": OPENSEARCH_ERROR, "405": OPENSEARCH_ERROR},
        (Param("rest", "path"),),
        not_fuzzed="answers every request with an error by design",
    ),
}


def operation_for(endpoint: str) -> Operation:
    if endpoint.startswith("opensearch.wrong_method_"):
        return WRONG_METHOD
    return OPERATIONS[endpoint]


def openapi_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path template (``<path:task_id>`` → ``{task_id}``)."""
    parts = []
    for piece in rule.split("<"):
        if ">" in piece:
            variable, rest = piece.split(">", 1)
            parts.append("{" + variable.split(":")[-1] + "}" + rest)
        else:
            parts.append(piece)
    return "".join(parts)


def build_document(app: Flask) -> dict[str, Any]:
    spec = APISpec(
        title="overlord",
        version=__version__,
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Apache Druid's Overlord task API and OpenSearch's _tasks API "
            "over one SQL store."
        },
    )
    spec.components.schema("TaskLocation", schema=TaskLocationSchema)
    spec.components.schema("TaskStatusPlus", schema=TaskStatusPlusSchema)
    spec.components.schema("TaskStatus", schema=TaskStatusSchema)
    paths: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if rule.endpoint == "static":
            continue
        found = operation_for(rule.endpoint)
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        path = openapi_path(rule.rule)
        for method in methods:
            operation_id = f"{rule.endpoint}.{method.lower()}"
            if operation_id in seen:  # one view serving two rules (_tasks/_cancel)
                operation_id = f"{rule.endpoint}_{len(rule.arguments)}.{method.lower()}"
            seen.add(operation_id)
            entry: dict[str, Any] = {
                "operationId": operation_id,
                "summary": found.summary,
                "tags": [found.tag],
                "responses": found.responses,
            }
            # Path parameters come from the rule itself (an endpoint may serve
            # rules with and without one, e.g. _tasks/_cancel); described ones
            # keep their description.
            described = {p.name: p for p in found.params if p.where == "path"}
            params = [
                described.get(name, Param(name, "path")).document()
                for name in sorted(rule.arguments)
            ] + [param.document() for param in found.params if param.where != "path"]
            if params:
                entry["parameters"] = params
            if found.body is not None and method in ("POST", "PUT", "PATCH"):
                media: dict[str, Any] = {"schema": found.body}
                if found.example is not None:
                    media["example"] = found.example
                entry["requestBody"] = {"content": {JSON: media}}
            if found.not_fuzzed:
                entry["x-not-fuzzed"] = found.not_fuzzed
            paths.setdefault(path, {})[method.lower()] = entry
    _link_submit_to_task_operations(paths)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def document_of(app: Flask) -> dict[str, Any]:
    cached: dict[str, Any] | None = app.extensions.get("overlord.openapi")
    if cached is None:
        cached = build_document(app)
        app.extensions["overlord.openapi"] = cached
    return cached


TASK_OPERATIONS = (
    "druid.get_task.get",
    "druid.get_task_status.get",
    "druid.get_task_reports.get",
    "druid.get_task_log.get",
    "druid.shutdown_task.post",
)


def _link_submit_to_task_operations(paths: dict[str, dict[str, Any]]) -> None:
    """OpenAPI links from a submit's ``{"task": id}`` to the task's own operations
    (clients and stateful fuzzers follow them)."""
    submit = paths["/druid/indexer/v1/task"]["post"]
    accepted = dict(submit["responses"]["200"])
    accepted["links"] = {
        operation_id.split(".")[1]: {
            "operationId": operation_id,
            "parameters": {"task_id": "$response.body#/task"},
        }
        for operation_id in TASK_OPERATIONS
    }
    submit["responses"] = {**submit["responses"], "200": accepted}


@bp.get("/openapi.json")
def get_openapi() -> Response:
    return json_response(document_of(current_app._get_current_object()))  # type: ignore[attr-defined]


@bp.get("/openapi")
def get_openapi_page() -> Response:
    """The document as a page: one section per path, no script, no CDN."""
    document = document_of(current_app._get_current_object())  # type: ignore[attr-defined]
    rows = []
    for path, operations in document["paths"].items():
        for method, entry in operations.items():
            codes = ", ".join(sorted(entry["responses"]))
            params = ", ".join(p["name"] for p in entry.get("parameters", []))
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(entry['summary'])}</td><td>{html.escape(params)}</td><td>{codes}</td></tr>"
            )
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>overlord API</title>"
        "<style>body{font:14px system-ui,sans-serif;margin:1rem}td,th{padding:.25rem .5rem;"
        "border-bottom:1px solid #ddd;text-align:left;vertical-align:top}</style></head><body>"
        f"<h1>overlord API {html.escape(__version__)}</h1>"
        '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>'
        "<table><tr><th>Method</th><th>Path</th><th>What</th><th>Parameters</th><th>Answers</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
    return Response(page, content_type="text/html; charset=utf-8")


__all__ = ["OPERATIONS", "bp", "build_document", "document_of"]
