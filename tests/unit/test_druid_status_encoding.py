"""The written-out TaskStatusPlus encoder gives json.dumps's exact text, and
Druid's time format keeps isoformat's, over varied values."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from overlord.api.responses import dumps
from overlord.schemas.druid import dump_task_status_plus, encode_task_status_plus
from overlord.services.views import TaskLocation, TaskStatusPlus
from overlord.states import RunnerState, TaskState
from overlord.timeutil import (
    DRUID_MAX_TEXT,
    DRUID_MIN_TEXT,
    EPOCH,
    MAX_DATETIME,
    MIN_DATETIME,
    format_druid,
)

UTC = dt.UTC
TEXTS = [
    None,
    "",
    "plain",
    'quote " and backslash \\ and slash /',
    "control \n\r\t\b\f \x00 \x01 \x1f \x7f",
    "unicode é 漢字 🚀 \u2028 \u2029",
    "lone surrogate \ud800 and \udfff",
    "x" * 5000,
]


def _status(
    index: int,
    text: str | None,
    state: TaskState,
    runner: RunnerState,
    location: TaskLocation,
) -> TaskStatusPlus:
    created = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC) + dt.timedelta(
        seconds=index * 7919, microseconds=index * 13
    )
    return TaskStatusPlus(
        id=text or f"task_{index}",
        group_id=text,
        type=text,
        created_time=created,
        queue_insertion_time=EPOCH if index % 2 else created,
        status_code=state,
        runner_status_code=runner,
        duration=[-1, 0, 1234, 2**63 - 1][index % 4],
        location=location,
        datasource=text,
        error_msg=text,
    )


LOCATIONS = [
    TaskLocation(None, -1, -1),
    TaskLocation("worker-1.example", 8100, 8101),
    TaskLocation('h"ost\u00e9', 0, -1),
]
STATUSES = [
    _status(index, text, state, runner, location)
    for index, (text, state, runner, location) in enumerate(
        (text, state, runner, location)
        for text in TEXTS
        for state in TaskState
        for runner in RunnerState
        for location in LOCATIONS
    )
]


@pytest.mark.parametrize("status", STATUSES)
def test_encode_task_status_plus_equals_dump_and_json_dumps(
    status: TaskStatusPlus,
) -> None:
    assert encode_task_status_plus(status) == dumps(dump_task_status_plus(status))


def test_encode_task_status_plus_of_other_time_zones_and_bounds_equals_dump() -> None:
    base = STATUSES[0]
    for created in (
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=5))),
        MIN_DATETIME,
        dt.datetime(1, 1, 1, tzinfo=UTC),
        MAX_DATETIME,
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ):
        status = base._replace(created_time=created)
        assert encode_task_status_plus(status) == dumps(dump_task_status_plus(status))


def _reference_format(value: dt.datetime) -> str:
    """The isoformat-based rendering format_druid used before (issue 10)."""
    if value <= MIN_DATETIME:
        return DRUID_MIN_TEXT
    if value >= MAX_DATETIME:
        return DRUID_MAX_TEXT
    return value.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def test_format_druid_equals_isoformat_rendering_over_random_times() -> None:
    generator = random.Random(10)
    zones = [UTC, dt.timezone(dt.timedelta(hours=-7)), dt.timezone(dt.timedelta(0))]
    for _ in range(20_000):
        seconds = generator.uniform(-31_000_000_000, 253_402_300_799)
        value = dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(
            seconds=int(seconds), microseconds=generator.randrange(1_000_000)
        )
        value = value.astimezone(generator.choice(zones))
        assert format_druid(value) == _reference_format(value), value


def test_format_druid_refuses_naive_times() -> None:
    with pytest.raises(TypeError):
        format_druid(dt.datetime(2024, 1, 1))  # noqa: DTZ001 - the point of the test


def test_encoded_rows_are_one_json_document() -> None:
    text = "[" + ",".join(map(encode_task_status_plus, STATUSES)) + "]"
    assert json.loads(text) == [dump_task_status_plus(s) for s in STATUSES]
