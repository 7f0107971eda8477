"""Segments: rows bucketed into time chunks by ``segmentGranularity``, each chunk cut
into partitions of at most ``maxRowsPerSegment`` rows, each partition one Parquet file
in deep storage, described as Druid's ``DataSegment``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from overlord.ingest.deep_storage import DeepStorage
from overlord.ingest.rows import MULTI_VALUE_SEPARATOR, TIME
from overlord.ingest.spec import Granularity
from overlord.ingest.timestamps import bucket_interval, truncate
from overlord.segments import DataSegment, ShardSpec
from overlord.timeutil import Interval, format_druid

ROW_GROUP_ROWS = 65_536
# Druid's IndexIO.CURRENT_VERSION_ID.
BINARY_VERSION = 9


@dataclass(frozen=True)
class Allocation:
    """Where a new partition goes: its version and partition number, and the core
    partition count of its shardSpec (None: the number of partitions this run
    writes in the chunk, as for a fresh version)."""

    version: str
    partition_num: int
    core_partitions: int | None = None


# Called for each new partition: its time chunk and its index within the chunk in
# this run. The default gives one version and numbers 0, 1, 2…; an appending task
# asks ``segmentAllocate`` instead.
Allocator = Callable[[Interval, int], Allocation]


def fixed_version(version: str) -> Allocator:
    def allocate(interval: Interval, index: int) -> Allocation:
        return Allocation(version, index)

    return allocate


@dataclass(frozen=True)
class SegmentDescription:
    data_source: str
    interval: Interval
    version: str
    load_spec: dict[str, Any]
    dimensions: tuple[str, ...]
    metrics: tuple[str, ...]
    partition_num: int
    partitions: int
    size: int
    num_rows: int
    binary_version: int = BINARY_VERSION

    def to_data_segment(self) -> DataSegment:
        """Druid's DataSegment (the row count is no part of it)."""
        return DataSegment(
            datasource=self.data_source,
            interval=self.interval,
            version=self.version,
            load_spec=self.load_spec,
            dimensions=self.dimensions,
            metrics=self.metrics,
            shard_spec=ShardSpec.numbered(self.partition_num, self.partitions),
            binary_version=self.binary_version,
            size=self.size,
        )

    def to_json(self) -> dict[str, Any]:
        """Druid's DataSegment JSON (``dimensions``/``metrics`` comma-joined)."""
        return self.to_data_segment().to_json()


def storage_dir(
    data_source: str, interval: Interval, version: str, partition: int
) -> str:
    """Druid's DataSegmentPusher.getDefaultStorageDir layout."""
    return "/".join(
        [
            data_source,
            f"{format_druid(interval.start)}_{format_druid(interval.end)}",
            version,
            str(partition),
        ]
    )


@dataclass
class _Open:
    interval: Interval
    allocation: Allocation
    relative: str
    writer: pq.ParquetWriter
    rows: int = 0
    group_rows: int = ROW_GROUP_ROWS
    pending: list[pa.Table] = field(default_factory=list)
    pending_rows: int = 0

    def add(self, rows: pa.Table) -> None:
        """Buffer rows so that row groups are not tiny (the merge emits small
        tables when spills interleave)."""
        self.pending.append(rows)
        self.pending_rows += rows.num_rows
        self.rows += rows.num_rows
        if self.pending_rows >= self.group_rows:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.concat_tables(self.pending))
            self.pending, self.pending_rows = [], 0


