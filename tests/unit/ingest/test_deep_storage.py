"""Deep storage: local directories and filesystem URIs, loadSpecs, deletion."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from overlord.ingest.deep_storage import DeepStorage, delete_segment_file
from overlord.ingest.segments import SegmentWriter, fixed_version

SCHEMA = pa.schema([("__time", pa.int64()), ("page", pa.string())])


def test_relative_directory_becomes_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    storage = DeepStorage("var/segments")
    assert storage.load_spec("ds/x/index.parquet") == {
        "type": "local",
        "path": f"{tmp_path}/var/segments/ds/x/index.parquet",
    }


def test_any_pyarrow_filesystem_uri() -> None:
    storage = DeepStorage("mock:///bucket/segments/")
    writer = SegmentWriter(
        data_source="ds",
        storage=storage,
        allocate=fixed_version("v1"),
        segment_granularity="YEAR",
        row_schema=SCHEMA,
        metrics=(),
        multi_value=set(),
        max_rows_per_segment=10,
    )
    writer.write(pa.Table.from_pylist([{"__time": 0, "page": "A"}], schema=SCHEMA))
    (segment,) = writer.close()
    relative = "ds/1970-01-01T00:00:00.000Z_1971-01-01T00:00:00.000Z/v1/0/index.parquet"
    assert segment.load_spec == {
        "type": "mock",
        "path": f"mock:///bucket/segments/{relative}",
    }
    table = pq.read_table(f"bucket/segments/{relative}", filesystem=storage.filesystem)
    assert table.column("page").to_pylist() == ["A"]
    assert segment.size == storage.size(relative) > 0


def test_delete_local_path(tmp_path: Path) -> None:
    target = tmp_path / "index.parquet"
    target.write_bytes(b"x")
    delete_segment_file({"type": "local", "path": str(target)})
    assert not target.exists()
    delete_segment_file({"type": "local", "path": str(target)})
