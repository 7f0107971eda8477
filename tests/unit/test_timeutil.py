"""Druid's time texts: ISO-8601 instants rendered as Joda prints them, intervals
parsed as Joda parses them (with ETERNITY clamped and printed back), fixed-length
periods, and half-open interval overlap."""

from __future__ import annotations

import datetime as dt

import pytest

from overlord.timeutil import (
    DRUID_MAX_TEXT,
    DRUID_MIN_TEXT,
    EPOCH,
    MAX_DATETIME,
    MIN_DATETIME,
    Interval,
    InvalidTime,
    format_druid,
    format_period,
    parse_druid_datetime,
    parse_interval,
    parse_period,
    to_millis,
    utcnow,
)

UTC = dt.UTC
ETERNITY = "-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z"


def _at(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    microsecond: int = 0,
    tz: dt.tzinfo = UTC,
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, microsecond, tzinfo=tz)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(
            _at(2024, 1, 2, 3, 4, 5, 678000), "2024-01-02T03:04:05.678Z", id="ms"
        ),
        pytest.param(
            _at(2024, 1, 2, 3, 4, 5, 678999), "2024-01-02T03:04:05.678Z", id="truncates"
        ),
        pytest.param(_at(2024, 1, 2), "2024-01-02T00:00:00.000Z", id="midnight"),
        pytest.param(
            _at(2024, 1, 2, 3, 4, 5, tz=dt.timezone(dt.timedelta(hours=5))),
            "2024-01-01T22:04:05.000Z",
            id="offset-to-utc",
        ),
        pytest.param(EPOCH, "1970-01-01T00:00:00.000Z", id="epoch"),
        pytest.param(MIN_DATETIME, DRUID_MIN_TEXT, id="min"),
        pytest.param(_at(1, 1, 1), DRUID_MIN_TEXT, id="below-min"),
        pytest.param(MAX_DATETIME, DRUID_MAX_TEXT, id="max"),
    ],
)
def test_format_druid_renders_utc_milliseconds_z(value: dt.datetime, text: str) -> None:
    assert format_druid(value) == text


def test_format_druid_memoised_gives_each_instant_its_own_utc_text() -> None:
    # Memoised by value: an equal instant in another zone (an equal key) must
    # give the text the UTC value gives, and nearby instants their own.
    utc = dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.UTC)
    plus_two = utc.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert format_druid(utc) == "2024-05-06T07:08:09.123Z"
    assert format_druid(plus_two) == "2024-05-06T07:08:09.123Z"
    assert format_druid(plus_two + dt.timedelta(milliseconds=1)) == (
        "2024-05-06T07:08:09.124Z"
    )


def test_to_millis_aware_datetime_counts_ms_from_epoch() -> None:
    assert to_millis(EPOCH) == 0
    assert to_millis(_at(2024, 1, 1, 0, 0, 0, 5000)) == 1_704_067_200_005


