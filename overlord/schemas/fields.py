"""Custom marshmallow fields shared by the surfaces."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import fields

from overlord.timeutil import format_druid


class DruidDateTime(fields.Field[dt.datetime]):
    """Joda's ISO-8601 UTC with milliseconds: ``2024-01-01T00:00:00.000Z``."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else format_druid(value)
