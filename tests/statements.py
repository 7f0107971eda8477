"""Statement recording for query-budget tests (Warehouse's QueryRecorder)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


@contextlib.contextmanager
def record_statements(engine: Engine) -> Iterator[list[str]]:
    """Every statement sent to the database meanwhile."""
    statements: list[str] = []

    def before_cursor_execute(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)


def data_queries(statements: list[str]) -> list[str]:
    """The SELECTs among ``statements``."""
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]
