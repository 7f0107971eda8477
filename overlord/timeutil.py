"""Time helpers: the one clock seam, Druid's ISO-8601 rendering and Joda-style intervals.

Leaf module: imports nothing from overlord.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass

import isodate

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)

# Joda's DateTimes.MIN/MAX, as Druid prints ETERNITY. Python's datetime cannot hold
# them, so intervals that reach past year 1000/9999 are clamped for comparison and
# keep these texts for display (the pending-segment duty sends MIN as its start).
DRUID_MIN_TEXT = "-146136543-09-08T08:23:32.096Z"
DRUID_MAX_TEXT = "146140482-04-24T15:36:27.903Z"
# MariaDB's DATETIME holds years 1000..9999 only; clamp into that range everywhere.
MIN_DATETIME = dt.datetime(1000, 1, 1, tzinfo=UTC)
MAX_DATETIME = dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


def utcnow() -> dt.datetime:
    """Current time, aware UTC, truncated to milliseconds as Druid keeps it."""
    now = dt.datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


# Memoised: a list poll formats the same creation times again and again (a
# console or client polling ``/tasks?state=complete&max=100``). 100 distinct
# values already seen: 123 → 15 µs per 100 (timeit, 2-core machine; 262 → 18
# with the other core busy). Equal datetimes are the same instant: the same text.
@functools.lru_cache(maxsize=8192)
def format_druid(value: dt.datetime) -> str:
    """``2024-01-01T00:00:00.000Z``: Joda's ISO-8601 UTC with milliseconds."""
    if value is EPOCH:
        # Every complete row of GET /tasks shows the epoch as queueInsertionTime.
        return EPOCH_TEXT
    # Two of these in every status and every list row: %-formatting the fields
    # costs 1.5 µs, isoformat(timespec="milliseconds") of an aware value and a
    # slice 1.9-3.0, strftime 6.3 (timeit, 2-core machine). A UTC value of years
    # 1001-9998 is inside the clamping bounds: no aware comparisons (py-spy: they
    # cost more than the formatting).
    if value.tzinfo is not UTC or not 1000 < value.year < 9999:
        if not MIN_DATETIME < value < MAX_DATETIME:
            return DRUID_MIN_TEXT if value <= MIN_DATETIME else DRUID_MAX_TEXT
        value = value.astimezone(UTC)
    return _DRUID_FORMAT % (
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond // 1000,
    )


_DRUID_FORMAT = "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ"
EPOCH_TEXT = "1970-01-01T00:00:00.000Z"


