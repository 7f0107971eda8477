"""Masking of password fields when a stored payload is answered (stored unmasked).

Druid re-serialises a task through a password-redacting mapper: a
DefaultPasswordProvider (a plain string or ``{"type": "default", "password": …}``)
loses its password and reads back as ``{"type": "default", "password": null}``;
providers that hold no secret (``environment``, ``mapString``…) are kept.
"""

from __future__ import annotations

from typing import Any

REDACTED_DEFAULT_PROVIDER: dict[str, Any] = {"type": "default", "password": None}


def _is_password_key(key: str) -> bool:
    return "password" in key.lower()


def _redact_provider(value: Any) -> Any:
    if isinstance(value, str):
        return dict(REDACTED_DEFAULT_PROVIDER)
    if isinstance(value, dict) and value.get("type", "default") == "default":
        return dict(REDACTED_DEFAULT_PROVIDER)
    return _mask(value)


def _mask(document: Any) -> Any:
    if isinstance(document, dict):
        return {
            key: _redact_provider(value) if _is_password_key(key) else _mask(value)
            for key, value in document.items()
        }
    if isinstance(document, list):
        return [_mask(item) for item in document]
    return document


def mask_document(document: Any) -> Any:
    """A parsed payload with every password masked (a new object; numbers and
    other values are passed through as they are, ``RawNumber`` included)."""
    return _mask(document)
