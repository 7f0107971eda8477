"""Input formats: a byte stream → Arrow tables, block by block.

The stream is cut into blocks of whole lines and each block is parsed by Arrow's
vectorised readers (``pyarrow.json``, ``pyarrow.csv``). Only a block Arrow refuses
takes the slow path, to find and report its bad rows as Druid does
(``Unable to parse row [<line>]``, from JsonLineReader and DelimitedValueReader)
while its good rows still load.
"""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pjson

from overlord.ingest.javatext import java_double
from overlord.ingest.spec import DelimitedFormat, InputFormat, JsonFormat
from overlord.ingest.stats import IngestError, ParseProblem

DEFAULT_BLOCK_SIZE = 16 * 1024 * 1024
_SAMPLE_BYTES = 256 * 1024


@dataclass
class Block:
    """Rows parsed from one block of input: zero or more tables (a block whose parts
    disagree on a column's type yields one table per part), the bad rows, and the
    input bytes the block consumed."""

    tables: list[pa.Table] = field(default_factory=list)
    bad: list[ParseProblem] = field(default_factory=list)
    nbytes: int = 0
    # Where the rows were in the block (their order among its non-empty lines),
    # when the tables and bad rows are not simply one after the other: for each
    # table its rows' positions, and the bad rows' positions.
    table_positions: list[list[int]] | None = None
    bad_positions: list[int] | None = None


def read_blocks(
    stream: BinaryIO,
    fmt: InputFormat,
    block_size: int = DEFAULT_BLOCK_SIZE,
    string_fields: set[str] | None = None,
    *,
    only_text: str | None = None,
) -> Iterator[Block]:
    """Parse ``stream`` in blocks of about ``block_size`` bytes.

    ``string_fields`` (json only) names fields to keep as text: Arrow's JSON reader
    would turn ISO-looking strings into timestamps, losing their text. Fields found
    to infer as timestamps are added to the set, so later blocks keep them as text.

    ``only_text`` (json only): the one field the caller needs, as text (a first
    pass that only reads timestamps); Arrow then parses the other fields without
    building them. A block where that field is not text everywhere (numbers, a
    bad line) is parsed as usual, so its rows and bad rows are the same.
    """
    if isinstance(fmt, JsonFormat):
        fields = string_fields if string_fields is not None else set()
        first = True
        for data in _line_blocks(stream, block_size, b""):
            block = Block(nbytes=len(data))
            if only_text is not None and _parse_json_field(data, block, only_text):
                yield block
                continue
            if first:
                _learn_text_fields(data, fields)
                first = False
            _parse_json(data, block, fields)
            yield block
        return
    yield from _read_delimited(stream, fmt, block_size)


def _line_blocks(stream: BinaryIO, block_size: int, carry: bytes) -> Iterator[bytes]:
    """Blocks of whole lines (the last one may lack its newline)."""
    while True:
        chunk = stream.read(block_size)
        if not chunk:
            if carry:
                yield carry
            return
        data = carry + chunk if carry else chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        carry = data[cut + 1 :]
        yield data[: cut + 1]


def _unparseable(line: bytes) -> ParseProblem:
    text = line.decode("utf-8", errors="replace")
    return ParseProblem(text, (f"Unable to parse row [{text}]",))


# --- json ---------------------------------------------------------------------------


def _json_table(data: bytes, string_fields: set[str]) -> pa.Table:
    """Raises pa.ArrowInvalid (or ArrowNotImplementedError) when Arrow cannot load it."""
    for _ in range(2):
        options = pjson.ParseOptions(
            explicit_schema=pa.schema(
                [(f, pa.string()) for f in sorted(string_fields)]
            ),
            unexpected_field_behavior="infer",
        )
        table = pjson.read_json(pa.BufferReader(data), parse_options=options)
        inferred = {
            f.name for f in table.schema if pa.types.is_timestamp(f.type)
        } - string_fields
        if not inferred:
            return table
        string_fields |= inferred
    return table


def _learn_text_fields(data: bytes, string_fields: set[str]) -> None:
    """Find the ISO-looking text fields on a sample of the first lines, so that a
    big first block is not parsed twice."""
    end = data.rfind(b"\n", 0, _SAMPLE_BYTES)
    if end < 0 or len(data) <= _SAMPLE_BYTES:
        return
    with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
        _json_table(data[: end + 1], string_fields)