class SegmentWriter:
    """Writes time-ordered row tables into segment files."""

    def __init__(
        self,
        *,
        data_source: str,
        storage: DeepStorage,
        allocate: Allocator,
        segment_granularity: Granularity,
        row_schema: pa.Schema,
        metrics: tuple[str, ...],
        multi_value: set[str],
        max_rows_per_segment: int,
        row_group_rows: int = ROW_GROUP_ROWS,
    ) -> None:
        """``row_group_rows``: rows buffered per Parquet row group (memory)."""
        self.data_source = data_source
        self.storage = storage
        self.allocate = allocate
        self.granularity = segment_granularity
        self.row_schema = row_schema
        self.metrics = metrics
        self.dimensions = tuple(
            name for name in row_schema.names if name != TIME and name not in metrics
        )
        self.multi_value = multi_value
        self.max_rows = max(1, max_rows_per_segment)
        self.row_group_rows = max(1, row_group_rows)
        self.file_schema = pa.schema(
            [
                pa.field(TIME, pa.timestamp("ms", "UTC"), nullable=False)
                if f.name == TIME
                else pa.field(f.name, pa.list_(pa.string()))
                if f.name in multi_value
                else f
                for f in row_schema
            ]
        )
        self.segments: list[SegmentDescription] = []
        self._chunk_start: int | None = None
        self._chunk_index = 0
        self._chunk_done: list[tuple[_Open, int]] = []
        self._current: _Open | None = None
        self._written: list[str] = []

    def write(self, rows: pa.Table) -> None:
        """Append rows sorted by time, later than every row written before."""
        if rows.num_rows == 0:
            return
        starts = truncate(_array(rows.column(TIME)), self.granularity)
        offset = 0
        for start in pc.unique(starts).to_pylist():
            length = _count(pc.equal(starts, start))
            self._append(start, rows.slice(offset, length))
            offset += length

    def _append(self, start: int, rows: pa.Table) -> None:
        if start != self._chunk_start:
            if self._chunk_start is not None and start < self._chunk_start:
                # A closed chunk cannot take rows again: its files are final.
                raise ValueError("rows must arrive in time order")
            self._close_chunk()
            self._chunk_start = start
            self._chunk_index = 0
        while rows.num_rows:
            current = self._current
            if current is None or current.rows >= self.max_rows:
                current = self._open()
            take = min(self.max_rows - current.rows, rows.num_rows)
            current.add(self._file_rows(rows.slice(0, take)))
            rows = rows.slice(take)

    def _open(self) -> _Open:
        if self._current is not None:
            self._finish_file(self._current)
        assert self._chunk_start is not None
        interval = bucket_interval(self.granularity, self._chunk_start)
        allocation = self.allocate(interval, self._chunk_index)
        self._chunk_index += 1
        relative = (
            storage_dir(
                self.data_source, interval, allocation.version, allocation.partition_num
            )
            + "/index.parquet"
        )
        path = self.storage.prepare(relative)
        self._written.append(relative)
        writer = pq.ParquetWriter(
            path, self.file_schema, filesystem=self.storage.filesystem
        )
        self._current = _Open(
            interval, allocation, relative, writer, group_rows=self.row_group_rows
        )
        return self._current

    def _finish_file(self, current: _Open) -> None:
        current.flush()
        current.writer.close()
        self._chunk_done.append((current, self.storage.size(current.relative)))
        self._current = None

    def _close_chunk(self) -> None:
        if self._current is not None:
            self._finish_file(self._current)
        written = len(self._chunk_done)
        for item, size in self._chunk_done:
            core = item.allocation.core_partitions
            self.segments.append(
                SegmentDescription(
                    data_source=self.data_source,
                    interval=item.interval,
                    version=item.allocation.version,
                    load_spec=self.storage.load_spec(item.relative),
                    dimensions=self.dimensions,
                    metrics=self.metrics,
                    partition_num=item.allocation.partition_num,
                    partitions=written if core is None else core,
                    size=size,
                    num_rows=item.rows,
                )
            )
        self._chunk_done = []

    def _file_rows(self, rows: pa.Table) -> pa.Table:
        arrays = []
        for name in self.row_schema.names:
            column = rows.column(name)
            if name == TIME:
                column = pc.cast(column, pa.timestamp("ms", "UTC"))
            elif name in self.multi_value:
                column = pc.split_pattern(column, pattern=MULTI_VALUE_SEPARATOR)
            arrays.append(column)
        return pa.Table.from_arrays(arrays, schema=self.file_schema)

    def close(self) -> list[SegmentDescription]:
        """Finish the last file; the descriptions of every segment written."""
        self._close_chunk()
        return self.segments

    def abort(self) -> None:
        """Remove every file written so far (the ingestion failed)."""
        if self._current is not None:
            self._current.writer.close()
            self._current = None
        for relative in self._written:
            try:
                self.storage.delete(relative)
            except OSError:
                continue
        self._written = []


def _array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks()
    return column


def _count(mask: pa.Array) -> int:
    return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)
