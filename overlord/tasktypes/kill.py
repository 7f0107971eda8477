"""``kill``: deletes unused segments of a datasource and interval (Druid's
KillUnusedSegmentsTask)."""

from __future__ import annotations

import datetime as dt

from overlord.errors import InvalidTaskSpec
from overlord.tasktypes.base import JsonObject, TaskType, random_letters
from overlord.timeutil import Interval, InvalidTime, format_druid, parse_interval


class KillTaskType(TaskType):
    name = "kill"

    def interval(self, payload: JsonObject) -> Interval:
        value = payload.get("interval")
        if not isinstance(value, str):
            raise InvalidTaskSpec("interval must not be null")
        try:
            return parse_interval(value)
        except InvalidTime as error:
            raise InvalidTaskSpec(str(error)) from error

    def validate(self, payload: JsonObject) -> None:
        self.datasource(payload)
        self.interval(payload)
        for key in ("batchSize", "limit"):
            value = payload.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InvalidTaskSpec(f"{key}[{value}] must be a positive integer.")

    def make_id(self, payload: JsonObject, now: dt.datetime) -> str:
        interval = self.interval(payload)
        return "_".join(
            [
                self.name,
                self.datasource(payload),
                random_letters(),
                format_druid(interval.start),
                format_druid(interval.end),
                format_druid(now),
            ]
        )
