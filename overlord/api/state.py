"""Access to the per-app objects a view needs: settings, database, audit identity."""

from __future__ import annotations

from flask import current_app, g, request

from overlord.config import Settings
from overlord.db import Database
from overlord.services.audit import AuditInfo

EXTENSION = "overlord"


def settings() -> Settings:
    value: Settings = current_app.extensions[EXTENSION]["settings"]
    return value


def database() -> Database:
    value: Database = current_app.extensions[EXTENSION]["database"]
    return value


def audit_info() -> AuditInfo:
    """Who is asking, as Druid's audit records it (headers X-Druid-Author/-Comment)."""
    return AuditInfo(
        author=request.headers.get("X-Druid-Author"),
        comment=request.headers.get("X-Druid-Comment"),
        # Set by the security hook (None with auth off).
        identity=g.get("identity"),
        ip=request.remote_addr,
    )
