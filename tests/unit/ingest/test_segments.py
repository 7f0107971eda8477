"""Segment files: time chunks, partitions, Parquet contents, DataSegment JSON."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from overlord.ingest.deep_storage import DeepStorage, delete_segment_file
from overlord.ingest.rows import MULTI_VALUE_SEPARATOR
from overlord.ingest.segments import Allocation, SegmentWriter, fixed_version
from overlord.ingest.stats import IngestError
from overlord.timeutil import Interval, parse_druid_datetime

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
DAY = 86_400_000
ROW_SCHEMA = pa.schema(
    [
        ("__time", pa.int64()),
        ("page", pa.string()),
        ("tags", pa.string()),
        ("count", pa.int64()),
    ]
)


def rows(times: list[int]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "__time": t,
                "page": f"p{i}",
                "tags": f"a{MULTI_VALUE_SEPARATOR}b" if i == 0 else "c",
                "count": 1,
            }
            for i, t in enumerate(times)
        ],
        schema=ROW_SCHEMA,
    )


def writer(location: str, max_rows: int = 100, **overrides: object) -> SegmentWriter:
    values: dict[str, object] = {
        "data_source": "wiki",
        "storage": DeepStorage(location),
        "allocate": fixed_version("v1"),
        "segment_granularity": "DAY",
        "row_schema": ROW_SCHEMA,
        "metrics": ("count",),
        "multi_value": {"tags"},
        "max_rows_per_segment": max_rows,
    }
    values.update(overrides)
    return SegmentWriter(**values)  # type: ignore[arg-type]


def test_chunks_and_partitions(tmp_path: Path) -> None:
    out = writer(str(tmp_path), max_rows=2)
    out.write(rows([T0, T0 + 1, T0 + 2]))
    out.write(rows([T0 + 3, T0 + DAY + 5]))
    segments = out.close()
    day1 = "2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z"
    assert [s.to_json() | {"size": 0} for s in segments] == [
        {
            "dataSource": "wiki",
            "interval": "2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z",
            "version": "v1",
            "loadSpec": {
                "type": "local",
                "path": f"{tmp_path}/wiki/{day1}/v1/{n}/index.parquet",
            },
            "dimensions": "page,tags",
            "metrics": "count",
            "shardSpec": {"type": "numbered", "partitionNum": n, "partitions": 2},
            "binaryVersion": 9,
            "size": 0,
        }
        for n in (0, 1)
    ] + [
        {
            "dataSource": "wiki",
            "interval": "2024-01-02T00:00:00.000Z/2024-01-03T00:00:00.000Z",
            "version": "v1",
            "loadSpec": {
                "type": "local",
                "path": f"{tmp_path}/wiki/2024-01-02T00:00:00.000Z_2024-01-03T00:00:00.000Z/v1/0/index.parquet",
            },
            "dimensions": "page,tags",
            "metrics": "count",
            "shardSpec": {"type": "numbered", "partitionNum": 0, "partitions": 1},
            "binaryVersion": 9,
            "size": 0,
        }
    ]
    assert [s.num_rows for s in segments] == [2, 2, 1]
    for segment in segments:
        path = Path(segment.load_spec["path"])
        assert segment.size == path.stat().st_size > 0
    first = pq.read_table(segments[0].load_spec["path"])
    assert first.schema.field("__time").type == pa.timestamp("ms", "UTC")
    assert first.to_pylist() == [
        {
            "__time": parse_druid_datetime("2024-01-01"),
            "page": "p0",
            "tags": ["a", "b"],
            "count": 1,
        },
        {
            "__time": parse_druid_datetime("2024-01-01T00:00:00.001Z"),
            "page": "p1",
            "tags": ["c"],
            "count": 1,
        },
    ]


def test_allocator_decides_version_and_numbers(tmp_path: Path) -> None:
    calls: list[tuple[Interval, int]] = []

    def allocate(interval: Interval, index: int) -> Allocation:
        calls.append((interval, index))
        return Allocation("v0", 3 + index, core_partitions=3)

    out = writer(str(tmp_path), max_rows=1, allocate=allocate)
    out.write(rows([T0, T0 + 1]))
    segments = out.close()
    assert [(s.version, s.partition_num, s.partitions) for s in segments] == [
        ("v0", 3, 3),
        ("v0", 4, 3),
    ]
    assert [index for _, index in calls] == [0, 1]
    assert segments[1].load_spec["path"].endswith("/v0/4/index.parquet")


def test_filesystem_uri_and_delete(tmp_path: Path) -> None:
    out = writer(f"file://{tmp_path}/deep")
    out.write(rows([T0]))
    (segment,) = out.close()
    uri = f"file://{tmp_path}/deep/wiki/2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z/v1/0/index.parquet"
    assert segment.load_spec == {"type": "local", "path": uri}
    assert pq.read_table(uri.removeprefix("file://")).num_rows == 1
    delete_segment_file(segment.load_spec)
    assert not Path(uri.removeprefix("file://")).exists()
    delete_segment_file(segment.load_spec)  # already gone: fine


def test_abort_removes_files(tmp_path: Path) -> None:
    out = writer(str(tmp_path), max_rows=1)
    out.write(rows([T0, T0 + DAY]))
    out.abort()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_unknown_uri_scheme_refused() -> None:
    with pytest.raises(
        IngestError, match=r"^Cannot use deep storage \[nosuchscheme://bucket/x\]: "
    ):
        DeepStorage("nosuchscheme://bucket/x")


def test_rows_must_come_in_time_order(tmp_path: Path) -> None:
    out = writer(str(tmp_path))
    out.write(rows([T0 + DAY]))
    with pytest.raises(ValueError, match=r"^rows must arrive in time order$"):
        out.write(rows([T0]))
