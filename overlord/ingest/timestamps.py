"""Timestamps: Druid's TimestampSpec formats over Arrow arrays, and granularity
truncation of epoch milliseconds.

Vectorised first (Arrow casts and ``strptime``); only values Arrow refuses go through
Python, so bad values are found one by one and reported.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from overlord.granularity import bucket, fixed_size
from overlord.ingest.spec import Granularity
from overlord.timeutil import (
    EPOCH,
    MAX_DATETIME,
    MIN_DATETIME,
    Interval,
    InvalidTime,
    parse_druid_datetime,
    to_millis,
)

NUMERIC_FORMATS = {"millis": 1, "posix": 1000, "micro": -1000, "nano": -1_000_000}
MIN_MILLIS = to_millis(MIN_DATETIME)
MAX_MILLIS = to_millis(MAX_DATETIME)

# Joda DateTimeFormat letters → strptime directives (the common ones).
_JODA = [
    ("yyyy", "%Y"),
    ("YYYY", "%Y"),
    ("yy", "%y"),
    ("MMMM", "%B"),
    ("MMM", "%b"),
    ("MM", "%m"),
    ("M", "%m"),
    ("dd", "%d"),
    ("d", "%d"),
    ("HH", "%H"),
    ("H", "%H"),
    ("hh", "%I"),
    ("h", "%I"),
    ("mm", "%M"),
    ("m", "%M"),
    ("ss", "%S"),
    ("s", "%S"),
    ("SSSSSS", "%f"),
    ("SSS", "%f"),
    ("S", "%f"),
    ("a", "%p"),
    ("EEEE", "%A"),
    ("EEE", "%a"),
    ("ZZ", "%z"),
    ("Z", "%z"),
    ("z", "%Z"),
]


def joda_to_strptime(pattern: str) -> str:
    """Translate a Joda pattern (``yyyy-MM-dd HH:mm:ss``, ``'T'`` literals…)."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "'":
            end = pattern.find("'", index + 1)
            if end < 0:
                end = len(pattern)
            literal = pattern[index + 1 : end] or "'"
            out.append(literal.replace("%", "%%"))
            index = end + 1
            continue
        for token, directive in _JODA:
            if pattern.startswith(token, index):
                out.append(directive)
                index += len(token)
                break
        else:
            out.append("%%" if char == "%" else char)
            index += 1
    return "".join(out)


