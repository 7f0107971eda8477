"""Druid's id rules (IdUtils.validateId)."""

from __future__ import annotations

import unicodedata

from overlord.errors import InvalidTaskId

MAX_ID_LENGTH = 255  # the column; Druid's VARCHAR(255) id column has the same bound


def validate_id(field: str, value: str) -> None:
    """Refuse ids as Druid's IdUtils.validateId does, plus the stored length bound.

    Raises:
        InvalidTaskId: with Druid's message.
    """
    if not value:
        raise InvalidTaskId(f"Invalid value for field [{field}]: must not be null")
    if value.startswith("."):
        raise InvalidTaskId(
            f"Invalid value for field [{field}]: Value [{value}] cannot start with '.'."
        )
    if "/" in value:
        raise InvalidTaskId(
            f"Invalid value for field [{field}]: Value [{value}] cannot contain '/'."
        )
    for char in value:
        if char != " " and char.isspace():
            raise InvalidTaskId(
                f"Invalid value for field [{field}]: Value [{value}] contains illegal "
                f"whitespace characters.  Only space is allowed."
            )
        if unicodedata.category(char) in ("Cc", "Cs", "Co", "Cn"):
            raise InvalidTaskId(
                f"Invalid value for field [{field}]: Value [{value}] contains illegal "
                f"UTF8 character [#{ord(char)}] at position [{value.index(char)}]"
            )
    if len(value) > MAX_ID_LENGTH:
        raise InvalidTaskId(
            f"Invalid value for field [{field}]: Value [{value}] is longer than "
            f"{MAX_ID_LENGTH} characters."
        )
