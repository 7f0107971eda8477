"""One table from domain errors to Druid's status and body per error (spec §0, §1).

HTTP errors (404 route, 405, 413, 415) keep their headers, ``Allow`` included.
"""

from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from overlord.api.responses import (
    druid_exception_response,
    empty_response,
    error_response,
    json_response,
    text_response,
)
from overlord.errors import (
    AccessDenied,
    ActionFailed,
    DatabaseBusy,
    InvalidInput,
    InvalidTaskId,
    LogNotFound,
    NoActiveTasks,
    OverlordError,
    ReportNotFound,
    TaskAlreadyExists,
    TaskNotFound,
)

log = logging.getLogger(__name__)


class TextInvalidInput(InvalidInput):
    """An InvalidInput that Druid answers as a bare ``text/plain`` 400 body
    (``Invalid task state[…]``, ``No Task IDs provided.``, ``No filter provided``)."""


class TextAccessDenied(AccessDenied):
    """Druid's text/plain 403: ``GET /tasks?datasource=X`` without READ on X, and the
    security management API (BasicSecurityResourceFilter)."""


def render_overlord_error(error: OverlordError) -> Response:
    if isinstance(error, TextAccessDenied):
        return text_response("Access-Check-Result: Unauthorized", 403)
    if isinstance(error, AccessDenied):
        # Druid's ForbiddenExceptionMapper with the basic authorizer.
        return json_response({"Access-Check-Result": "Unauthorized"}, 403)
    if isinstance(error, TaskNotFound):
        # Druid's TaskResourceFilter: 404 text/plain, before the endpoint runs.
        return text_response(error.message, 404)
    if isinstance(error, TaskAlreadyExists):
        return druid_exception_response(
            status=400,
            code="entryAlreadyExists",
            category="INVALID_INPUT",
            message=error.message,
        )
    if isinstance(error, InvalidTaskId):
        return druid_exception_response(
            status=400,
            code="invalidInput",
            category="INVALID_INPUT",
            message=error.message,
        )
    if isinstance(error, TextInvalidInput):
        return text_response(error.message, 400)
    if isinstance(error, InvalidInput):
        return error_response(error.message, 400)
    if isinstance(error, NoActiveTasks):
        return empty_response(404)
    if isinstance(error, ReportNotFound | LogNotFound):
        return text_response(error.message, 404)
    if isinstance(error, ActionFailed):
        # The one 500 on purpose: Druid's peons retry task actions on it.
        return error_response(error.message, 500)
    if isinstance(error, DatabaseBusy):
        response = error_response(error.message, 503)
        response.headers["Retry-After"] = "1"
        return response
    log.error("unmapped domain error %r", error)
    return error_response(error.message, 500)


def render_http_exception(error: HTTPException) -> Response:
    """Werkzeug's HTTP errors as ``{"error": ...}``, keeping ``Allow`` and friends."""
    response = error_response(error.description or error.name, error.code or 500)
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(OverlordError, render_overlord_error)
    app.register_error_handler(HTTPException, render_http_exception)
