"""The request headers stored with a task (``tasks.request_headers``)."""

from __future__ import annotations

import json


def opaque_id_of(request_headers: str | None) -> str | None:
    """The ``X-Opaque-Id`` a task's submit sent, from its stored
    ``request_headers`` (a JSON object; the only header kept)."""
    if not request_headers:
        return None
    try:
        document = json.loads(request_headers)
    except ValueError:
        return None
    value = document.get("X-Opaque-Id") if isinstance(document, dict) else None
    return value if isinstance(value, str) else None
