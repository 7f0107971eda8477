"""json / csv / tsv → Arrow tables; bad rows found and reported as Druid does."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest

from overlord.ingest.formats import read_blocks
from overlord.ingest.spec import DelimitedFormat, InputFormat, JsonFormat
from overlord.ingest.stats import IngestError, ParseProblem


def read(
    text: str, fmt: InputFormat, block_size: int = 1 << 20
) -> tuple[list[dict[str, object]], list[ParseProblem], int]:
    rows: list[dict[str, object]] = []
    bad: list[ParseProblem] = []
    size = 0
    for block in read_blocks(io.BytesIO(text.encode()), fmt, block_size, set()):
        for table in block.tables:
            rows += table.to_pylist()
        bad += block.bad
        size += block.nbytes
    return rows, bad, size


def test_json_lines() -> None:
    text = '{"t":"2024-01-01T00:00:00Z","n":1,"tags":["a","b"]}\n\n{"t":"x","n":2.5}\n'
    rows, bad, size = read(text, JsonFormat())
    assert rows == [
        {"t": "2024-01-01T00:00:00Z", "n": 1.0, "tags": ["a", "b"]},
        {"t": "x", "n": 2.5, "tags": None},
    ]
    assert (bad, size) == ([], len(text))


def test_json_keeps_iso_text_as_text_in_every_block() -> None:
    lines = [f'{{"t":"2024-01-01T00:00:{i:02d}Z","i":{i}}}\n' for i in range(40)]
    rows, bad, _ = read("".join(lines), JsonFormat(), block_size=100)
    assert [r["t"] for r in rows] == [f"2024-01-01T00:00:{i:02d}Z" for i in range(40)]
    assert bad == []


def test_json_bad_lines_are_reported_and_the_rest_loads() -> None:
    good = [f'{{"i":{i}}}\n' for i in range(100)]
    lines = [*good[:50], "{broken\n", "[1,2]\n", *good[50:], '"text"']
    rows, bad, size = read("".join(lines), JsonFormat())
    assert [r["i"] for r in rows] == list(range(100))
    assert bad == [
        ParseProblem("{broken", ("Unable to parse row [{broken]",)),
        ParseProblem("[1,2]", ("Unable to parse row [[1,2]]",)),
        ParseProblem('"text"', ('Unable to parse row ["text"]',)),
    ]
    assert size == len("".join(lines))


def test_json_fields_changing_type_still_load() -> None:
    lines = [f'{{"v":{i}}}\n' for i in range(50)] + ['{"v":"word"}\n']
    rows, bad, _ = read("".join(lines), JsonFormat())
    assert bad == []
    assert sorted(str(r["v"]) for r in rows) == sorted([*map(str, range(50)), "word"])


def test_csv_with_header_and_skipped_rows() -> None:
    text = "a comment line\nts,page,added\n2024-01-01,Main,3\n2024-01-02,,x\n"
    fmt = DelimitedFormat(kind="csv", find_columns_from_header=True, skip_header_rows=1)
    rows, bad, size = read(text, fmt)
    assert rows == [
        {"ts": "2024-01-01", "page": "Main", "added": "3"},
        {"ts": "2024-01-02", "page": None, "added": "x"},
    ]
    assert (bad, size) == ([], len(text))


def test_csv_quotes_and_list_delimiter() -> None:
    fmt = DelimitedFormat(
        kind="csv", columns=("ts", "tags", "note"), list_delimiter="|"
    )
    rows, _, _ = read('1,a|b,"x, y"\n2,c,"say ""hi"""\n', fmt)
    assert rows == [
        {"ts": "1", "tags": ["a", "b"], "note": "x, y"},
        {"ts": "2", "tags": ["c"], "note": 'say "hi"'},
    ]


def test_csv_rows_of_the_wrong_width_zip_partially() -> None:
    fmt = DelimitedFormat(kind="csv", columns=("a", "b", "c"))
    rows, bad, _ = read("1,2,3\n4\n5,6,7,8\n", fmt)
    assert rows == [
        {"a": "1", "b": "2", "c": "3"},
        {"a": "4", "b": None, "c": None},
        {"a": "5", "b": "6", "c": "7"},
    ]
    assert bad == []


def test_tsv_with_columns_keeps_quotes() -> None:
    fmt = DelimitedFormat(kind="tsv", columns=("ts", "page"))
    rows, _, _ = read('2024-01-01\t"Main"\n2024-01-02\tTalk\n', fmt)
    assert rows == [
        {"ts": "2024-01-01", "page": '"Main"'},
        {"ts": "2024-01-02", "page": "Talk"},
    ]


def test_tsv_custom_delimiter() -> None:
    fmt = DelimitedFormat(kind="tsv", columns=("a", "b"), delimiter="|")
    rows, _, _ = read("1|2\n", fmt)
    assert rows == [{"a": "1", "b": "2"}]


def test_csv_blocks_across_many_lines() -> None:
    fmt = DelimitedFormat(kind="csv", find_columns_from_header=True)
    text = "n\n" + "".join(f"{i}\n" for i in range(500))
    rows, _, size = read(text, fmt, block_size=64)
    assert [r["n"] for r in rows] == [str(i) for i in range(500)]
    assert size == len(text)
    assert pa.types.is_string(pa.array([r["n"] for r in rows]).type)


def test_duplicate_header_columns_refused() -> None:
    fmt = DelimitedFormat(kind="csv", find_columns_from_header=True)
    with pytest.raises(
        IngestError, match=r"^Duplicate column entries found : \[a, b\]$"
    ):
        read("a,b,a,b,c\n1,2,3,4,5\n", fmt)


def test_json_fields_mixing_lists_and_values() -> None:
    text = '{"tags":"a","n":1}\n{"tags":["b","c"],"n":true}\n{"tags":null,"n":1.5}\n'
    rows, bad, _ = read(text, JsonFormat())
    assert rows == [
        {"tags": ["a"], "n": "1"},
        {"tags": ["b", "c"], "n": "true"},
        {"tags": None, "n": "1.5"},
    ]
    assert bad == []


def test_json_only_text_reads_one_field_else_the_whole_block() -> None:
    def read_only(text: str) -> tuple[list[dict[str, object]], list[str]]:
        blocks = list(
            read_blocks(
                io.BytesIO(text.encode()), JsonFormat(), 1 << 20, set(), only_text="t"
            )
        )
        rows = [row for b in blocks for t in b.tables for row in t.to_pylist()]
        return rows, [p.input or "" for b in blocks for p in b.bad]

    text = '{"t":"2024-01-01T00:00:00Z","n":1,"o":{"a":[1]}}\n{"n":2}\n'
    assert read_only(text) == ([{"t": "2024-01-01T00:00:00Z"}, {"t": None}], [])
    # Not text everywhere, or a bad line: the usual parse of every field.
    assert read_only('{"t":5,"n":1}\n') == ([{"t": 5, "n": 1}], [])
    assert read_only('{"t":"x"}\n{oops\n') == ([{"t": "x"}], ["{oops"])
