"""``/console``: a small task page served by the same server (no external CDN, no
build step): the tasks table, a task's detail with shutdown, the pending segments of
a datasource with the delete action, and the workers. The page calls the public
Druid endpoints; the only endpoint of its own is the pending-segment list Druid's
Overlord API lacks."""

from __future__ import annotations

from importlib import resources

from flask import Blueprint, Response

from overlord.api import routes
from overlord.api.checks import AuthenticatedOnly, PathDatasource
from overlord.api.docs import (
    DATASOURCE,
    HTML_PAGE,
    NULL_STRING,
    STRING,
    Operation,
    json_answer,
)
from overlord.api.responses import json_response
from overlord.api.state import database
from overlord.services import segments as segment_service
from overlord.services.auth import READ

bp = Blueprint("console", __name__)
PAGE = resources.files("overlord.api").joinpath("console/index.html")


@routes.get(
    bp,
    "/console",
    check=AuthenticatedOnly("the page: each API call it makes is checked on its own"),
    doc=Operation("The web console page.", "Console", {"200": HTML_PAGE}),
)
def get_console() -> Response:
    response = Response(PAGE.read_bytes(), content_type="text/html; charset=utf-8")
    # The page is offline-only: it loads nothing but itself and this server's API.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; "
        "style-src 'self' 'unsafe-inline'"
    )
    response.headers["Cache-Control"] = "no-cache"
    return response


@routes.get(
    bp,
    "/console/api/pendingSegments/<path:datasource>",
    check=PathDatasource("datasource", (READ,)),
    doc=Operation(
        "Pending segments of a datasource, newest first (the console's list).",
        "Console",
        {
            "200": json_answer(
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
)
def get_pending_segments(datasource: str) -> Response:
    return json_response(
        database().run(
            lambda session: segment_service.list_pending_segments(session, datasource)
        )
    )
