"""OpenSearch wire rules without a database: TimeValue texts, the written-out
Druid status dump, list-task ids."""

from __future__ import annotations

import datetime as dt

import pytest

from overlord.schemas.druid import TaskStatusPlusSchema
from overlord.schemas.opensearch import dump_druid_status, time_value_text
from overlord.services import opensearch as rules
from overlord.services.views import TaskLocation, TaskStatusPlus
from overlord.states import RunnerState, TaskState


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (0, "0s"),
        (999, "999nanos"),
        (245_400, "245.4micros"),
        (245_490, "245.4micros"),  # truncated, not rounded
        (1_000_000, "1ms"),
        (1_900_000_000, "1.9s"),
        (90_000_000_000, "1.5m"),
        (7_200_000_000_000, "2h"),
        (86_400_000_000_000 * 3, "3d"),
        (-1, "-1"),
    ],
)
def test_time_value_text_matches_timevalue_tostring(nanos: int, text: str) -> None:
    assert time_value_text(nanos) == text


@pytest.mark.parametrize(
    ("location", "error"),
    [
        (TaskLocation(None, -1, -1), None),
        (TaskLocation("worker-1", 8100, 8101), "boom"),
    ],
)
def test_druid_status_dump_equals_the_druid_schema(
    location: TaskLocation, error: str | None
) -> None:
    status = TaskStatusPlus(
        id="t",
        group_id="g",
        type="noop",
        created_time=dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC),
        queue_insertion_time=dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        status_code=TaskState.FAILED,
        runner_status_code=RunnerState.NONE,
        duration=12,
        location=location,
        datasource="wiki",
        error_msg=error,
    )
    assert dump_druid_status(status) == TaskStatusPlusSchema().dump(status)
    assert list(dump_druid_status(status)) == list(TaskStatusPlusSchema().dump(status))


def test_list_task_ids_increase_and_stay_within_a_java_long() -> None:
    ids = [rules.next_list_task_id() for _ in range(1000)]
    assert ids == sorted(set(ids))
    assert all(rules.LIST_ID_BASE <= i <= 2**63 - 1 for i in ids)


@pytest.mark.parametrize(
    ("raw", "parts"),
    [("", []), ("a,b", ["a", "b"]), ("a,,", ["a"]), (",a", ["", "a"]), (",", [])],
)
def test_comma_lists_split_as_java(raw: str, parts: list[str]) -> None:
    assert rules.split_commas(raw) == parts
