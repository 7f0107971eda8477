"""Request parsing shared by the Druid endpoints: JSON bodies and numeric params."""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Request
from werkzeug.exceptions import UnsupportedMediaType

from overlord.errors import InvalidInput

NO_BODY = object()


def _is_json_mimetype(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def _reject_constant(name: str) -> Any:
    # Jackson refuses NaN/Infinity unless a feature flag is on.
    raise ValueError(
        f"Non-standard token '{name}': enable `JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow"
    )


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"Numeric value ({text}) out of range of double")
    return value


def read_json_body(request: Request, *, allow_empty: bool = False) -> Any:
    """The request's JSON document, or ``NO_BODY`` when empty and allowed.

    A body with a non-JSON Content-Type is a 415 (Jersey's @Consumes); a body that
    is not JSON is a 400 (Druid answers 500 for broken JSON; we answer 400). Airflow
    posts ``data=<str>`` labelled ``content-type: application/json``; given a dict it
    form-encodes it under the same label, which lands here as a 400.
    Raises:
        UnsupportedMediaType: the Content-Type is not JSON.
        InvalidInput: the body is not valid JSON (message says where).
    """
    raw = request.get_data(cache=False)
    if not raw.strip():
        if allow_empty:
            return NO_BODY
        if not _is_json_mimetype(request.mimetype):
            raise UnsupportedMediaType(_unsupported(request.mimetype))
        raise InvalidInput("No content to map due to end-of-input")
    if not _is_json_mimetype(request.mimetype):
        raise UnsupportedMediaType(_unsupported(request.mimetype))
    try:
        text = raw.decode("utf-8")
        return json.loads(
            text, parse_constant=_reject_constant, parse_float=_finite_float
        )
    except UnicodeDecodeError as error:
        raise InvalidInput(
            f"Invalid UTF-8 in request body at byte {error.start}"
        ) from error
    except json.JSONDecodeError as error:
        raise InvalidInput(
            f"Unexpected character in JSON body: {error.msg} "
            f"(line {error.lineno}, column {error.colno})"
        ) from error
    except ValueError as error:
        raise InvalidInput(str(error)) from error


def _unsupported(mimetype: str) -> str:
    shown = mimetype or "none"
    return (
        f"Unsupported Content-Type [{shown}]: this endpoint consumes application/json"
    )
