"""Druid granularities: bucketing a timestamp in UTC (segment allocation, ingestion).

Leaf module: imports only `overlord.timeutil` and `overlord.errors`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from overlord.errors import InvalidInput
from overlord.timeutil import (
    EPOCH,
    MAX_DATETIME,
    MIN_DATETIME,
    Interval,
    InvalidTime,
    format_period,
    parse_period,
)

# A granularity: a standard name (``"DAY"``, ``"NONE"``, ``"ALL"``…, upper case) or
# the length of a fixed UTC period granularity (``{"type": "period", "period":
# "PT2H"}``). Values of this type are what ``parse_granularity`` returns.
Granularity = str | dt.timedelta

# Coarse to fine, as Druid's GranularityType lists the standard ones.
STANDARD = [
    "YEAR",
    "QUARTER",
    "MONTH",
    "WEEK",
    "DAY",
    "SIX_HOUR",
    "HOUR",
    "THIRTY_MINUTE",
    "FIFTEEN_MINUTE",
    "TEN_MINUTE",
    "FIVE_MINUTE",
    "MINUTE",
    "SECOND",
]
_FIXED = {
    "DAY": dt.timedelta(days=1),
    "SIX_HOUR": dt.timedelta(hours=6),
    "EIGHT_HOUR": dt.timedelta(hours=8),
    "HOUR": dt.timedelta(hours=1),
    "THIRTY_MINUTE": dt.timedelta(minutes=30),
    "FIFTEEN_MINUTE": dt.timedelta(minutes=15),
    "TEN_MINUTE": dt.timedelta(minutes=10),
    "FIVE_MINUTE": dt.timedelta(minutes=5),
    "MINUTE": dt.timedelta(minutes=1),
    "SECOND": dt.timedelta(seconds=1),
}


def parse_granularity(value: Any) -> Granularity:
    """A standard name (``"DAY"``, ``"none"``…) or a fixed UTC period granularity.

    Raises:
        InvalidInput: unknown or calendar-length period granularity.
    """
    if isinstance(value, str):
        name = value.upper()
        if name in ("NONE", "ALL") or name in STANDARD or name in _FIXED:
            return name
        raise InvalidInput(f"Unknown granularity[{value}]")
    if isinstance(value, dict):
        kind = value.get("type")
        if kind in ("none", "all"):
            return str(kind).upper()
        if kind == "period" and isinstance(value.get("period"), str):
            try:
                return parse_period(value["period"])
            except InvalidTime:
                calendar = _calendar_name(value["period"])
                if calendar:
                    return calendar
                raise InvalidInput(f"Unsupported period granularity[{value}]") from None
        if kind == "duration" and isinstance(value.get("duration"), int):
            return dt.timedelta(milliseconds=value["duration"])
    raise InvalidInput(f"Unknown granularity[{value}]")


def _calendar_name(period: str) -> str | None:
    return {"P1Y": "YEAR", "P3M": "QUARTER", "P1M": "MONTH"}.get(period.upper())


def bucket(granularity: Granularity, when: dt.datetime) -> Interval:
    """The granularity bucket containing ``when`` (UTC)."""
    if isinstance(granularity, dt.timedelta):
        return _fixed_bucket(granularity, when)
    if granularity == "NONE":
        start = when.replace(microsecond=when.microsecond // 1000 * 1000)
        return Interval(start, start + dt.timedelta(milliseconds=1))
    if granularity == "ALL":
        return Interval(MIN_DATETIME, MAX_DATETIME)
    if granularity in _FIXED:
        return _fixed_bucket(_FIXED[granularity], when)
    day = when.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity == "WEEK":
        start = day - dt.timedelta(days=day.weekday())
        return Interval(start, start + dt.timedelta(days=7))
    months = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}[granularity]
    first_month = (day.month - 1) // months * months + 1
    start = day.replace(month=first_month, day=1)
    end_month = first_month - 1 + months
    end = start.replace(year=start.year + end_month // 12, month=end_month % 12 + 1)
    return Interval(start, end)


def _fixed_bucket(size: dt.timedelta, when: dt.datetime) -> Interval:
    offset = (when - EPOCH) // size
    start = EPOCH + offset * size
    return Interval(start, start + size)


def finer_or_equal(preferred: Granularity) -> list[Granularity]:
    """The preferred granularity, then each finer standard one (WEEK only when it
    is the preferred one), as Druid's segment allocation tries them."""
    if not isinstance(preferred, str) or preferred not in STANDARD:
        return [preferred]
    index = STANDARD.index(preferred)
    finer: list[Granularity] = [preferred]
    finer += [g for g in STANDARD[index + 1 :] if g != "WEEK"]
    return finer


def fixed_size(granularity: Granularity) -> dt.timedelta | None:
    """The length of a granularity whose buckets all have one length from the epoch
    (``HOUR``, ``PT2H``…); None for NONE, ALL and calendar ones (WEEK and longer)."""
    if isinstance(granularity, dt.timedelta):
        return granularity
    return _FIXED.get(granularity)


def granularity_json(granularity: Granularity) -> Any:
    """Druid's Granularity JSON: standard period granularities as their upper-case
    name (``PeriodGranularity.serialize``), ``none``/``all`` by type, other periods
    as ``{"type": "period"…}`` in UTC."""
    if isinstance(granularity, dt.timedelta):
        return {
            "type": "period",
            "period": format_period(granularity),
            "timeZone": "UTC",
            "origin": None,
        }
    if granularity in ("NONE", "ALL"):
        return {"type": granularity.lower()}
    return granularity
