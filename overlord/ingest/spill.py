"""Bounded memory: rows wait in memory until ``maxRowsInMemory`` or
``maxBytesInMemory``, then (rolled up) are spilled to a time-sorted Parquet file, as
Druid's appenderator persists its IncrementalIndex. At the end every spill and the
rows still in memory are merged in time order, re-rolled up, and handed on.

The merge reads spills row group by row group in order of their first timestamp;
rows earlier than the next unread row group's first timestamp can no longer meet
another row of theirs, so they are combined and emitted and only the rest stays in
memory. More than ``FAN_IN`` spills are first merged into fewer, larger ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from overlord.ingest.rows import TIME, time_sorted

FAN_IN = 32
MAX_GROUP_ROWS = 65_536
MIN_GROUP_ROWS = 1_024

Finish = Callable[[pa.Table], pa.Table]
Emit = Callable[[pa.Table], None]


@dataclass(frozen=True)
class _Piece:
    """A time-sorted run of rows: a row group of a spill file or a table in memory."""

    first: int
    rows: int
    path: str | None = None
    group: int = 0
    table: pa.Table | None = None

    def load(self, files: dict[str, pq.ParquetFile]) -> pa.Table:
        if self.table is not None:
            return self.table
        assert self.path is not None
        if self.path not in files:
            files[self.path] = pq.ParquetFile(self.path)
        return files[self.path].read_row_group(self.group)


class RowBuffer:
    """Collects row tables; spills them when a memory limit is reached."""

    def __init__(
        self,
        *,
        work_dir: str,
        max_rows: int,
        max_bytes: int | None,
        roll: Finish | None,
    ) -> None:
        self.work_dir = work_dir
        self.max_rows = max(1, max_rows)
        self.max_bytes = max_bytes
        self.roll = roll
        self.group_rows = max(MIN_GROUP_ROWS, min(MAX_GROUP_ROWS, self.max_rows // 8))
        self.pending: list[pa.Table] = []
        self.rows = 0
        self.bytes = 0
        self.runs: list[list[_Piece]] = []
        self.spills = 0

    def add(self, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        self.pending.append(rows)
        self.rows += rows.num_rows
        self.bytes += rows.nbytes
        if self._full(self.rows, self.bytes):
            table = self._take()
            if self.roll is not None:
                table = self.roll(table)
                # Rolled up well below the limits: keep it, as Druid counts the
                # rows of its rolled-up index.
                if not self._full(2 * table.num_rows, 2 * table.nbytes):
                    self.pending, self.rows, self.bytes = (
                        [table],
                        table.num_rows,
                        table.nbytes,
                    )
                    return
            self._spill(table)

    def _full(self, rows: int, size: int) -> bool:
        return rows >= self.max_rows or (
            self.max_bytes is not None and size >= self.max_bytes
        )

    def _take(self) -> pa.Table:
        table = _concat(self.pending)
        self.pending, self.rows, self.bytes = [], 0, 0
        return table

    def _spill(self, table: pa.Table) -> None:
        self.runs.append(self._write_run(_by_time(table)))

    def _write_run(self, table: pa.Table) -> list[_Piece]:
        path = os.path.join(self.work_dir, f"spill-{self.spills:06d}.parquet")
        self.spills += 1
        writer = _RunWriter(path, table.schema, self.group_rows)
        writer.write(table)
        return writer.close()

    def merge(self, schema: pa.Schema, finish: Finish, emit: Emit) -> None:
        """Emit every row, combined by ``finish``, in time order."""
        runs = list(self.runs)
        if self.pending:
            table = _by_time(_conform(self._take(), schema))
            runs.append([_Piece(_first(table), table.num_rows, table=table)])
        self.runs = []
        while len(runs) > FAN_IN:
            merged: list[list[_Piece]] = []
            for index in range(0, len(runs), FAN_IN):
                group = runs[index : index + FAN_IN]
                path = os.path.join(self.work_dir, f"spill-{self.spills:06d}.parquet")
                self.spills += 1
                writer = _RunWriter(path, schema, self.group_rows)
                _merge([p for run in group for p in run], schema, finish, writer.write)
                merged.append(writer.close())
                _remove(group)
            runs = merged
        _merge([p for run in runs for p in run], schema, finish, emit)
        _remove(runs)


class _RunWriter:
    """Writes a time-sorted run to one file, a row group per ``group_rows`` rows."""

    def __init__(self, path: str, schema: pa.Schema, group_rows: int) -> None:
        self.path = path
        self.schema = schema
        self.group_rows = group_rows
        self.writer: pq.ParquetWriter | None = None
        self.pieces: list[_Piece] = []

    def write(self, table: pa.Table) -> None:
        table = _conform(table, self.schema)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="lz4")
        for offset in range(0, table.num_rows, self.group_rows):
            part = table.slice(offset, self.group_rows)
            self.writer.write_table(part, row_group_size=self.group_rows)
            self.pieces.append(
                _Piece(
                    _first(part), part.num_rows, path=self.path, group=len(self.pieces)
                )
            )

    def close(self) -> list[_Piece]:
        if self.writer is not None:
            self.writer.close()
        return self.pieces


def _merge(pieces: list[_Piece], schema: pa.Schema, finish: Finish, emit: Emit) -> None:
    pieces = sorted(pieces, key=lambda p: p.first)
    files: dict[str, pq.ParquetFile] = {}
    try:
        _merge_sorted(pieces, schema, finish, emit, files)
    finally:
        for file in files.values():
            file.close()


def _merge_sorted(
    pieces: list[_Piece],
    schema: pa.Schema,
    finish: Finish,
    emit: Emit,
    files: dict[str, pq.ParquetFile],
) -> None:
    waiting: pa.Table | None = None
    for index, piece in enumerate(pieces):
        table = _conform(piece.load(files), schema)
        waiting = table if waiting is None else _concat([waiting, table])
        if index + 1 == len(pieces):
            emit(finish(waiting))
            return
        boundary = pieces[index + 1].first
        if _first(waiting) >= boundary:
            continue
        early = pc.less(waiting.column(TIME), boundary)
        ready = waiting.filter(early)
        waiting = waiting.filter(pc.invert(early))
        emit(finish(ready))


def _by_time(table: pa.Table) -> pa.Table:
    if time_sorted(table):
        return table
    return table.take(pc.sort_indices(table, sort_keys=[(TIME, "ascending")]))


def _first(table: pa.Table) -> int:
    return int(pc.min(table.column(TIME)).as_py())


def _concat(tables: list[pa.Table]) -> pa.Table:
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="default")


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Rows read before a dimension was discovered get it as nulls."""
    if table.schema.equals(schema):
        return table
    arrays = [
        table.column(f.name)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _remove(runs: list[list[_Piece]]) -> None:
    for path in {p.path for run in runs for p in run if p.path is not None}:
        os.remove(path)
