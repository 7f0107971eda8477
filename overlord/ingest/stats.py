"""Row statistics and parse-exception handling, as Druid's RowIngestionMeters and
ParseExceptionHandler count and report them."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

ErrorType = Literal["unparseable", "processedWithError"]


class IngestError(Exception):
    """Ingestion cannot go on; ``str(error)`` is Druid's text for the task's errorMsg."""


class MaxParseExceptionsExceeded(IngestError):
    """Druid's ParseExceptionHandler: more unparseable + processedWithError rows than
    ``maxParseExceptions``."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Max parse exceptions[{limit}] exceeded")
        self.limit = limit


@dataclass
class RowStats:
    """Druid's ``rowStats`` figures of one phase (buildSegments)."""

    processed: int = 0
    processed_bytes: int = 0
    processed_with_error: int = 0
    thrown_away: int = 0
    unparseable: int = 0

    def to_json(self) -> dict[str, int]:
        """In the order Druid's RowIngestionMetersTotals serialises them."""
        return {
            "processed": self.processed,
            "processedBytes": self.processed_bytes,
            "processedWithError": self.processed_with_error,
            "thrownAway": self.thrown_away,
            "unparseable": self.unparseable,
        }


@dataclass(frozen=True)
class ParseProblem:
    """One row Druid would report: its input text and the messages about it."""

    input: str | None
    details: tuple[str, ...]


class ParseExceptionHandler:
    """Counts bad rows, keeps the last ``max_saved`` of them and fails the ingestion
    once ``unparseable + processedWithError`` passes ``max_parse_exceptions``."""

    def __init__(
        self,
        stats: RowStats,
        *,
        max_parse_exceptions: int,
        max_saved: int = 0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.stats = stats
        self.max_parse_exceptions = max_parse_exceptions
        self.log = log
        self._saved: collections.deque[dict[str, Any]] | None = (
            collections.deque(maxlen=max_saved) if max_saved > 0 else None
        )
        # Live reports read the saved reports from another thread.
        self._lock = threading.Lock()

    @property
    def wants_details(self) -> bool:
        """Whether messages are needed at all (saved or logged)."""
        return self._saved is not None or self.log is not None

    def handle(
        self,
        kind: ErrorType,
        count: int,
        problems: Callable[[], Iterable[ParseProblem]],
    ) -> None:
        """Account for ``count`` bad rows of one kind, in input order.

        ``problems`` builds their reports lazily (only when saved, logged, or needed
        up to the failing row).

        Raises:
            MaxParseExceptionsExceeded: the row that passes the limit was reached.
        """
        self.handle_rows([kind] * count, problems)

    def handle_rows(
        self,
        kinds: Sequence[ErrorType],
        problems: Callable[[], Iterable[ParseProblem]],
    ) -> None:
        """Account for bad rows of either kind, in input order (``kinds[i]`` is the
        kind of the i-th problem), as Druid's handler meets them row by row.

        Raises:
            MaxParseExceptionsExceeded: the row that passes the limit was reached.
        """
        count = len(kinds)
        if count <= 0:
            return
        errors = self.stats.unparseable + self.stats.processed_with_error
        allowed = max(self.max_parse_exceptions - errors, 0)
        exceeded = count > allowed
        # Druid counts the failing row too, then throws.
        counted = allowed + 1 if exceeded else count
        for kind in kinds[:counted]:
            if kind == "unparseable":
                self.stats.unparseable += 1
            else:
                self.stats.processed_with_error += 1
        if self.wants_details:
            now = int(time.time() * 1000)
            for index, problem in enumerate(problems()):
                if index >= counted:
                    break
                if self.log is not None:
                    self.log(
                        f"Encountered parse exception: {'; '.join(problem.details)}"
                    )
                if self._saved is not None:
                    # Druid's ParseExceptionReport.
                    self._save(
                        {
                            "input": problem.input,
                            "errorType": kinds[index],
                            "details": list(problem.details),
                            "timeOfExceptionMillis": now,
                        }
                    )
        if exceeded:
            raise MaxParseExceptionsExceeded(self.max_parse_exceptions)

    def _save(self, report: dict[str, Any]) -> None:
        assert self._saved is not None
        with self._lock:
            self._saved.append(report)

    def reports(self) -> list[dict[str, Any]]:
        """The saved reports, newest first (IndexTaskUtils.getReportListFromSavedParseExceptions)."""
        if self._saved is None:
            return []
        with self._lock:
            return list(reversed(self._saved))
