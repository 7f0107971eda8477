"""Masking of password fields when a stored payload is answered (stored unmasked)."""

from __future__ import annotations

import json
from typing import Any

# Druid serialises a DefaultPasswordProvider through a redacting mapper when it
# answers GET /task/{id}; every key naming a password is masked the same way here.
MASK = "<redacted>"


def _is_password_key(key: str) -> bool:
    return "password" in key.lower()


def _mask(document: Any) -> Any:
    if isinstance(document, dict):
        return {
            key: (MASK if _is_password_key(key) and value is not None else _mask(value))
            for key, value in document.items()
        }
    if isinstance(document, list):
        return [_mask(item) for item in document]
    return document


def mask_passwords(payload: str) -> str:
    """The payload text with every password value masked; unchanged text when the
    payload names no password (the common case keeps its exact bytes)."""
    if "assword" not in payload:
        return payload
    return json.dumps(
        _mask(json.loads(payload)), separators=(",", ":"), ensure_ascii=False
    )
