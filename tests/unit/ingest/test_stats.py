"""Row stats and Druid's ParseExceptionHandler rules."""

from __future__ import annotations

import pytest

from overlord.ingest.stats import (
    MaxParseExceptionsExceeded,
    ParseExceptionHandler,
    ParseProblem,
    RowStats,
)


def problems(*names: str) -> list[ParseProblem]:
    return [ParseProblem(name, (f"bad {name}",)) for name in names]


def test_row_stats_json_in_druid_order() -> None:
    stats = RowStats(
        processed=5,
        processed_bytes=100,
        processed_with_error=1,
        thrown_away=2,
        unparseable=3,
    )
    assert list(stats.to_json().items()) == [
        ("processed", 5),
        ("processedBytes", 100),
        ("processedWithError", 1),
        ("thrownAway", 2),
        ("unparseable", 3),
    ]


def test_saves_the_last_n_newest_first() -> None:
    stats = RowStats()
    handler = ParseExceptionHandler(stats, max_parse_exceptions=100, max_saved=2)
    handler.handle("unparseable", 2, lambda: problems("a", "b"))
    handler.handle("processedWithError", 1, lambda: problems("c"))
    assert (stats.unparseable, stats.processed_with_error) == (2, 1)
    reports = handler.reports()
    for report in reports:
        assert isinstance(report.pop("timeOfExceptionMillis"), int)
    assert reports == [
        {"input": "c", "errorType": "processedWithError", "details": ["bad c"]},
        {"input": "b", "errorType": "unparseable", "details": ["bad b"]},
    ]


def test_nothing_saved_by_default() -> None:
    handler = ParseExceptionHandler(RowStats(), max_parse_exceptions=10)
    handler.handle("unparseable", 1, lambda: problems("a"))
    assert handler.reports() == []


def test_limit_counts_both_kinds_and_the_failing_row() -> None:
    stats = RowStats()
    handler = ParseExceptionHandler(stats, max_parse_exceptions=2, max_saved=10)
    handler.handle("processedWithError", 1, lambda: problems("a"))
    with pytest.raises(MaxParseExceptionsExceeded) as raised:
        handler.handle("unparseable", 5, lambda: problems("b", "c", "d", "e", "f"))
    assert str(raised.value) == "Max parse exceptions[2] exceeded"
    # Druid counts up to the row that passes the limit, then throws.
    assert (stats.processed_with_error, stats.unparseable) == (1, 2)
    assert [r["input"] for r in handler.reports()] == ["c", "b", "a"]


def test_zero_allowed_fails_on_the_first() -> None:
    stats = RowStats()
    handler = ParseExceptionHandler(stats, max_parse_exceptions=0)
    with pytest.raises(
        MaxParseExceptionsExceeded, match=r"^Max parse exceptions\[0\] exceeded$"
    ):
        handler.handle("unparseable", 1, lambda: problems("a"))
    assert stats.unparseable == 1


def test_logs_each_when_asked() -> None:
    lines: list[str] = []
    handler = ParseExceptionHandler(
        RowStats(), max_parse_exceptions=10, log=lines.append
    )
    handler.handle("unparseable", 2, lambda: problems("a", "b"))
    assert lines == [
        "Encountered parse exception: bad a",
        "Encountered parse exception: bad b",
    ]
