"""Druid's process-wide endpoints: ``/status``, ``/status/health``, ``/status/properties``."""

from __future__ import annotations

from flask import Blueprint, Response

from overlord import __version__
from overlord.api.responses import json_response
from overlord.api.state import settings
from overlord.config import mask_url_password, setting_fields, setting_text

bp = Blueprint("health", __name__)


@bp.get("/status")
def get_status() -> Response:
    return json_response({"version": __version__, "modules": [], "memory": {}})


@bp.get("/status/health")
def get_health() -> Response:
    # Load balancers and `make bench` call this; it touches no database.
    return json_response(True)


@bp.get("/status/properties")
def get_properties() -> Response:
    current = settings()
    properties: dict[str, str] = {}
    for field in setting_fields():
        text = setting_text(getattr(current, field.name))
        if field.name == "database_url":
            text = mask_url_password(text)
        properties[f"overlord.{field.name}"] = text
    return json_response(properties)
