"""Request parsing shared by the Druid endpoints: JSON bodies and numeric params."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flask import Request
from werkzeug.exceptions import UnsupportedMediaType

from overlord.errors import InvalidInput
from overlord.jsondepth import MAX_NESTING_DEPTH, allow_max_nesting_depth

NO_BODY = object()

# One token of interest per match: a string (escapes skipped, closing quote optional
# so that a truncated document ends the scan), an opening or a closing bracket.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[{]|[\]}]', re.S)
# One escape sequence inside a string token: ``\\`` is consumed whole, so that the
# ``u`` of ``\\ud800`` is never taken for an escape.
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)", re.S)
# Cheap pre-checks: only a document that may break a rule is scanned.
_MAY_HOLD_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_HIGH = range(0xD800, 0xDC00)
_LOW = range(0xDC00, 0xE000)


def _location(text: str, at: int) -> str:
    line = text.count("\n", 0, at) + 1
    column = at - text.rfind("\n", 0, at)
    return f"(line {line}, column {column})"


def _unmatched(text: str, at: int, code: int) -> InvalidInput:
    # Jackson reads a lone surrogate escape into a Java string and fails only when
    # writing it out (UTF8Writer.illegalSurrogateDesc's texts); Python cannot encode
    # it to UTF-8 at all (a 500 when the row was written), so it is refused here.
    part = "first" if code in _HIGH else "second"
    return InvalidInput(
        f"Unmatched {part} part of surrogate pair (0x{code:x}) in JSON string "
        f"{_location(text, at)}"
    )


def _check_string(text: str, token: re.Match[str]) -> None:
    pending: tuple[int, int] | None = None  # (code, end) of an unpaired high escape
    for escape in _ESCAPE.finditer(text, token.start(), token.end()):
        hexa = escape.group(1)
        code = -1 if hexa is None else int(hexa, 16)
        if pending is not None:
            if code in _LOW and escape.start() == pending[1]:
                pending = None
                continue
            raise _unmatched(text, pending[1] - 6, pending[0])
        if code in _HIGH:
            pending = (code, escape.end())
        elif code in _LOW:
            raise _unmatched(text, escape.start(), code)
    if pending is not None:
        raise _unmatched(text, pending[1] - 6, pending[0])


def scan_json_text(text: str) -> None:
    """Refuse, before ``json.loads``, what Druid's Jackson refuses and Python's
    decoder cannot take: nesting deeper than ``MAX_NESTING_DEPTH`` (a linear scan,
    so 100k levels cost no recursion) and ``\\uXXXX`` escapes that leave a lone
    surrogate, in values and keys alike. The first offence in the text wins, as in
    a streaming parser. Bodies that may break neither rule skip the scan.

    Raises:
        InvalidInput: Jackson's nesting text, or an unmatched surrogate with its place.
    """
    deep = text.count("[") + text.count("{") > MAX_NESTING_DEPTH
    if not deep and _MAY_HOLD_SURROGATE.search(text) is None:
        return
    depth = 0
    for token in _TOKEN.finditer(text):
        first = token.group()[0]
        if first == '"':
            if "\\u" in token.group():
                _check_string(text, token)
        elif first in "[{":
            depth += 1
            if depth > MAX_NESTING_DEPTH:
                raise InvalidInput(
                    f"Document nesting depth ({depth}) exceeds the maximum allowed "
                    f"({MAX_NESTING_DEPTH}, from "
                    "`StreamReadConstraints.getMaxNestingDepth()`)"
                )
        else:
            depth = max(depth - 1, 0)


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
    expected = request.content_length
    if expected is not None and len(raw) < expected:
        # The client closed its side early: granian marks the input terminated, so
        # Werkzeug does not check the length, and a truncated body that still parses
        # ('{"type":"noop"}' of a promised 100 bytes) would be stored.
        raise InvalidInput(
            f"Unexpected end-of-input: the body ended after {len(raw)} of the "
            f"{expected} bytes its Content-Length announced"
        )
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
        scan_json_text(text)
        allow_max_nesting_depth()
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
