"""The list fast paths give what the plain code gives, over varied values: the
written-out TaskStatusPlus encoder json.dumps's exact text, Druid's time format
isoformat's, the one-loop list statuses status_plus_for_list's, the list query
reader the schema's load, the list rows' time reader the column type's."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
from sqlalchemy.dialects.mysql import pymysql as pymysql_dialect
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.dialects.sqlite import pysqlite as sqlite_dialect
from sqlalchemy.engine import Dialect
from werkzeug.datastructures import MultiDict

from overlord.api.responses import dumps
from overlord.schemas.druid import (
    dump_task_status_plus,
    encode_task_status_plus,
    load_task_list_args,
    task_list_args_schema,
)
from overlord.services.views import (
    TaskLocation,
    TaskStatusPlus,
    status_plus_for_list,
    statuses_for_list,
)
from overlord.states import RunnerState, TaskState
from overlord.store.tasks import TaskListRow
from overlord.store.types import UTCDateTime
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


ROWS = [
    TaskListRow(
        task_id=f"t{index}",
        group_id=None if index % 5 == 0 else "g",
        type=None if index % 7 == 0 else "noop",
        created_at=dt.datetime(2026, 1, 2, tzinfo=UTC) + dt.timedelta(minutes=index),
        queue_inserted_at=queued,
        status=state,
        runner_status=runner,
        duration_ms=index - 1,
        location_host=host,
        location_port=port,
        location_tls_port=-1 if port == -1 else port + 1,
        datasource=None if index % 3 == 0 else "wiki",
        error_msg=error,
        active=active,
    )
    for index, (active, state, runner, queued, (host, port), error) in enumerate(
        (active, state, runner, queued, location, error)
        for active in (True, False)
        for state in TaskState
        for runner in RunnerState
        for queued in (None, dt.datetime(2026, 1, 3, 4, 5, 6, 7000, tzinfo=UTC))
        for location in ((None, -1), (None, 8100), ("worker-1", 8100))
        for error in (None, "", "short", "e" * 1024, "e" * 1025 + "é" * 3000)
    )
]


def test_statuses_for_list_equals_status_plus_for_list_row_by_row() -> None:
    assert statuses_for_list(ROWS) == [status_plus_for_list(row) for row in ROWS]
    assert all(type(s) is TaskStatusPlus for s in statuses_for_list(ROWS))


@pytest.mark.parametrize(
    "query",
    [
        [],
        [("state", "complete"), ("max", "100")],
        [("state", "RUNNING"), ("state", "complete"), ("datasource", "")],
        [("type", "noop"), ("createdTimeInterval", "2024-01-01_P1D"), ("max", "-1")],
        [
            ("capabilities", ""),
            ("created_time_interval", "x"),
            ("datasource", "é\ud800"),
        ],
    ],
)
def test_load_task_list_args_equals_the_schema_load(
    query: list[tuple[str, str]],
) -> None:
    args = MultiDict(query)
    assert load_task_list_args(args) == task_list_args_schema.load(args)


@pytest.mark.parametrize(
    "dialect",
    [sqlite_dialect.dialect(), psycopg_dialect.dialect(), pymysql_dialect.dialect()],
    ids=["sqlite", "postgresql", "mariadb"],
)
def test_plain_result_processor_equals_the_type_decorators(dialect: Dialect) -> None:
    column_type = UTCDateTime()
    plain = column_type.plain_result_processor(dialect)
    decorated = column_type.dialect_impl(dialect).result_processor(dialect, None)
    assert decorated is not None
    generator = random.Random(dialect.name)
    values: list[dt.datetime] = [
        dt.datetime(1000, 1, 1),  # noqa: DTZ001 - stored values are naive UTC
        dt.datetime(1969, 12, 31, 23, 59, 59, 999999),  # noqa: DTZ001
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999),  # noqa: DTZ001
    ]
    values += [
        dt.datetime(1, 1, 1)  # noqa: DTZ001
        + dt.timedelta(microseconds=generator.randrange(315_537_897_600_000_000))
        for _ in range(2000)
    ]
    bind = column_type.dialect_impl(dialect).bind_processor(dialect)
    assert bind is not None
    for value in values:
        # What the column's write path stores (SQLite: SQLAlchemy's text).
        stored = bind(value.replace(tzinfo=UTC))
        got = plain(stored)
        assert got == decorated(stored), value
        assert got is not None
        assert got.tzinfo is UTC
    assert plain(None) is None
