"""The status poll's fast paths give what the plain code gives: the text encoder
of TaskStatusPlus, the id check's regex, the driver-row conversion."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest

from overlord.api.responses import dumps
from overlord.errors import InvalidTaskId
from overlord.schemas.druid import dump_task_status_plus, encode_task_status_plus
from overlord.services.ids import check_id_rules, validate_id
from overlord.services.views import TaskLocation, TaskStatusPlus
from overlord.states import RunnerState, TaskState
from overlord.store.tasks import summary_from_driver
from overlord.timeutil import EPOCH, MAX_DATETIME, MIN_DATETIME

TEXTS = [
    None,
    "",
    "plain",
    'quote " and backslash \\ and slash /',
    "tab\tnewline\ncontrol\x01\x1f del\x7f",
    "ünïcödé ✓ 日本語 😀",
    "\u2028\u2029 separators",
]
TIMES = [
    EPOCH,
    dt.datetime(2026, 12, 2, 20, 17, 11, 524999, tzinfo=dt.UTC),
    MIN_DATETIME,
    MAX_DATETIME,
]
LOCATIONS = [TaskLocation(None, -1, -1), TaskLocation("worker-1.example", 8100, 8101)]


def statuses() -> list[TaskStatusPlus]:
    found = []
    for text, when, state, runner, location in itertools.product(
        TEXTS, TIMES, TaskState, RunnerState, LOCATIONS
    ):
        found.append(
            TaskStatusPlus(
                id=text or "id",
                group_id=text,
                type=text,
                created_time=when,
                queue_insertion_time=EPOCH if text else when,
                status_code=state,
                runner_status_code=runner,
                duration=-1 if text else 2**63 - 1,
                location=location,
                datasource=text,
                error_msg=text,
            )
        )
    return found


def test_text_encoder_writes_what_the_dict_and_json_dumps_write() -> None:
    all_statuses = statuses()
    assert len(all_statuses) == 7 * 4 * 3 * 4 * 2
    for status in all_statuses:
        assert encode_task_status_plus(status) == dumps(dump_task_status_plus(status))


def _outcome(check: object, value: str) -> str | None:
    try:
        check("taskId", value)  # type: ignore[operator]
    except InvalidTaskId as error:
        return error.message
    return None


@pytest.mark.parametrize("seed", range(3))
def test_id_regex_accepts_exactly_what_the_rules_accept(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = [chr(c) for c in range(0, 160)] + [
        "\ud800",
        "\udc00",
        "😀",
        "é",
        "\uffff",
    ]
    values = ["", ".x", "a" * 255, "a" * 256, "x.y", "_ok-1:2"]
    values += ["".join(rng.choices(alphabet, k=rng.randint(1, 8))) for _ in range(5000)]
    for value in values:
        assert _outcome(validate_id, value) == _outcome(check_id_rules, value), value


def test_driver_rows_convert_as_sqlalchemy_does() -> None:
    row = (
        7,
        "t",
        "g",
        "noop",
        "2026-12-02 20:17:11.524000",
        None,
        "RUNNING",
        "PENDING",
        -1,
        None,
        -1,
        -1,
        "wiki",
        None,
        1,
    )
    summary = summary_from_driver(row)
    assert summary.created_at == dt.datetime(
        2026, 12, 2, 20, 17, 11, 524000, tzinfo=dt.UTC
    )
    assert summary.queue_inserted_at is None
    assert summary.status is TaskState.RUNNING
    assert summary.runner_status is RunnerState.PENDING
    assert summary.active is True
    naive = dt.datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC).replace(tzinfo=None)
    other = summary_from_driver(
        (*row[:4], naive, naive, "SUCCESS", "NONE", *row[8:14], False)
    )
    assert other.created_at == naive.replace(tzinfo=dt.UTC)
    assert other.queue_inserted_at == naive.replace(tzinfo=dt.UTC)
    assert (other.status, other.runner_status, other.active) == (
        TaskState.SUCCESS,
        RunnerState.NONE,
        False,
    )
