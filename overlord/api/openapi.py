"""``GET /openapi.json`` and ``GET /openapi``: an OpenAPI 3.1 document of every
route the app serves, built with apispec (marshmallow plugin) from the schemas the
views use, and a rendered page.

Every rule of the app's URL map is described by the operation its route declared
(``doc=`` in ``api/routes.py``; an undeclared route fails app creation);
tests/api/test_openapi.py enumerates ``app.url_map`` against the document.
"""

from __future__ import annotations

import html
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app

from overlord import __version__
from overlord.api import routes
from overlord.api.checks import AuthenticatedOnly
from overlord.api.docs import HTML_PAGE, JSON, OBJECT, Operation, Param, json_answer
from overlord.api.responses import json_response
from overlord.schemas.druid import (
    TaskLocationSchema,
    TaskStatusPlusSchema,
    TaskStatusSchema,
)

bp = Blueprint("openapi", __name__)


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
        declared = routes.declared(rule.endpoint)
        if declared is None:
            raise routes.RouteDeclarationError(f"{rule.endpoint} is not declared")
        found = declared.doc
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


_ANY_USER = AuthenticatedOnly("the API document: any user")


@routes.get(
    bp,
    "/openapi.json",
    check=_ANY_USER,
    doc=Operation(
        "This document.", "Process", {"200": json_answer(OBJECT, "OpenAPI 3.1.")}
    ),
)
def get_openapi() -> Response:
    return json_response(document_of(current_app._get_current_object()))  # type: ignore[attr-defined]


@routes.get(
    bp,
    "/openapi",
    check=_ANY_USER,
    doc=Operation("This document, rendered.", "Process", {"200": HTML_PAGE}),
)
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


__all__ = ["bp", "build_document", "document_of"]
