"""Druid's segment id text: the one builder (``SegmentId``) and its parser, with the
cases of Druid's ``SegmentIdTest`` (partition 0 vs n, ``_`` in datasources and
versions, ambiguous trailing numbers)."""

from __future__ import annotations

import pytest

from overlord.segments import (
    DataSegment,
    SegmentId,
    SegmentIdWithShardSpec,
    ShardKind,
    ShardSpec,
)
from overlord.timeutil import parse_interval

DAY = parse_interval("2015-01-02/2015-01-03")
START_END = "2015-01-02T00:00:00.000Z_2015-01-03T00:00:00.000Z"


@pytest.mark.parametrize(
    ("segment_id", "text"),
    [
        pytest.param(SegmentId("wiki", DAY, "v1"), f"wiki_{START_END}_v1", id="p0"),
        pytest.param(
            SegmentId("wiki", DAY, "v1", 3), f"wiki_{START_END}_v1_3", id="p3"
        ),
        pytest.param(
            SegmentId("data_source", DAY, "ver_0", 1),
            f"data_source_{START_END}_ver_0_1",
            id="underscores",
        ),
        pytest.param(
            SegmentId("ds", DAY, "2015-01-02T10:11:12.123Z", 0),
            f"ds_{START_END}_2015-01-02T10:11:12.123Z",
            id="time-version",
        ),
    ],
)
def test_format_and_parse_round_trip(segment_id: SegmentId, text: str) -> None:
    assert str(segment_id) == text
    assert SegmentId.try_parse(segment_id.datasource, text) == segment_id
    assert str(SegmentId.try_parse(segment_id.datasource, text)) == text


def test_a_trailing_positive_number_reads_first_as_the_partition() -> None:
    text = f"ds_{START_END}_ver_5"

    assert SegmentId.possible_parsings("ds", text) == [
        SegmentId("ds", DAY, "ver", 5),
        SegmentId("ds", DAY, "ver_5", 0),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # "_0" is never a partition: partition 0 is written without a suffix.
        pytest.param(f"ds_{START_END}_ver_0", SegmentId("ds", DAY, "ver_0"), id="_0"),
        pytest.param(
            f"ds_{START_END}_ver_-1", SegmentId("ds", DAY, "ver_-1"), id="neg"
        ),
        pytest.param(f"ds_{START_END}_v_x", SegmentId("ds", DAY, "v_x"), id="non-int"),
        pytest.param(
            f"ds_{START_END}_v_2147483648",
            SegmentId("ds", DAY, "v_2147483648"),
            id="beyond-int",
        ),
    ],
)
def test_trails_that_are_not_partitions_stay_in_the_version(
    text: str, expected: SegmentId
) -> None:
    assert SegmentId.possible_parsings("ds", text) == [expected]


@pytest.mark.parametrize(
    ("datasource", "text"),
    [
        pytest.param("other", f"ds_{START_END}_v", id="other-datasource"),
        pytest.param("d", f"ds_{START_END}_v", id="prefix-not-at-delimiter"),
        pytest.param("ds", f"ds_{START_END}", id="no-version"),
        pytest.param("ds", "ds_x_2015-01-03T00:00:00.000Z_v", id="bad-start"),
        pytest.param(
            "ds",
            "ds_2015-01-03T00:00:00.000Z_2015-01-02T00:00:00.000Z_v",
            id="end-before-start",
        ),
        pytest.param(
            "ds",
            "ds_2015-01-02T00:00:00.000Z_2015-01-02T00:00:00.000Z_v",
            id="empty-interval",
        ),
        pytest.param("", f"_{START_END}_v", id="empty-datasource"),
    ],
)
def test_unparseable_ids(datasource: str, text: str) -> None:
    assert SegmentId.try_parse(datasource, text) is None


def test_all_possible_parsings_try_each_datasource_cut() -> None:
    text = f"a_b_{START_END}_v_2"

    assert SegmentId.all_possible_parsings(text) == [
        SegmentId("a_b", DAY, "v", 2),
        SegmentId("a_b", DAY, "v_2", 0),
    ]


def test_allocated_segment_and_data_segment_share_the_id() -> None:
    allocated = SegmentIdWithShardSpec(
        "wiki", DAY, "v1", ShardSpec(ShardKind.NUMBERED, 2, 0)
    )
    segment = DataSegment.from_json(
        {
            "dataSource": "wiki",
            "interval": str(DAY),
            "version": "v1",
            "shardSpec": {"type": "numbered", "partitionNum": 2, "partitions": 0},
        }
    )

    assert str(allocated.id) == str(segment.id) == f"wiki_{START_END}_v1_2"
    assert allocated.to_json() == {
        "dataSource": "wiki",
        "interval": "2015-01-02T00:00:00.000Z/2015-01-03T00:00:00.000Z",
        "version": "v1",
        "shardSpec": {"type": "numbered", "partitionNum": 2, "partitions": 0},
    }


def test_data_segment_json_in_druids_field_order() -> None:
    segment = DataSegment(
        datasource="wiki",
        interval=DAY,
        version="v1",
        load_spec={"type": "local", "path": "wiki/index.zip"},
        dimensions=("page", "user"),
        metrics=("count",),
        shard_spec=ShardSpec(ShardKind.LINEAR, 1),
        binary_version=9,
        size=10,
        extra=(("lastCompactionState", {"x": 1}),),
    )

    document = segment.to_json(identifier=True)

    assert list(document.items()) == [
        ("dataSource", "wiki"),
        ("interval", "2015-01-02T00:00:00.000Z/2015-01-03T00:00:00.000Z"),
        ("version", "v1"),
        ("loadSpec", {"type": "local", "path": "wiki/index.zip"}),
        ("dimensions", "page,user"),
        ("metrics", "count"),
        ("shardSpec", {"type": "linear", "partitionNum": 1}),
        ("lastCompactionState", {"x": 1}),
        ("binaryVersion", 9),
        ("size", 10),
        ("identifier", f"wiki_{START_END}_v1_1"),
    ]
    assert DataSegment.from_json(document).to_json(identifier=True) == document


@pytest.mark.parametrize(
    ("shard", "document"),
    [
        pytest.param(
            ShardSpec.numbered(3, 4),
            {"type": "numbered", "partitionNum": 3, "partitions": 4},
            id="numbered",
        ),
        pytest.param(
            ShardSpec(ShardKind.LINEAR, 2),
            {"type": "linear", "partitionNum": 2},
            id="linear",
        ),
        pytest.param(ShardSpec(ShardKind.NONE), {"type": "none"}, id="none"),
    ],
)
def test_shard_spec_json(shard: ShardSpec, document: dict[str, object]) -> None:
    assert shard.to_json() == document
    assert ShardSpec.from_json(document) == shard


def test_missing_shard_spec_is_druids_default() -> None:
    assert ShardSpec.from_json(None) == ShardSpec.numbered(0, 1)
