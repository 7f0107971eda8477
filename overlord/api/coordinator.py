"""Druid's Coordinator metadata paths (``MetadataResource``) that clients of the
indexing service read: datasources with used segments and their segments."""

from __future__ import annotations

from flask import Blueprint, Response, request

from overlord.api import routes, security
from overlord.api.checks import PathDatasource, in_view
from overlord.api.docs import (
    DATASOURCE,
    STRING,
    Operation,
    Param,
    any_answer,
    json_answer,
)
from overlord.api.responses import json_response
from overlord.api.state import database
from overlord.services import coordinator as coordinator_service
from overlord.services.auth import READ

bp = Blueprint("coordinator", __name__, url_prefix="/druid/coordinator/v1/metadata")


# MetadataResource: the list is filtered per datasource, a datasource's segments
# need READ on it.
@routes.get(
    bp,
    "/datasources",
    check=in_view("rows"),
    doc=Operation(
        "Datasources with used segments (Druid Coordinator metadata path).",
        "Druid segments",
        {"200": json_answer({"type": "array", "items": STRING}, "Names.")},
        (Param("full"), Param("simple")),
    ),
)
def get_datasources() -> Response:
    names = database().run(coordinator_service.used_datasources)
    readable = security.datasource_filter()
    if readable is not None:
        # MetadataResource filters the datasources by READ on each.
        names = [name for name in names if readable(name)]
    return json_response(names)


@routes.get(
    bp,
    "/datasources/<string:datasource>/segments",
    check=PathDatasource("datasource", (READ,)),
    doc=Operation(
        "Used segments of a datasource (DataSegment JSON with ?full).",
        "Druid segments",
        {
            "200": json_answer({"type": "array"}, "Segments or ids."),
            "404": any_answer("No used segment (empty body)."),
        },
        (DATASOURCE, Param("full")),
    ),
)
def get_datasource_segments(datasource: str) -> Response:
    segments = database().run(
        lambda session: coordinator_service.used_segments(session, datasource)
    )
    if segments is None:
        # MetadataResource.getUsedSegmentsInDataSource: no used segment ⇒ 404,
        # empty body.
        return Response(status=404)
    if "full" in request.args:
        return json_response(segments)
    # Without ``full``: the segment ids only.
    return json_response([segment.get("identifier") for segment in segments])
