"""Java number bounds and the words Druid's Jackson uses for JSON values, shared by
every loader that answers with Jackson's texts (task specs, task actions, worker
config, lock queries) and by code that keeps Java's int/long ranges.

Leaf module: imports nothing from overlord.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

JAVA_INT_MIN = -(2**31)
JAVA_INT_MAX = 2**31 - 1
JAVA_LONG_MIN = -(2**63)
JAVA_LONG_MAX = 2**63 - 1

# (Java type name, lowest, highest): what ``Numeric value (…) out of range of <name>``
# names.
INT = ("int", JAVA_INT_MIN, JAVA_INT_MAX)
LONG = ("long", JAVA_LONG_MIN, JAVA_LONG_MAX)


def value_kind(value: Any) -> str:
    """Jackson's short word for a JSON value, as in ``Cannot deserialize value of
    type `…` from Object value`` (Jackson 2.12+'s ``CoercionAction`` texts)."""
    if isinstance(value, list):
        return "Array value"
    if isinstance(value, str):
        return "String value"
    if isinstance(value, bool):
        return "Boolean value"
    if isinstance(value, int | float | Decimal):
        return "Number value"
    if value is None:
        return "null"
    return "Object value"


def token_text(value: Any) -> str:
    """Jackson's description of the JSON token it could not bind, as in ``Cannot
    deserialize value of type `java.lang.String` from Object value (token
    `JsonToken.START_OBJECT`)``; a string is shown by its text."""
    if isinstance(value, dict):
        return "Object value (token `JsonToken.START_OBJECT`)"
    if isinstance(value, list):
        return "Array value (token `JsonToken.START_ARRAY`)"
    if isinstance(value, bool):
        return f"Boolean value (token `JsonToken.VALUE_{str(value).upper()}`)"
    if isinstance(value, str):
        return f'String "{value}"'
    if isinstance(value, float | Decimal):
        return "Floating-point value (token `JsonToken.VALUE_NUMBER_FLOAT`)"
    return "Integer value (token `JsonToken.VALUE_NUMBER_INT`)"
