"""Druid's process-wide endpoints: ``/status``, ``/status/health``, ``/status/properties``."""

from __future__ import annotations

import os

from flask import Blueprint, Response

from overlord import __version__
from overlord.api import routes
from overlord.api.checks import STATE_RESOURCE, Unsecured
from overlord.api.docs import STRING, Operation, json_answer
from overlord.api.responses import json_response
from overlord.api.state import settings
from overlord.config import (
    MASKED_VALUE,
    SECRET_SETTINGS,
    mask_url_password,
    setting_fields,
    setting_text,
)

bp = Blueprint("health", __name__)


# StatusResource: /status/health is unsecured, the rest needs STATE READ.
@routes.get(
    bp,
    "/status",
    check=STATE_RESOURCE,
    doc=Operation(
        "Version and memory (Druid's /status).",
        "Process",
        {
            "200": json_answer(
                {"type": "object", "properties": {"version": STRING}}, "Status."
            )
        },
    ),
)
def get_status() -> Response:
    # Druid's StatusResource shape; clients read only "version".
    return json_response({"version": __version__, "modules": [], "memory": _memory()})


def _memory() -> dict[str, int]:
    """The JVM's memory fields, filled with this process's figures (bytes)."""
    used = _resident_bytes()
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "maxMemory": total,
        "totalMemory": used,
        "freeMemory": 0,
        "usedMemory": used,
        "directMemory": -1,
    }


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return -1


@routes.get(
    bp,
    "/status/health",
    check=Unsecured(),
    doc=Operation(
        "Liveness: `true`.",
        "Process",
        {"200": json_answer({"const": True}, "Healthy.")},
    ),
)
def get_health() -> Response:
    # Load balancers and `make bench` call this; it touches no database.
    return json_response(True)


@routes.get(
    bp,
    "/status/properties",
    check=STATE_RESOURCE,
    doc=Operation(
        "Effective settings (passwords masked).",
        "Process",
        {
            "200": json_answer(
                {"type": "object", "additionalProperties": STRING}, "Settings."
            )
        },
    ),
)
def get_properties() -> Response:
    current = settings()
    properties: dict[str, str] = {}
    for field in setting_fields():
        text = setting_text(getattr(current, field.name))
        if field.name == "database_url":
            text = mask_url_password(text)
        elif field.name in SECRET_SETTINGS and text:
            text = MASKED_VALUE
        properties[f"overlord.{field.name}"] = text
    return json_response(properties)
