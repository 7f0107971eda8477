"""``POST /lockedIntervals`` (v1, deprecated): the body Druid reads as
``Map<String, Integer> minTaskPriority`` (``OverlordResource.getDatasourceLockedIntervals``).
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

from overlord.jackson import JAVA_INT_MAX, JAVA_INT_MIN, value_kind

MAP_TYPE = "java.util.LinkedHashMap<java.lang.String,java.lang.Integer>"


def _java_integer(datasource: str, value: Any) -> int:
    """One map value as Jackson binds it to ``java.lang.Integer``: an integral number
    in int range, or a string holding one (Jackson's default scalar coercion).

    ``null`` binds to a null Integer that Druid's ``TaskLockbox`` then unboxes into a
    NullPointerException (a 500); we refuse it with a 400 instead.
    """
    text = None
    if isinstance(value, str):
        text = value
        try:
            value = int(value.strip())
        except ValueError:
            raise ValidationError(
                f"Cannot deserialize value of type `java.lang.Integer` from String "
                f'"{text}": not a valid `java.lang.Integer` value (through reference '
                f'chain: {MAP_TYPE}["{datasource}"])'
            ) from None
    if value is None:
        raise ValidationError(
            f"Invalid minimum task priority for datasource[{datasource}]: null"
        )
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            f"Cannot deserialize value of type `java.lang.Integer` from "
            f'{value_kind(value)} (through reference chain: {MAP_TYPE}["{datasource}"])'
        )
    if not JAVA_INT_MIN <= value <= JAVA_INT_MAX:
        shown = text if text is not None else str(value)
        raise ValidationError(
            f"Numeric value ({shown}) out of range of int ({JAVA_INT_MIN} - "
            f'{JAVA_INT_MAX}) (through reference chain: {MAP_TYPE}["{datasource}"])'
        )
    return value


def load_min_task_priority(document: Any) -> dict[str, int]:
    """The datasource → minimum priority map, in the posted order.

    An empty map is returned as is; the caller answers it like a missing body.

    Raises:
        ValidationError: not a JSON object, or a value that is not a Java int.
    """
    if not isinstance(document, dict):
        raise ValidationError(
            f"Cannot deserialize value of type `{MAP_TYPE}` from {value_kind(document)}"
        )
    return {
        datasource: _java_integer(datasource, value)
        for datasource, value in document.items()
    }
