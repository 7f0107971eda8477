"""Pending-segment keys and granularity buckets (no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from overlord.services.allocation import sequence_sha1
from overlord.services.granularity import bucket, finer_or_equal, parse_granularity
from overlord.timeutil import parse_druid_datetime, parse_interval

VERSION = "2024-05-06T07:08:09.123Z"
DAY = parse_interval("2024-01-01/2024-01-02")


@pytest.mark.parametrize(
    ("previous", "skip", "expected"),
    [
        pytest.param(
            None, False, "C64C150DFB39AE17D0EC1420D921E1AB01602276", id="lineage-empty"
        ),
        pytest.param(
            "wiki_2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z_2024-05-06T07:08:09.123Z",
            False,
            "A043B1267FB35B67661EA00AAEA51F9F349BE01A",
            id="lineage-previous",
        ),
        pytest.param(
            None, True, "D52DDDF83F8E1C901307E83BFC4917C3C4F059A9", id="skip-lineage"
        ),
    ],
)
def test_sequence_sha1_matches_druids_rule(
    previous: str | None, skip: bool, expected: str
) -> None:
    assert (
        sequence_sha1(
            "index_wiki_seq_0", previous, DAY, VERSION, skip_lineage_check=skip
        )
        == expected
    )


@pytest.mark.parametrize(
    ("granularity", "expected"),
    [
        pytest.param(
            "DAY", "2024-02-29T00:00:00.000Z/2024-03-01T00:00:00.000Z", id="day"
        ),
        pytest.param(
            "hour", "2024-02-29T13:00:00.000Z/2024-02-29T14:00:00.000Z", id="hour"
        ),
        pytest.param(
            "WEEK",
            "2024-02-26T00:00:00.000Z/2024-03-04T00:00:00.000Z",
            id="week-monday",
        ),
        pytest.param(
            "MONTH", "2024-02-01T00:00:00.000Z/2024-03-01T00:00:00.000Z", id="month"
        ),
        pytest.param(
            "QUARTER", "2024-01-01T00:00:00.000Z/2024-04-01T00:00:00.000Z", id="quarter"
        ),
        pytest.param(
            "YEAR", "2024-01-01T00:00:00.000Z/2025-01-01T00:00:00.000Z", id="year"
        ),
        pytest.param(
            {"type": "none"},
            "2024-02-29T13:45:10.123Z/2024-02-29T13:45:10.124Z",
            id="none",
        ),
        pytest.param(
            {"type": "period", "period": "PT2H"},
            "2024-02-29T12:00:00.000Z/2024-02-29T14:00:00.000Z",
            id="period",
        ),
    ],
)
def test_bucket_in_utc(granularity: object, expected: str) -> None:
    when = parse_druid_datetime("2024-02-29T13:45:10.123Z")

    assert str(bucket(parse_granularity(granularity), when)) == expected


def test_candidates_are_preferred_then_finer_without_week() -> None:
    assert finer_or_equal("DAY")[:3] == ["DAY", "SIX_HOUR", "HOUR"]
    assert "WEEK" not in finer_or_equal("MONTH")
    assert finer_or_equal(dt.timedelta(hours=2)) == [dt.timedelta(hours=2)]
