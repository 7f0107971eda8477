"""HTTP surfaces. Views parse, open one transaction around a service call, and dump.

Never imports the store directly, nor builds SQL.
"""

from __future__ import annotations

from flask import Flask

from overlord.api import console, coordinator, druid, health, openapi, opensearch
from overlord.api.errors import register_error_handlers


def register(app: Flask) -> None:
    app.register_blueprint(health.bp)
    app.register_blueprint(druid.bp)
    app.register_blueprint(opensearch.bp)
    app.register_blueprint(coordinator.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(openapi.bp)
    register_error_handlers(app)
