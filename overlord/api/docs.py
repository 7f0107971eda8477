"""The OpenAPI vocabulary route declarations use (``doc=Operation(…)`` in
``api/routes.py``): operations, parameters, answers and the shared JSON schemas.
Data only; ``api/openapi.py`` builds the document from the declared operations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


def json_answer(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def text_answer(description: str) -> dict[str, Any]:
    return {"description": description, "content": {TEXT: {"schema": STRING}}}


def any_answer(description: str) -> dict[str, Any]:
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
NOT_FOUND_TASK = any_answer("No such task.")
BAD = json_answer(ERROR, "Bad input (Druid's error body).")
LIST_PARAMS = (
    Param("state", description="waiting, pending, running or complete."),
    Param("datasource"),
    Param("type"),
    Param("createdTimeInterval", description="ISO interval or period."),
    Param("max", description="At most this many complete tasks."),
)
TASK_LIST = json_answer({"type": "array", "items": TASK_STATUS_PLUS}, "Task summaries.")
OPENSEARCH_PARAMS = (
    Param("pretty"),
    Param("human"),
    Param("error_trace"),
    Param("filter_path"),
    Param("format"),
)
OPENSEARCH_ERROR = any_answer("OpenSearch's error envelope.")
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
HTML_PAGE = {"description": "HTML.", "content": {"text/html": {"schema": STRING}}}
