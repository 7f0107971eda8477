"""``GET /metrics`` (Prometheus text format) and the per-request hooks that feed
the HTTP metrics and the access log."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Flask, Response, g, request

from overlord import metrics
from overlord.api import routes
from overlord.api.checks import STATE_RESOURCE
from overlord.api.docs import Operation, text_answer
from overlord.api.state import database, settings
from overlord.services.metrics import store_state

bp = Blueprint("metrics", __name__)
access_log = logging.getLogger("overlord.access")


@routes.get(
    bp,
    "/metrics",
    # Prometheus scrapes, like Druid's /status, need STATE READ (list /metrics in
    # auth_unsecured_paths for a scraper without credentials).
    check=STATE_RESOURCE,
    doc=Operation(
        "Prometheus metrics.",
        "Process",
        {"200": text_answer("Text exposition format 0.0.4.")},
    ),
)
def get_metrics() -> Response:
    return Response(
        metrics.render(lambda: database().run(store_state)),
        content_type=metrics.CONTENT_TYPE,
    )


def _started() -> None:
    g.overlord_started = time.perf_counter()


def _finished(response: Response) -> Response:
    started = g.get("overlord_started")
    if started is None:
        return response
    seconds = time.perf_counter() - started
    route = routes.label(request.url_rule)
    metrics.observe_request(route, request.method, response.status_code, seconds)
    # Checked first: the line's fields cost more than the rest of this hook.
    if settings().access_log and access_log.isEnabledFor(logging.INFO):
        task_id = (request.view_args or {}).get("task_id")
        opaque_id = request.headers.get("X-Opaque-Id")
        access_log.info(
            "%s %s %s %.1fms%s%s",
            request.method,
            route,
            response.status_code,
            seconds * 1000,
            f" task={task_id}" if task_id else "",
            f" opaque_id={opaque_id}" if opaque_id else "",
            extra={
                "method": request.method,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 3),
                "task_id": task_id,
                "opaque_id": opaque_id,
            },
        )
    return response


def install(app: Flask) -> None:
    app.register_blueprint(bp)
    app.before_request(_started)
    app.after_request(_finished)
