"""Spills: written when full, merged in time order, re-rolled up, removed."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from overlord.ingest.rows import combine, sort_rows
from overlord.ingest.spec import Aggregator
from overlord.ingest.spill import RowBuffer

COUNT = (Aggregator("count", "count"),)
SMALL = pa.schema([("__time", pa.int64()), ("k", pa.string()), ("count", pa.int64())])
WIDE = pa.schema(
    [
        ("__time", pa.int64()),
        ("k", pa.string()),
        ("count", pa.int64()),
        ("later", pa.string()),
    ]
)


def table(rows: list[tuple[int, str]], schema: pa.Schema = SMALL) -> pa.Table:
    return pa.Table.from_pylist(
        [{"__time": t, "k": k, "count": 1} for t, k in rows], schema=schema
    )


def finish(rows: pa.Table) -> pa.Table:
    return sort_rows(combine(rows, ["k", "later"], COUNT), ["k", "later"], rollup=True)


def test_spills_merge_in_time_order_and_roll_up(tmp_path: Path) -> None:
    buffer = RowBuffer(work_dir=str(tmp_path), max_rows=4, max_bytes=None, roll=None)
    buffer.add(table([(5, "a"), (1, "b"), (3, "a"), (1, "b")]))  # full: spilled
    assert buffer.spills == 1
    assert len(list(tmp_path.glob("spill-*.parquet"))) == 1
    buffer.add(table([(3, "a"), (9, "c"), (1, "b"), (2, "a")]))  # spilled too
    buffer.add(
        pa.Table.from_pylist(
            [{"__time": 1, "k": "b", "count": 1, "later": "x"}], schema=WIDE
        )
    )
    emitted: list[list[dict[str, object]]] = []
    buffer.merge(WIDE, finish, lambda rows: emitted.append(rows.to_pylist()))
    flat = [row for rows in emitted for row in rows]
    assert flat == [
        {"__time": 1, "k": "b", "count": 3, "later": None},
        {"__time": 1, "k": "b", "count": 1, "later": "x"},
        {"__time": 2, "k": "a", "count": 1, "later": None},
        {"__time": 3, "k": "a", "count": 2, "later": None},
        {"__time": 5, "k": "a", "count": 1, "later": None},
        {"__time": 9, "k": "c", "count": 1, "later": None},
    ]
    assert list(tmp_path.iterdir()) == []


def test_rollup_that_fits_stays_in_memory(tmp_path: Path) -> None:
    def roll(rows: pa.Table) -> pa.Table:
        return combine(rows, ["k"], COUNT)

    buffer = RowBuffer(work_dir=str(tmp_path), max_rows=4, max_bytes=None, roll=roll)
    buffer.add(table([(1, "a")] * 4))
    buffer.add(table([(1, "a")] * 4))
    assert buffer.spills == 0
    assert buffer.rows == 1
    emitted: list[dict[str, object]] = []
    buffer.merge(
        SMALL,
        lambda rows: combine(rows, ["k"], COUNT),
        lambda rows: emitted.extend(rows.to_pylist()),
    )
    assert emitted == [{"__time": 1, "k": "a", "count": 8}]


def test_byte_limit_spills(tmp_path: Path) -> None:
    buffer = RowBuffer(work_dir=str(tmp_path), max_rows=1000, max_bytes=1, roll=None)
    buffer.add(table([(1, "a")]))
    assert buffer.spills == 1