def to_millis(value: dt.datetime) -> int:
    return int((value - EPOCH) // dt.timedelta(milliseconds=1))


class InvalidTime(ValueError):
    """A timestamp, period or interval text that cannot be parsed."""


_DATE_TIME = re.compile(
    r"^(?P<year>[+-]?\d{4,9})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2}))?)?"
    r"(?:T(?P<time>[0-9:.,]*)(?P<zone>Z|[+-]\d{2}(?::?\d{2})?)?)?$"
)


def parse_druid_datetime(text: str) -> dt.datetime:
    """Parse an ISO-8601 instant as Joda does for Druid: UTC unless an offset is given.

    Partial dates (``2024``, ``2024-01``) and partial times (``T05``) are allowed;
    years outside 1000..9999 (Druid's MIN/MAX) are clamped.
    Raises:
        InvalidTime: the text is not an ISO-8601 instant.
    """
    match = _DATE_TIME.match(text.strip())
    if match is None:
        raise InvalidTime(f'Invalid format: "{text}"')
    year = int(match["year"])
    if year < MIN_DATETIME.year:
        return MIN_DATETIME
    if year > MAX_DATETIME.year:
        return MAX_DATETIME
    try:
        date = dt.date(year, int(match["month"] or 1), int(match["day"] or 1))
        time = _parse_time(match["time"] or "")
        zone = _parse_zone(match["zone"])
    except ValueError as error:
        raise InvalidTime(f'Invalid format: "{text}"') from error
    return dt.datetime.combine(date, time, tzinfo=zone).astimezone(UTC)


def _parse_time(text: str) -> dt.time:
    if not text:
        return dt.time()
    main, _, fraction = text.replace(",", ".").partition(".")
    parts = main.split(":") if ":" in main else [main[i : i + 2] for i in (0, 2, 4)]
    parts = [p for p in parts if p]
    if not 1 <= len(parts) <= 3 or any(len(p) != 2 for p in parts):
        raise ValueError(text)
    hour, minute, second = ([int(p) for p in parts] + [0, 0])[:3]
    micro = int((fraction + "000000")[:6]) if fraction else 0
    return dt.time(hour, minute, second, micro)


def _parse_zone(text: str | None) -> dt.tzinfo:
    if not text or text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    return dt.timezone(sign * offset)


def parse_period(text: str) -> dt.timedelta:
    """Parse an ISO-8601 period of fixed length (``PT30S``, ``P1D``, ``P1W``).

    Months and years have no fixed length and are refused.
    Raises:
        InvalidTime: not a period, or one with months or years.
    """
    try:
        period = isodate.parse_duration(text)
    except (isodate.ISO8601Error, ValueError) as error:
        raise InvalidTime(f'Invalid format: "{text}"') from error
    if isinstance(period, isodate.Duration):
        if period.years or period.months:
            raise InvalidTime(f'Period "{text}" has months or years: no fixed length')
        period = period.tdelta
    if not isinstance(period, dt.timedelta):
        raise InvalidTime(f'Invalid format: "{text}"')
    return period


def format_period(value: dt.timedelta) -> str:
    """Render a duration as Joda prints periods: ``PT30S``, ``PT0.5S``, ``P1D``."""
    total_ms = int(value // dt.timedelta(milliseconds=1))
    days, rest_ms = divmod(total_ms, 86_400_000)
    hours, rest_ms = divmod(rest_ms, 3_600_000)
    minutes, rest_ms = divmod(rest_ms, 60_000)
    seconds, millis = divmod(rest_ms, 1000)
    text = "P" + (f"{days}D" if days else "")
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if seconds or millis:
        time += f"{seconds}.{millis:03d}".rstrip("0").rstrip(".") + "S"
    if time:
        text += "T" + time
    return text if text != "P" else "PT0S"


@dataclass(frozen=True)
class Interval:
    """A half-open UTC interval ``[start, end)`` as Joda's Interval."""

    start: dt.datetime
    end: dt.datetime

    def __str__(self) -> str:
        return f"{format_druid(self.start)}/{format_druid(self.end)}"

    @property
    def duration(self) -> dt.timedelta:
        return self.end - self.start

    def overlaps(self, other: Interval) -> bool:
        """Joda's ``overlaps``: true when the two share some instant."""
        return self.start < other.end and other.start < self.end

    def contains(self, other: Interval) -> bool:
        return self.start <= other.start and other.end <= self.end


def parse_interval(text: str) -> Interval:
    """Parse ``start/end``, ``start/period`` or ``period/end`` as Joda does.

    Raises:
        InvalidTime: the text is not such an interval, or ends before it starts.
    """
    first, sep, second = text.partition("/")
    if not sep or not first or not second:
        raise InvalidTime(f"Format requires a '/' separator: \"{text}\"")
    if first.startswith("P") and second.startswith("P"):
        raise InvalidTime(f'Interval composed of two durations: "{text}"')
    if first.startswith("P"):
        end = parse_druid_datetime(second)
        start = _shift(end, first, forward=False)
    elif second.startswith("P"):
        start = parse_druid_datetime(first)
        end = _shift(start, second, forward=True)
    else:
        start, end = parse_druid_datetime(first), parse_druid_datetime(second)
    if end < start:
        raise InvalidTime("The end instant must be greater than the start instant")
    return Interval(start, end)


def _shift(origin: dt.datetime, period_text: str, *, forward: bool) -> dt.datetime:
    # Unlike a setting's period, an interval's may count months and years
    # ("2024-01-01/P1M"): Joda adds them on the calendar, years and months first,
    # a day past the month's end falling back to its last day, as isodate does.
    try:
        period = isodate.parse_duration(period_text)
    except (isodate.ISO8601Error, ValueError) as error:
        raise InvalidTime(f'Invalid format: "{period_text}"') from error
    try:
        moved: dt.datetime = origin + period if forward else origin - period
    except (OverflowError, ValueError):
        return MAX_DATETIME if forward else MIN_DATETIME
    return min(max(moved, MIN_DATETIME), MAX_DATETIME)


def _clamp(origin: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    try:
        moved = origin + delta
    except OverflowError:
        return MAX_DATETIME if delta > dt.timedelta(0) else MIN_DATETIME
    return min(max(moved, MIN_DATETIME), MAX_DATETIME)


def minus_clamped(origin: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    """``origin - delta``, clamped to the storable range."""
    return _clamp(origin, -delta)