def test_utcnow_called_returns_aware_utc_whole_ms() -> None:
    now = utcnow()

    assert now.tzinfo is UTC
    assert now.microsecond % 1000 == 0
    assert abs(dt.datetime.now(UTC) - now) < dt.timedelta(seconds=5)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        pytest.param(
            "2024-01-01T00:00:00.000Z/2024-01-02T12:30:00.000Z",
            _at(2024, 1, 1),
            _at(2024, 1, 2, 12, 30),
            id="start-end",
        ),
        pytest.param(
            "2024-01-01/2024-01-02", _at(2024, 1, 1), _at(2024, 1, 2), id="dates"
        ),
        pytest.param("2024/2025", _at(2024, 1, 1), _at(2025, 1, 1), id="years"),
        pytest.param("2024-01/2024-03", _at(2024, 1, 1), _at(2024, 3, 1), id="months"),
        pytest.param(
            "2024-01-01T10/2024-01-01T11:30",
            _at(2024, 1, 1, 10),
            _at(2024, 1, 1, 11, 30),
            id="partial-times",
        ),
        pytest.param(
            "2024-01-01T0000Z/2024-01-01T013015Z",
            _at(2024, 1, 1),
            _at(2024, 1, 1, 1, 30, 15),
            id="basic-times",
        ),
        pytest.param(
            "2024-01-01T10:30:15,5Z/2024-01-01T10:30:16.123456789Z",
            _at(2024, 1, 1, 10, 30, 15, 500000),
            _at(2024, 1, 1, 10, 30, 16, 123456),
            id="fractions",
        ),
        pytest.param(
            "2024-01-01T05:00:00+05:00/2024-01-02T00:00-02:30",
            _at(2024, 1, 1),
            _at(2024, 1, 2, 2, 30),
            id="offsets",
        ),
        pytest.param(
            "2024-01-01T05:00+0530/2024-01-01T06:00+0530",
            _at(2023, 12, 31, 23, 30),
            _at(2024, 1, 1, 0, 30),
            id="offset-basic",
        ),
        pytest.param(
            "2024-01-01/P1D", _at(2024, 1, 1), _at(2024, 1, 2), id="start-period"
        ),
        pytest.param(
            "2024-01-01T10:00Z/PT1H30M",
            _at(2024, 1, 1, 10),
            _at(2024, 1, 1, 11, 30),
            id="start-time-period",
        ),
        pytest.param(
            "P1D/2024-01-02", _at(2024, 1, 1), _at(2024, 1, 2), id="period-end"
        ),
        pytest.param(
            "P1W/2024-01-08T00:00:00+01:00",
            _at(2023, 12, 31, 23),
            _at(2024, 1, 7, 23),
            id="period-end-offset",
        ),
        pytest.param(
            "2024-01-31/P1M", _at(2024, 1, 31), _at(2024, 2, 29), id="month-clamps-day"
        ),
        pytest.param(
            "P1M/2024-03-31", _at(2024, 2, 29), _at(2024, 3, 31), id="period-month-end"
        ),
        pytest.param(
            "2024-02-29/P1Y", _at(2024, 2, 29), _at(2025, 2, 28), id="year-leap-day"
        ),
        pytest.param(
            "2024-01-01/2024-01-01", _at(2024, 1, 1), _at(2024, 1, 1), id="empty"
        ),
    ],
)
def test_parse_interval_valid_text_gives_utc_bounds(
    text: str, start: dt.datetime, end: dt.datetime
) -> None:
    interval = parse_interval(text)

    assert (interval.start, interval.end) == (start, end)
    assert interval.start.utcoffset() == interval.end.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param(ETERNITY, ETERNITY, id="eternity"),
        pytest.param(
            f"{DRUID_MIN_TEXT}/2024-01-01",
            f"{DRUID_MIN_TEXT}/2024-01-01T00:00:00.000Z",
            id="since-min",
        ),
        pytest.param(
            f"2024-01-01/{DRUID_MAX_TEXT}",
            f"2024-01-01T00:00:00.000Z/{DRUID_MAX_TEXT}",
            id="until-max",
        ),
        pytest.param("0001-01-01/10000-01-01", ETERNITY, id="outside-datetime-range"),
        pytest.param(
            "2024-01-01/P100000Y",
            f"2024-01-01T00:00:00.000Z/{DRUID_MAX_TEXT}",
            id="period-past-max",
        ),
        pytest.param(
            "P1000000D/2024-01-01",
            f"{DRUID_MIN_TEXT}/2024-01-01T00:00:00.000Z",
            id="period-before-min",
        ),
    ],
)
def test_parse_interval_beyond_storable_years_clamps_and_prints_druid_bounds(
    text: str, shown: str
) -> None:
    interval = parse_interval(text)

    assert MIN_DATETIME <= interval.start <= interval.end <= MAX_DATETIME
    assert str(interval) == shown


def test_parse_interval_eternity_spans_whole_storable_range() -> None:
    assert parse_interval(ETERNITY) == Interval(MIN_DATETIME, MAX_DATETIME)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "yesterday", "Format requires a '/' separator: \"yesterday\"", id="word"
        ),
        pytest.param(
            "2024-01-01",
            "Format requires a '/' separator: \"2024-01-01\"",
            id="one-instant",
        ),
        pytest.param(
            "/2024-01-01",
            "Format requires a '/' separator: \"/2024-01-01\"",
            id="no-start",
        ),
        pytest.param(
            "2024-01-01/",
            "Format requires a '/' separator: \"2024-01-01/\"",
            id="no-end",
        ),
        pytest.param(
            "P1D/PT1H", 'Interval composed of two durations: "P1D/PT1H"', id="periods"
        ),
        pytest.param(
            "2024-01-02/2024-01-01",
            "The end instant must be greater than the start instant",
            id="end-before-start",
        ),
        pytest.param(
            "2024-01-01T00:00:00+01:00/2024-01-01T00:00:00+02:00",
            "The end instant must be greater than the start instant",
            id="end-before-start-by-offset",
        ),
        pytest.param("2024-13-01/P1D", 'Invalid format: "2024-13-01"', id="month-13"),
        pytest.param("2024-02-30/P1D", 'Invalid format: "2024-02-30"', id="feb-30"),
        pytest.param(
            "2024-01-01T25:00/P1D", 'Invalid format: "2024-01-01T25:00"', id="hour-25"
        ),
        pytest.param("2024-01-01/garbage", 'Invalid format: "garbage"', id="garbage"),
        pytest.param("2024-01-01/P1X", 'Invalid format: "P1X"', id="bad-period"),
        pytest.param("24-01-01/P1D", 'Invalid format: "24-01-01"', id="short-year"),
    ],
)
def test_parse_interval_bad_text_raises_invalid_time(text: str, message: str) -> None:
    with pytest.raises(InvalidTime) as caught:
        parse_interval(text)

    assert str(caught.value) == message


