"""Logging set-up of every overlord process: text, or one JSON object per line
(python-json-logger) with the request and task fields a line carries."""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter

__all__ = ["JsonFormatter", "configure"]

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
