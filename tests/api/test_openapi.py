"""``/openapi.json`` describes every route the app serves, and a live server keeps
its promises: schemathesis fuzzes every operation (no 5xx, no answer that breaks
its own documented schema)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from overlord.api import routes
from overlord.api.openapi import openapi_path
from tests.processes import serve_process


def test_every_route_and_method_is_documented_and_nothing_else(
    app: Flask, client: FlaskClient
) -> None:
    document = client.get("/openapi.json").json
    served = {
        (openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    documented = {
        (path, method)
        for path, operations in document["paths"].items()
        for method in operations
    }
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}

    assert documented == served
    # Every declared route is served, and nothing else is.
    assert routes.endpoints() == endpoints
    ids = [
        entry["operationId"]
        for operations in document["paths"].values()
        for entry in operations.values()
    ]
    assert len(ids) == len(set(ids))
    assert document["openapi"] == "3.1.0"
    status = document["paths"]["/druid/indexer/v1/task/{task_id}/status"]["get"]
    assert status["parameters"] == [
        {
            "name": "task_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": "A Druid task id (any text but '/').",
        }
    ]
    # The marshmallow schema the views dump with is the documented one.
    plus = document["components"]["schemas"]["TaskStatusPlus"]["properties"]
    assert list(plus) == [
        "id",
        "groupId",
        "type",
        "createdTime",
        "queueInsertionTime",
        "statusCode",
        "status",
        "runnerStatusCode",
        "duration",
        "location",
        "dataSource",
        "errorMsg",
    ]


def test_rendered_page_lists_the_operations(client: FlaskClient) -> None:
    response = client.get("/openapi")

    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    page = response.get_data(as_text=True)
    assert "<code>/druid/indexer/v1/task/{task_id}/status</code>" in page
    assert "<code>/_tasks</code>" in page


def test_schemathesis_finds_no_server_error_and_no_broken_schema(
    database_url: str, tmp_path: Path
) -> None:
    with serve_process(
        database_url, tmp_path, "--workers", "0", env={"OVERLORD_ACCESS_LOG": "false"}
    ) as server:
        server.wait_healthy()
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{server.base_url}/openapi.json",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                # Druid answers a failed task action with 500 on purpose (peons
                # retry, spec §1.15.1); the 405/400 catch-alls answer nothing else.
                "--exclude-operation-id",
                "druid.post_action.post",
                "--exclude-operation-id-regex",
                "wrong_method|_no_handler",
                "--max-examples",
                "20",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--seed",
                "1",
                "--no-color",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
