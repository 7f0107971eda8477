"""Druid's Coordinator metadata paths (``MetadataResource``) that clients of the
indexing service read: datasources with used segments and their segments."""

from __future__ import annotations

from flask import Blueprint, Response, request

from overlord.api import security
from overlord.api.responses import json_response
from overlord.api.state import database
from overlord.services import coordinator as coordinator_service

bp = Blueprint("coordinator", __name__, url_prefix="/druid/coordinator/v1/metadata")


@bp.get("/datasources")
def get_datasources() -> Response:
    names = database().run(coordinator_service.used_datasources)
    readable = security.datasource_filter()
    if readable is not None:
        # MetadataResource filters the datasources by READ on each.
        names = [name for name in names if readable(name)]
    return json_response(names)


@bp.get("/datasources/<string:datasource>/segments")
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