class TimestampParser:
    """Parses one column to epoch milliseconds as Druid's TimestampSpec would.

    ``parse`` returns the milliseconds (null where the input is null or bad) and the
    positions of bad values.
    """

    def __init__(self, fmt: str) -> None:
        self.format = fmt
        self.kind = (
            fmt.lower() if fmt.lower() in (*NUMERIC_FORMATS, "iso", "auto") else "joda"
        )
        self.strptime = joda_to_strptime(fmt) if self.kind == "joda" else ""

    def parse(self, column: pa.Array) -> tuple[pa.Array, list[int]]:
        column = _as_array(column)
        kind = column.type
        if pa.types.is_null(kind):
            return pa.nulls(len(column), pa.int64()), []
        if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            return pc.cast(pc.cast(column, pa.timestamp("ms")), pa.int64()), []
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            if self.kind in NUMERIC_FORMATS or self.kind == "auto":
                return self._numeric(column), []
            column = pc.cast(column, pa.string())
        elif not pa.types.is_string(kind) and not pa.types.is_large_string(kind):
            return self._python(column)
        return tolerant(column, self._fast, self._python)

    def _fast(self, column: pa.Array) -> pa.Array:
        """Text to milliseconds, vectorised; raises pa.ArrowInvalid on any bad value."""
        if self.kind in NUMERIC_FORMATS:
            return self._numeric(pc.cast(column, pa.int64()))
        if self.kind == "joda":
            return self._joda(column)
        if self.kind == "auto":
            digits = pc.fill_null(pc.match_substring_regex(column, r"^-?\d+$"), False)
            if pc.all(pc.or_(digits, pc.is_null(column))).as_py():
                return self._numeric(pc.cast(column, pa.int64()))
            if pc.any(digits).as_py():
                raise pa.ArrowInvalid("millis and ISO texts mixed")
        try:
            return pc.cast(pc.cast(column, pa.timestamp("ms", "UTC")), pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            # Without a zone: UTC, as Druid reads it.
            return pc.cast(pc.cast(column, pa.timestamp("ms")), pa.int64())

    def _numeric(self, column: pa.Array) -> pa.Array:
        scale = NUMERIC_FORMATS.get(self.kind, 1)
        if pa.types.is_floating(column.type):
            column = pc.cast(pc.floor(column), pa.int64(), safe=False)
        elif column.type != pa.int64():
            column = pc.cast(column, pa.int64())
        if scale > 1:
            return pc.multiply(column, scale)
        if scale < -1:
            return floor_divide(column, -scale)
        return column

    def _joda(self, column: pa.Array) -> pa.Array:
        if "%f" in self.strptime or "%Z" in self.strptime:
            # Arrow's strptime has no fractions or zone names: Python's has.
            raise pa.ArrowNotImplementedError(self.strptime)
        parsed = pc.strptime(
            column, format=self.strptime, unit="ms", error_is_null=True
        )
        millis = pc.cast(parsed, pa.int64())
        if pc.any(pc.and_(pc.is_valid(column), pc.is_null(millis))).as_py():
            raise pa.ArrowInvalid("unparseable")
        return millis

    def _python(self, column: pa.Array) -> tuple[pa.Array, list[int]]:
        values: list[int | None] = []
        bad: list[int] = []
        for index, value in enumerate(column.to_pylist()):
            if value is None:
                values.append(None)
                continue
            millis = self.parse_one(value)
            if millis is None:
                bad.append(index)
            values.append(millis)
        return pa.array(values, pa.int64()), bad

    def parse_one(self, value: object) -> int | None:
        """One value, the slow way; None when Druid could not parse it."""
        try:
            if isinstance(value, bool):
                return None
            if isinstance(value, int | float):
                if self.kind in NUMERIC_FORMATS or self.kind == "auto":
                    return _scaled(int(value // 1), self.kind)
                value = str(value)
            if not isinstance(value, str):
                return None
            text = value.strip()
            if self.kind in NUMERIC_FORMATS:
                return _scaled(int(text), self.kind)
            if self.kind == "auto" and re.fullmatch(r"-?\d+", text):
                return int(text)
            if self.kind == "joda":
                when = dt.datetime.strptime(text, self.strptime)  # noqa: DTZ007
            else:
                if self.kind == "auto":
                    text = text.replace(" ", "T", 1)
                when = parse_druid_datetime(text)
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            return to_millis(when)
        except (ValueError, InvalidTime, OverflowError):
            return None


SMALL = 64


def tolerant(
    column: pa.Array,
    fast: Callable[[pa.Array], pa.Array],
    slow: Callable[[pa.Array], tuple[pa.Array, list[int]]],
) -> tuple[pa.Array, list[int]]:
    """``fast`` over ``column``; where it raises, halves are tried again and only
    pieces of at most ``SMALL`` values go through ``slow`` (which reports the
    positions of bad values), so one bad value keeps the rest vectorised."""
    try:
        return fast(column), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if len(column) <= SMALL:
        return slow(column)
    middle = len(column) // 2
    head, head_bad = tolerant(column.slice(0, middle), fast, slow)
    tail, tail_bad = tolerant(column.slice(middle), fast, slow)
    return pa.concat_arrays([head, tail]), head_bad + [i + middle for i in tail_bad]


def _scaled(value: int, kind: str) -> int:
    scale = NUMERIC_FORMATS.get(kind, 1)
    return value * scale if scale > 0 else value // -scale


def _as_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks()
    return column


# --- granularity --------------------------------------------------------------------


def truncate(millis: pa.Array, granularity: Granularity) -> pa.Array:
    """Bucket starts (epoch ms) of ``millis`` under ``granularity``, vectorised."""
    if granularity == "NONE":
        return millis
    if granularity == "ALL":
        return pc.if_else(pc.is_valid(millis), MIN_MILLIS, None)
    size = fixed_size(granularity)
    if size is not None:
        step = size // dt.timedelta(milliseconds=1)
        return pc.multiply(floor_divide(millis, step), step)
    unit = {"WEEK": "week", "MONTH": "month", "QUARTER": "quarter", "YEAR": "year"}[
        str(granularity)
    ]
    stamps = pc.cast(millis, pa.timestamp("ms", "UTC"))
    floored = pc.floor_temporal(stamps, multiple=1, unit=unit, week_starts_monday=True)
    return pc.cast(floored, pa.int64())


def floor_divide(values: pa.Array, divisor: int) -> pa.Array:
    """Integer floor division (Arrow's rounds towards zero), right before the epoch."""
    quotient = pc.divide(values, divisor)
    below = pc.less(pc.subtract(values, pc.multiply(quotient, divisor)), 0)
    return pc.if_else(below, pc.subtract(quotient, 1), quotient)


def from_millis(millis: int) -> dt.datetime:
    return EPOCH + dt.timedelta(milliseconds=millis)


def bucket_interval(granularity: Granularity, start_millis: int) -> Interval:
    return bucket(granularity, from_millis(start_millis))


def bucket_starts(
    granularity: Granularity, intervals: tuple[Interval, ...]
) -> list[int]:
    """Starts of every ``granularity`` bucket overlapping one of ``intervals``
    (Druid's bucketIntervals: rows of those buckets are kept)."""
    starts: set[int] = set()
    for interval in intervals:
        when = interval.start
        while when < interval.end:
            chunk = bucket(granularity, when)
            starts.add(to_millis(chunk.start))
            if chunk.end <= when:
                break
            when = chunk.end
    return sorted(starts)
