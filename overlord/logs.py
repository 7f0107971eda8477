"""Logging set-up of every overlord process: text, or one JSON object per line
(python-json-logger) with the request and task fields a line carries.

A line about a task carries ``task_id`` and the ``X-Opaque-Id`` its submit sent
(``opaque_id``, null without one) as JSON fields, and ends with ``opaque_id=…``
in its message, as the access log's lines do (overlord.api.metrics).
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from pythonjsonlogger.json import JsonFormatter

__all__ = ["JsonFormatter", "TaskFilter", "TaskLog", "bind_task", "configure"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure(level: str, log_format: str = "text") -> None:
    """Configure the root logger once (a second call changes nothing, as
    logging.basicConfig)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={
                    "asctime": "time",
                    "levelname": "level",
                    "name": "logger",
                },
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)


def _suffix(opaque_id: str | None) -> str:
    return f" opaque_id={opaque_id}" if opaque_id else ""


class TaskLog(logging.LoggerAdapter[logging.Logger]):
    """A logger for lines about one task (a worker's claim, end, stop, …)."""

    def __init__(self, logger: logging.Logger, task_id: str, opaque_id: str | None):
        super().__init__(logger, {"task_id": task_id, "opaque_id": opaque_id})
        self.opaque_id = opaque_id

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        # Merged: a call's own extra fields are kept (LoggerAdapter replaces them).
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if self.opaque_id and self.isEnabledFor(level):
            # The id is an argument, never part of the format string: an id with
            # a % in it is written as sent.
            msg, args = (
                "%s%s",
                (str(msg) % args if args else msg, _suffix(self.opaque_id)),
            )
        super().log(level, msg, *args, **kwargs)


class TaskFilter(logging.Filter):
    """Makes every record that passes a record about one task (see bind_task);
    a record that already names a task is left as it is."""

    def __init__(self, task_id: str, opaque_id: str | None) -> None:
        super().__init__()
        self.fields = {"task_id": task_id, "opaque_id": opaque_id}
        self.suffix = _suffix(opaque_id)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "task_id", None) is None:
            record.__dict__.update(self.fields)
            if self.suffix:
                record.msg, record.args = record.getMessage() + self.suffix, None
        return True


def bind_task(task_id: str, opaque_id: str | None) -> None:
    """Make every line this process writes from now on a line about one task (a
    task's own process runs only that task): its ``task_id`` and ``opaque_id``
    fields, and the message's ``opaque_id=…`` suffix. A filter on the root
    logger's handlers, so that records of every logger pass it."""
    task_filter = TaskFilter(task_id, opaque_id)
    for handler in logging.getLogger().handlers:
        handler.addFilter(task_filter)
