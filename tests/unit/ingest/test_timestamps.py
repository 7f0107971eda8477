"""Timestamp formats and granularity truncation, vectorised and slow paths."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from overlord.granularity import parse_granularity
from overlord.ingest.timestamps import (
    TimestampParser,
    bucket_starts,
    joda_to_strptime,
    truncate,
)
from overlord.timeutil import parse_interval

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def parse(
    fmt: str, values: list[object], kind: pa.DataType | None = None
) -> tuple[list[int | None], list[int]]:
    millis, bad = TimestampParser(fmt).parse(pa.array(values, kind))
    return millis.to_pylist(), bad


@pytest.mark.parametrize(
    ("fmt", "values", "expected", "bad"),
    [
        pytest.param(
            "iso",
            ["2024-01-01T00:00:00Z", "2024-01-01T01:00:00.5+01:00", None],
            [T0, T0 + 500, None],
            [],
            id="iso-zones",
        ),
        pytest.param(
            "iso",
            ["2024-01-01", "2024-01-01T02"],
            [T0, T0 + 7_200_000],
            [],
            id="iso-partial",
        ),
        pytest.param(
            "iso", ["2024-01-01T00:00:00Z", "nope"], [T0, None], [1], id="iso-bad"
        ),
        pytest.param(
            "auto",
            ["2024-01-01 00:00:01", "2024-01-01T00:00:02Z"],
            [T0 + 1000, T0 + 2000],
            [],
            id="auto-space",
        ),
        pytest.param(
            "auto", [str(T0), str(T0 + 1)], [T0, T0 + 1], [], id="auto-millis-text"
        ),
        pytest.param(
            "auto", [str(T0), "2024-01-01T00:00:00Z"], [T0, T0], [], id="auto-mixed"
        ),
        pytest.param("millis", [str(T0), "x"], [T0, None], [1], id="millis-text-bad"),
        pytest.param("posix", ["1704067200"], [T0], [], id="posix-text"),
        pytest.param("nano", [str(T0 * 1_000_000)], [T0], [], id="nano-text"),
        pytest.param("micro", [str(T0 * 1000 + 999)], [T0], [], id="micro-text"),
        pytest.param(
            "yyyy-MM-dd HH:mm:ss",
            ["2024-01-01 00:00:03", "01/01/2024"],
            [T0 + 3000, None],
            [1],
            id="joda",
        ),
        pytest.param(
            "dd/MM/yyyy'T'HH:mm:ss.SSS",
            ["01/01/2024T00:00:01.250"],
            [T0 + 1250],
            [],
            id="joda-literal-millis",
        ),
    ],
)
def test_text_formats(
    fmt: str, values: list[object], expected: list[int | None], bad: list[int]
) -> None:
    assert parse(fmt, values) == (expected, bad)


@pytest.mark.parametrize(
    ("fmt", "values", "expected"),
    [
        pytest.param("millis", [T0, T0 + 1], [T0, T0 + 1], id="millis"),
        pytest.param("auto", [T0], [T0], id="auto-number"),
        pytest.param("posix", [1_704_067_200], [T0], id="posix"),
        pytest.param("posix", [1_704_067_200.9], [T0], id="posix-float"),
        pytest.param("nano", [T0 * 1_000_000], [T0], id="nano"),
    ],
)
def test_number_formats(fmt: str, values: list[object], expected: list[int]) -> None:
    assert parse(fmt, values) == (expected, [])


def test_null_column() -> None:
    assert parse("iso", [None, None], pa.null()) == ([None, None], [])


def test_joda_translation() -> None:
    assert joda_to_strptime("yyyy-MM-dd'T'HH:mm:ss.SSSZ") == "%Y-%m-%dT%H:%M:%S.%f%z"
    assert joda_to_strptime("dd MMM yyyy 'at' h a") == "%d %b %Y at %I %p"


@pytest.mark.parametrize(
    ("granularity", "value", "expected"),
    [
        ("NONE", T0 + 1234, T0 + 1234),
        ("SECOND", T0 + 1234, T0 + 1000),
        ("MINUTE", T0 + 61_000, T0 + 60_000),
        ("HOUR", T0 + 3_599_999, T0),
        ("DAY", T0 + 86_399_999, T0),
        ("DAY", -1, -86_400_000),
        ("WEEK", T0 + 6 * 86_400_000, T0),  # 2024-01-01 is a Monday
        ("MONTH", T0 + 40 * 86_400_000, T0 + 31 * 86_400_000),
        ("QUARTER", T0 + 100 * 86_400_000, T0 + 91 * 86_400_000),
        ("YEAR", T0 + 200 * 86_400_000, T0),
        ({"type": "period", "period": "PT6H"}, T0 + 7 * 3_600_000, T0 + 6 * 3_600_000),
    ],
)
def test_truncate(granularity: object, value: int, expected: int) -> None:
    parsed = parse_granularity(granularity)
    assert truncate(pa.array([value, None], pa.int64()), parsed).to_pylist() == [
        expected,
        None,
    ]


def test_bucket_starts_cover_overlapping_buckets() -> None:
    interval = parse_interval("2024-01-01T12:00:00Z/2024-01-03T00:00:00Z")
    assert bucket_starts("DAY", (interval,)) == [T0, T0 + 86_400_000]
    assert dt.timedelta(
        milliseconds=bucket_starts("HOUR", (interval,))[0] - T0
    ) == dt.timedelta(hours=12)


def test_one_bad_value_among_many() -> None:
    values: list[object] = ["2024-01-01T00:00:00Z"] * 1000
    values[637] = "garbage"
    millis, bad = parse("iso", values)
    assert bad == [637]
    assert millis[636:639] == [T0, None, T0]
    assert millis.count(T0) == 999
