"""Log lines about a task: ``task_id`` and ``opaque_id`` fields and the
``opaque_id=…`` suffix of the message, in text and JSON format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from overlord.logs import JsonFormatter, TaskFilter, TaskLog


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("tests.task_log")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, stream, handler
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize(
    ("opaque_id", "line"),
    [
        pytest.param(
            "job 7 %d",
            "INFO tests.task_log task t1 ended: 50% opaque_id=job 7 %d",
            id="id",
        ),
        pytest.param(None, "INFO tests.task_log task t1 ended: 50%", id="none"),
        pytest.param("", "INFO tests.task_log task t1 ended: 50%", id="empty"),
    ],
)
def test_task_log_text_line_ends_with_the_opaque_id(
    logger: tuple[logging.Logger, io.StringIO, logging.Handler],
    opaque_id: str | None,
    line: str,
) -> None:
    log, stream, _ = logger

    TaskLog(log, "t1", opaque_id).info("task %s ended: %d%%", "t1", 50)

    assert stream.getvalue() == line + "\n"


def test_task_log_keeps_a_call_s_own_extra_fields(
    logger: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    log, stream, handler = logger
    handler.setFormatter(JsonFormatter("%(levelname)s %(message)s"))

    TaskLog(log, "t1", "job-7").warning("no args", extra={"slot": 2})

    assert json.loads(stream.getvalue()) == {
        "levelname": "WARNING",
        "message": "no args opaque_id=job-7",
        "task_id": "t1",
        "opaque_id": "job-7",
        "slot": 2,
    }


def test_task_filter_binds_every_record_to_the_task(
    logger: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    log, stream, handler = logger
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(TaskFilter("t1", "job-7"))

    log.getChild("child").warning("live report of %s not written", "t1")
    TaskLog(log, "t2", None).info("already about a task")
    log.info("100%")

    assert [json.loads(line) for line in stream.getvalue().splitlines()] == [
        {
            "levelname": "WARNING",
            "name": "tests.task_log.child",
            "message": "live report of t1 not written opaque_id=job-7",
            "task_id": "t1",
            "opaque_id": "job-7",
        },
        {
            "levelname": "INFO",
            "name": "tests.task_log",
            "message": "already about a task",
            "task_id": "t2",
            "opaque_id": None,
        },
        {
            "levelname": "INFO",
            "name": "tests.task_log",
            "message": "100% opaque_id=job-7",
            "task_id": "t1",
            "opaque_id": "job-7",
        },
    ]
