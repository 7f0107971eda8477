"""The Flask application factory. Nothing is read at import time."""

from __future__ import annotations

import os

from flask import Flask

from overlord import api
from overlord.api import metrics, routes, security
from overlord.api.state import EXTENSION
from overlord.config import Settings, load_settings
from overlord.db import Database
from overlord.jsondepth import allow_max_nesting_depth


def _http_pool_size(settings: Settings) -> int:
    """Connections an HTTP process keeps: one per thread that may ask at once.

    A smaller pool closes the connections it lends beyond its size when they come
    back, so under load every request past the pool size opened a connection:
    ``GET /task/{id}/status`` on PostgreSQL at c=16 on serve's defaults (8
    threads, pool 5) spent 1.4-1.5 ms of server CPU per request, 1.08 ms with a
    pool of 10, and served 320-520 → 750-890 rps (loaded machine)."""
    return max(
        settings.db_pool_size, settings.http_threads + settings.opensearch_max_waits
    )


def create_app(
    settings: Settings | None = None, database: Database | None = None
) -> Flask:
    """Build the WSGI app. Tests pass ``settings``; servers read the environment."""
    if settings is None:
        settings = load_settings(os.environ)
    allow_max_nesting_depth()  # GET /task masks and dumps stored deep payloads too
    app = Flask("overlord", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_size
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.strict_slashes = False
    app.extensions[EXTENSION] = {
        "settings": settings,
        "database": database or Database(settings, pool_size=_http_pool_size(settings)),
    }
    api.register(app)
    # Metrics first: their before_request also times the requests auth refuses.
    metrics.install(app)
    # Adds no hook at all when auth_enabled is off.
    security.install(app, settings)
    # Every route came through api/routes.py with its check and its operation.
    routes.verify(app)
    routes.remember_matches(app.url_map)
    return app