def _parse_json_field(data: bytes, block: Block, name: str) -> bool:
    """Load only field ``name`` of every line, as text; False when Arrow refuses
    (a line that is not a JSON object, the field not text everywhere)."""
    options = pjson.ParseOptions(
        explicit_schema=pa.schema([(name, pa.string())]),
        unexpected_field_behavior="ignore",
    )
    try:
        table = pjson.read_json(pa.BufferReader(data), parse_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    if table.num_rows:
        block.tables.append(table)
    return True


def _parse_json(data: bytes, block: Block, string_fields: set[str]) -> None:
    try:
        table = _json_table(data, string_fields)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        _parse_json_lines(data.splitlines(), block, string_fields)
        return
    if table.num_rows:
        block.tables.append(table)


def _parse_json_lines(
    lines: list[bytes], block: Block, string_fields: set[str]
) -> None:
    """The slow path of a block Arrow refused: find its bad lines in Python, then
    load the good ones with Arrow again, or (when the lines disagree on a field's
    type, which Arrow refuses) from the values Python parsed."""
    good: list[bytes] = []
    values: list[dict[str, Any]] = []
    good_at: list[int] = []
    bad_at: list[int] = []
    for position, line in enumerate(line for line in lines if line.strip()):
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        if isinstance(value, dict):
            good.append(line)
            values.append(value)
            good_at.append(position)
        else:
            block.bad.append(_unparseable(line))
            bad_at.append(position)
    block.bad_positions = bad_at
    block.table_positions = []
    if not good:
        return
    try:
        block.tables.append(_json_table(b"\n".join(good), string_fields))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        block.tables.append(python_table(values))
    block.table_positions.append(good_at)


def python_table(rows: list[dict[str, Any]]) -> pa.Table:
    """A table from parsed JSON objects whose fields vary in type: a field with
    lists anywhere becomes lists of text (a lone value a one-value list, as Druid
    reads both the same way), other mixed fields become text as Java prints it."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return pa.Table.from_arrays(
        [_python_column([row.get(name) for row in rows]) for name in names],
        names=list(names),
    )


def _python_column(values: list[Any]) -> pa.Array:
    kinds = {type(v) for v in values if v is not None}
    try:
        if not kinds or kinds in ({bool}, {int}, {float}, {int, float}, {str}):
            return pa.array(values)
        if kinds == {dict}:
            return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    if list in kinds:
        return pa.array(
            [
                None
                if v is None
                else [_text(x) for x in v]
                if isinstance(v, list)
                else [_text(v)]
                for v in values
            ],
            pa.list_(pa.string()),
        )
    return pa.array([None if v is None else _text(v) for v in values], pa.string())


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


# --- csv / tsv ----------------------------------------------------------------------


def _split_line(line: bytes, fmt: DelimitedFormat) -> list[str]:
    text = line.decode("utf-8", errors="replace").rstrip("\r\n")
    if fmt.kind == "csv":
        return next(csv.reader([text]), [])
    # Druid's DelimitedValueReader splits tsv on the delimiter; quotes are data.
    return text.split(fmt.separator)


def _read_delimited(
    stream: BinaryIO, fmt: DelimitedFormat, block_size: int
) -> Iterator[Block]:
    consumed = 0
    for _ in range(fmt.skip_header_rows):
        consumed += len(stream.readline())
    columns = list(fmt.columns)
    if fmt.find_columns_from_header:
        header = stream.readline()
        consumed += len(header)
        columns = _split_line(header, fmt)
    if not columns:
        return
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        # Druid's ParserUtils.validateFields.
        raise IngestError(f"Duplicate column entries found : [{', '.join(duplicates)}]")
    first = True
    for data in _line_blocks(stream, block_size, b""):
        block = Block(nbytes=len(data) + (consumed if first else 0))
        first = False
        _parse_delimited(data, fmt, columns, block)
        yield block
    if first and consumed:
        yield Block(nbytes=consumed)


def _parse_delimited(
    data: bytes, fmt: DelimitedFormat, columns: list[str], block: Block
) -> None:
    odd_rows: list[str] = []

    def odd_row(row: pcsv.InvalidRow) -> str:
        # Druid zips values to columns partially (Utils.zipMapPartial): a short row
        # leaves the last columns null, extra values are dropped. Arrow refuses
        # such rows; they are loaded apart below.
        odd_rows.append(row.text)
        return "skip"

    try:
        table = pcsv.read_csv(
            pa.BufferReader(data),
            read_options=pcsv.ReadOptions(column_names=columns),
            parse_options=pcsv.ParseOptions(
                delimiter=fmt.separator,
                quote_char='"' if fmt.kind == "csv" else False,
                double_quote=fmt.kind == "csv",
                newlines_in_values=False,
                ignore_empty_lines=True,
                invalid_row_handler=odd_row,
            ),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(columns, pa.string()),
                # Druid's ParserUtils turns empty values into nulls.
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
        odd_rows = []
        table = None
        lines = [line for line in data.splitlines() if line.strip()]
        if len(lines) > 1:
            middle = data.find(b"\n", len(data) // 2)
            if 0 <= middle < len(data) - 1:
                _parse_delimited(data[: middle + 1], fmt, columns, block)
                _parse_delimited(data[middle + 1 :], fmt, columns, block)
                return
        for line in lines:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                block.bad.append(_unparseable(line))
                continue
            odd_rows.append(line.decode("utf-8"))
    if table is not None and table.num_rows:
        block.tables.append(_split_lists(table, fmt.list_delimiter))
    if odd_rows:
        rows = [_split_line(text.encode(), fmt) for text in odd_rows]
        arrays = [
            pa.array(
                [row[i] if i < len(row) and row[i] != "" else None for row in rows],
                pa.string(),
            )
            for i in range(len(columns))
        ]
        odd = pa.Table.from_arrays(arrays, names=columns)
        block.tables.append(_split_lists(odd, fmt.list_delimiter))


def _split_lists(table: pa.Table, delimiter: str) -> pa.Table:
    """Values holding the list delimiter become multi-value (list) cells."""
    if not delimiter:
        return table
    for index, name in enumerate(table.column_names):
        column = table.column(index)
        if pc.any(pc.match_substring(column, delimiter)).as_py():
            table = table.set_column(
                index, name, pc.split_pattern(column, pattern=delimiter)
            )
    return table