def test_parse_druid_datetime_no_zone_reads_utc() -> None:
    assert parse_druid_datetime("2024-06-01T12:00") == _at(2024, 6, 1, 12)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("PT30S", dt.timedelta(seconds=30), id="seconds"),
        pytest.param("P1D", dt.timedelta(days=1), id="day"),
        pytest.param("PT0.5S", dt.timedelta(milliseconds=500), id="fraction"),
        pytest.param("PT1H30M", dt.timedelta(minutes=90), id="hours-minutes"),
        pytest.param("P2W", dt.timedelta(weeks=2), id="weeks"),
        pytest.param("P1DT12H", dt.timedelta(hours=36), id="day-time"),
    ],
)
def test_parse_period_fixed_length_gives_timedelta(
    text: str, expected: dt.timedelta
) -> None:
    assert parse_period(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "P1M", 'Period "P1M" has months or years: no fixed length', id="month"
        ),
        pytest.param(
            "P1Y", 'Period "P1Y" has months or years: no fixed length', id="year"
        ),
        pytest.param("30s", 'Invalid format: "30s"', id="no-p"),
        pytest.param("", 'Invalid format: ""', id="empty"),
        pytest.param("P1X", 'Invalid format: "P1X"', id="unit"),
    ],
)
def test_parse_period_bad_text_raises_invalid_time(text: str, message: str) -> None:
    with pytest.raises(InvalidTime) as caught:
        parse_period(text)

    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(dt.timedelta(0), "PT0S", id="zero"),
        pytest.param(dt.timedelta(milliseconds=1), "PT0.001S", id="ms"),
        pytest.param(dt.timedelta(milliseconds=500), "PT0.5S", id="half-second"),
        pytest.param(dt.timedelta(seconds=30), "PT30S", id="seconds"),
        pytest.param(dt.timedelta(minutes=30), "PT30M", id="minutes"),
        pytest.param(dt.timedelta(minutes=90), "PT1H30M", id="hours-minutes"),
        pytest.param(dt.timedelta(days=1), "P1D", id="day"),
        pytest.param(dt.timedelta(hours=36), "P1DT12H", id="day-hours"),
        pytest.param(
            dt.timedelta(days=2, hours=3, minutes=4, seconds=5, milliseconds=60),
            "P2DT3H4M5.06S",
            id="everything",
        ),
    ],
)
def test_format_period_prints_joda_text_that_parses_back(
    value: dt.timedelta, text: str
) -> None:
    assert format_period(value) == text
    assert parse_period(text) == value


def test_format_period_sub_millisecond_part_dropped() -> None:
    assert format_period(dt.timedelta(microseconds=1999)) == "PT0.001S"


def _interval(text: str) -> Interval:
    return parse_interval(f"2024-01-01T{text.replace('/', '/2024-01-01T')}")


# Joda's own table for AbstractInterval.overlaps: [start, end) is half-open, so
# abutting intervals do not overlap and an empty interval overlaps only what
# strictly contains its instant.
@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        pytest.param("09:00/10:00", "08:00/08:30", False, id="completely-before"),
        pytest.param("09:00/10:00", "08:00/09:00", False, id="abuts-before"),
        pytest.param("09:00/10:00", "08:00/09:30", True, id="overlaps-start"),
        pytest.param("09:00/10:00", "08:00/10:00", True, id="ends-together"),
        pytest.param("09:00/10:00", "08:00/11:00", True, id="contained"),
        pytest.param("09:00/10:00", "09:00/09:00", False, id="empty-at-start"),
        pytest.param("09:00/10:00", "09:00/09:30", True, id="starts-together"),
        pytest.param("09:00/10:00", "09:00/10:00", True, id="same"),
        pytest.param("09:00/10:00", "09:00/11:00", True, id="starts-together-longer"),
        pytest.param("09:00/10:00", "09:30/09:30", True, id="empty-inside"),
        pytest.param("09:00/10:00", "10:00/10:00", False, id="empty-at-end"),
        pytest.param("09:00/10:00", "10:00/11:00", False, id="abuts-after"),
        pytest.param("09:00/10:00", "10:30/11:00", False, id="completely-after"),
        pytest.param("14:00/14:00", "14:00/14:00", False, id="both-empty"),
        pytest.param("14:00/14:00", "13:00/15:00", True, id="empty-in-other"),
    ],
)
def test_interval_overlaps_follows_joda(
    first: str, second: str, expected: bool
) -> None:
    assert _interval(first).overlaps(_interval(second)) is expected


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        pytest.param("09:00/10:00", "09:00/10:00", True, id="same"),
        pytest.param("09:00/10:00", "09:15/09:45", True, id="inside"),
        pytest.param("09:00/10:00", "09:30/10:30", False, id="runs-past-end"),
        pytest.param("09:00/10:00", "08:30/09:30", False, id="starts-before"),
    ],
)
def test_interval_contains_other_only_when_whole(
    outer: str, inner: str, expected: bool
) -> None:
    assert _interval(outer).contains(_interval(inner)) is expected


def test_interval_from_period_has_duration_and_druid_text() -> None:
    interval = parse_interval("2024-01-01T00:00:00.000Z/P1DT0.25S")

    assert interval.duration == dt.timedelta(days=1, milliseconds=250)
    assert str(interval) == "2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.250Z"
