"""What a Druid task type is to overlord: id format, datasource, group, priority.

Task types import neither the store, the database layer, SQLAlchemy nor flask; they
reach stored state only through the task actions of the context the runtime gives
them (a later issue).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any, ClassVar

from overlord.errors import InvalidTaskSpec
from overlord.timeutil import format_druid

JsonObject = dict[str, Any]

# Druid's Tasks.java default priorities.
PRIORITY_REALTIME = 75
PRIORITY_BATCH_INDEX = 50
PRIORITY_MERGE = 25
PRIORITY_DEFAULT = 0


def random_letters(count: int = 8) -> str:
    """Druid's IdUtils random suffix: letters ``a`` to ``p``."""
    return "".join(random.choice("abcdefghijklmnop") for _ in range(count))


class TaskType:
    """One Druid task ``type``. Subclasses override what differs from Druid's defaults."""

    name: ClassVar[str]
    default_priority: ClassVar[int] = PRIORITY_DEFAULT

    def validate(self, payload: JsonObject) -> None:
        """Refuse what Druid's Jackson constructor refuses.

        Raises:
            InvalidTaskSpec: with Druid's message.
        """

    def datasource(self, payload: JsonObject) -> str:
        value = payload.get("dataSource")
        if not isinstance(value, str) or not value:
            raise InvalidTaskSpec("dataSource must not be null or empty")
        return value

    def make_id(self, payload: JsonObject, now: dt.datetime) -> str:
        """Druid's AbstractTask.getOrMakeId: ``<type>_<ds>_<rand>_<now>``."""
        return "_".join(
            [self.name, self.datasource(payload), random_letters(), format_druid(now)]
        )

    def group_id(self, payload: JsonObject, task_id: str) -> str:
        value = payload.get("groupId")
        return value if isinstance(value, str) and value else task_id

    def priority(self, payload: JsonObject) -> int:
        """``context.priority`` when given, else the type's default."""
        context = payload.get("context")
        if isinstance(context, dict) and "priority" in context:
            value = context["priority"]
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise InvalidTaskSpec(
                    f"Invalid value for context parameter [priority]: [{value}]"
                )
            try:
                return int(value)
            except ValueError as error:
                raise InvalidTaskSpec(
                    f"Invalid value for context parameter [priority]: [{value}]"
                ) from error
        return self.default_priority
