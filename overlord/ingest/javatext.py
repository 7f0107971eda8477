"""Values as Druid's Java code prints them in rows and messages: ``Double.toString``
(``1.0``, ``1.5E-5``), ``Boolean`` (``true``), lists (``[a, b]``), maps
(``{a=1, b=x}``)."""

from __future__ import annotations

import decimal
import math
from typing import Any


def java_double(value: float) -> str:
    """Java's Double.toString: plain between 10^-3 and 10^7, else ``d.dddE<n>``;
    always a fractional digit; the shortest digits that read back the same."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    size = abs(value)
    if 1e-3 <= size < 1e7:
        text = repr(value)
        return text if "." in text else text + ".0"
    sign, digits, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    power = len(digits) + exponent - 1
    fraction = "".join(str(d) for d in digits[1:]) or "0"
    return f"{'-' if sign else ''}{digits[0]}.{fraction}E{power}"


def java_string(value: Any) -> str:
    """A value as Java's ``toString`` prints it inside a row map."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, list):
        return "[" + ", ".join(java_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return java_map(value)
    return str(value)


def java_map(row: dict[str, Any]) -> str:
    """``{a=1, b=x}``: how Druid prints a row map in its messages. Null cells are
    left out: Arrow gives every row of a block every field of the block."""
    return (
        "{"
        + ", ".join(f"{k}={java_string(v)}" for k, v in row.items() if v is not None)
        + "}"
    )
