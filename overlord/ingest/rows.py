"""From parsed input tables to Druid rows: timestamps, the transformSpec filter, the
``intervals`` restriction, dimensions (explicit or discovered), metrics, and rollup.

A *row table* has ``__time`` (epoch ms, truncated to the query granularity), one
column per dimension and one per metric. Multi-value string cells are kept inside the
engine as their values joined by ``MULTI_VALUE_SEPARATOR`` (so they group and sort as
plain strings); the segment writer turns them back into lists.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from overlord.ingest.javatext import java_double, java_map, java_string
from overlord.ingest.spec import (
    Aggregator,
    AndFilter,
    BoundFilter,
    DataSchema,
    DimensionSchema,
    EqualsFilter,
    Filter,
    InFilter,
    NotFilter,
    OrFilter,
    SelectorFilter,
)
from overlord.ingest.stats import (
    ErrorType,
    ParseExceptionHandler,
    ParseProblem,
    RowStats,
)
from overlord.ingest.timestamps import (
    MAX_MILLIS,
    MIN_MILLIS,
    TimestampParser,
    bucket_starts,
    tolerant,
    truncate,
)
from overlord.timeutil import to_millis

TIME = "__time"
MULTI_VALUE_SEPARATOR = "\x1f"

DIMENSION_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
}
METRIC_TYPES: dict[str, pa.DataType] = {
    "count": pa.int64(),
    "longSum": pa.int64(),
    "longMin": pa.int64(),
    "longMax": pa.int64(),
    "doubleSum": pa.float64(),
    "doubleMin": pa.float64(),
    "doubleMax": pa.float64(),
    "floatSum": pa.float32(),
}
# How rows (or already rolled-up rows) of one aggregator combine.
_COMBINE = {
    "count": "sum",
    "longSum": "sum",
    "doubleSum": "sum",
    "floatSum": "sum",
    "longMin": "min",
    "doubleMin": "min",
    "longMax": "max",
    "doubleMax": "max",
}


def _column(table: pa.Table, name: str) -> pa.Array:
    if name not in table.column_names:
        return pa.nulls(table.num_rows)
    column = table.column(name)
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


# --- value conversion ---------------------------------------------------------------


def _float_text(column: pa.Array) -> pa.Array:
    """Floating values as Java's Double.toString writes them: Arrow's text for
    most, ``.0`` added to whole ones, Python for the few in scientific notation."""
    text = pc.cast(column, pa.string())
    size = pc.abs(column)
    whole = pc.and_(pc.equal(column, pc.floor(column)), pc.less(size, 1e7))
    text = pc.if_else(
        pc.fill_null(whole, False), pc.binary_join_element_wise(text, ".0", ""), text
    )
    odd = pc.fill_null(
        pc.or_(
            pc.greater_equal(size, 1e7),
            pc.and_(pc.less(size, 1e-3), pc.not_equal(size, 0)),
        ),
        False,
    )
    if not pc.any(odd).as_py():
        return text
    rows = pc.indices_nonzero(odd)
    fixed = [java_double(v) for v in pc.take(column, rows).to_pylist()]
    values = text.to_pylist()
    for row, value in zip(rows.to_pylist(), fixed, strict=True):
        values[row] = value
    return pa.array(values, pa.string())


def _scalar_text(column: pa.Array) -> pa.Array:
    kind = column.type
    if pa.types.is_string(kind):
        return column
    if pa.types.is_floating(kind):
        return _float_text(pc.cast(column, pa.float64()))
    if (
        pa.types.is_integer(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
        or pa.types.is_large_string(kind)
    ):
        return pc.cast(column, pa.string())
    return pa.array(
        [None if v is None else json.dumps(v, default=str) for v in column.to_pylist()],
        pa.string(),
    )


def string_dimension(column: pa.Array) -> tuple[pa.Array, bool]:
    """A string dimension's cells and whether any is multi-value.

    Lists become multi-value cells sorted as Druid's default ``SORTED_ARRAY``
    multiValueHandling keeps them; a one-element list is that value, an empty one
    null.
    """
    kind = column.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        return _scalar_text(column), False
    try:
        lists = pc.cast(column, pa.list_(pa.string()))
        if pa.types.is_floating(kind.value_type):
            raise pa.ArrowInvalid("floats need Java's text")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        lists = pa.array(
            [
                None
                if cell is None
                else [java_string(v) if not isinstance(v, str) else v for v in cell]
                for cell in column.to_pylist()
            ],
            pa.list_(pa.string()),
        )
    lengths = pc.fill_null(pc.list_value_length(lists), 0)
    multi = bool(pc.any(pc.greater(lengths, 1)).as_py())
    if multi:
        lists = pa.array(
            [
                None if cell is None else sorted(cell, key=_null_first)
                for cell in lists.to_pylist()
            ],
            pa.list_(pa.string()),
        )
    joined = pc.binary_join(lists, MULTI_VALUE_SEPARATOR)
    return pc.if_else(pc.equal(lengths, 0), pa.scalar(None, pa.string()), joined), multi


def _null_first(value: str | None) -> tuple[int, str]:
    return (0, "") if value is None else (1, value)


def number_column(column: pa.Array, target: pa.DataType) -> tuple[pa.Array, list[int]]:
    """Cells as numbers of ``target`` type, and the positions of bad values (null in
    the result), as Druid's Rows.objectToNumber converts them."""
    kind = column.type
    if pa.types.is_null(kind):
        return pa.nulls(len(column), target), []
    if (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
    ):
        if pa.types.is_floating(kind) and pa.types.is_integer(target):
            column = pc.floor(
                pc.cast(column, pa.float64())
            )  # Java's (long) cast truncates
            column = pc.if_else(pc.less(column, 0), pc.ceil(column), column)
        return pc.cast(column, target, safe=False), []
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        blank = pc.equal(pc.utf8_trim_whitespace(column), "")
        column = pc.if_else(pc.fill_null(blank, False), pa.scalar(None, kind), column)

        def fast(values: pa.Array) -> pa.Array:
            try:
                return pc.cast(values, target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                if not pa.types.is_integer(target):
                    raise
            # "3.9" in a long column: its whole part, as Java's cast keeps it.
            return number_column(pc.cast(values, pa.float64()), target)[0]

        def slow(values: pa.Array) -> tuple[pa.Array, list[int]]:
            return _python_numbers(values, target)

        return tolerant(column, fast, slow)
    return _python_numbers(column, target)


def _python_numbers(
    column: pa.Array, target: pa.DataType
) -> tuple[pa.Array, list[int]]:
    values: list[int | float | None] = []
    bad: list[int] = []
    integral = pa.types.is_integer(target)
    for index, value in enumerate(column.to_pylist()):
        if value is None or (isinstance(value, str) and not value.strip()):
            values.append(None)
            continue
        try:
            if isinstance(value, list):
                raise ValueError(value)
            values.append(_number(value, integral))
        except (ValueError, TypeError, OverflowError):
            values.append(None)
            bad.append(index)
    return pa.array(values, target), bad


def _number(value: Any, integral: bool) -> int | float:
    """Druid's Rows.objectToNumber: integers first, then decimals (a long column
    keeps a decimal's whole part, as Java's cast does)."""
    if integral and isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    number = float(value)
    return int(number) if integral else number


def single_values(column: pa.Array) -> tuple[pa.Array, list[int]]:
    """A numeric column's cells from a list column: a one-value list is its value,
    an empty one null; several values are bad (a numeric column holds one value per
    row in Druid)."""
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
        return column, []
    lengths = pc.fill_null(pc.list_value_length(column), 0)
    several = pc.greater(lengths, 1)
    bad = pc.indices_nonzero(several).to_pylist()
    usable = pc.if_else(pc.equal(lengths, 1), column, pa.scalar(None, column.type))
    return pc.list_element(usable, 0), bad


# --- filters ------------------------------------------------------------------------


def _values_view(table: pa.Table, name: str) -> tuple[pa.Array, pa.Array | None]:
    """A column as text, flattened when it holds lists: (values, row of each value)."""
    column = _column(table, name)
    kind = column.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _scalar_text(pc.list_flatten(column)), pc.list_parent_indices(column)
    return _scalar_text(column), None


def row_numbers(count: int) -> pa.Array:
    """0, 1, … count - 1 as int64, without a Python loop."""
    if count == 0:
        return pa.array([], pa.int64())
    ones = pa.repeat(pa.scalar(1, pa.int64()), count)
    return pc.subtract(pc.cumulative_sum(ones), 1)


def _per_row(count: int, parents: pa.Array | None, matches: pa.Array) -> pa.Array:
    """Multi-value rows match when any of their values does (Druid's rule)."""
    if parents is None:
        return matches
    hits = pc.filter(parents, pc.fill_null(matches, False))
    return pc.is_in(row_numbers(count), value_set=pc.cast(hits, pa.int64()))


def filter_mask(table: pa.Table, spec: Filter) -> pa.Array:
    """Three-valued match of each row (null = unknown, as Druid's filters treat
    nulls since Druid 28); callers keep only true rows."""
    count = table.num_rows
    if isinstance(spec, AndFilter):
        result = pa.repeat(pa.scalar(True), count)
        for part in spec.fields:
            result = pc.and_kleene(result, filter_mask(table, part))
        return result
    if isinstance(spec, OrFilter):
        result = pa.repeat(pa.scalar(False), count)
        for part in spec.fields:
            result = pc.or_kleene(result, filter_mask(table, part))
        return result
    if isinstance(spec, NotFilter):
        return pc.invert(filter_mask(table, spec.field))
    if isinstance(spec, SelectorFilter):
        return _in(table, spec.dimension, (spec.value,))
    if isinstance(spec, InFilter):
        return _in(table, spec.dimension, spec.values)
    if isinstance(spec, EqualsFilter):
        return _equals(table, spec)
    return _bound(table, spec)


def _in(table: pa.Table, name: str, wanted: tuple[str | None, ...]) -> pa.Array:
    values, parents = _values_view(table, name)
    # Druid's InDimFilter and SelectorDimFilter compare text: 5 matches "5".
    strings = [
        v if isinstance(v, str) else java_string(v) for v in wanted if v is not None
    ]
    matches = pc.is_in(values, value_set=pa.array(strings, pa.string()))
    if None in wanted:
        matches = pc.or_(matches, pc.is_null(values))
    else:
        matches = pc.if_else(pc.is_null(values), pa.scalar(None, pa.bool_()), matches)
    if parents is not None:
        return _per_row(table.num_rows, parents, matches)
    return matches


def _equals(table: pa.Table, spec: EqualsFilter) -> pa.Array:
    kind = spec.match_value_type.upper()
    if kind in ("LONG", "DOUBLE", "FLOAT"):
        column = _column(table, spec.column)
        values, _several = single_values(column)
        numbers, _bad = number_column(values, pa.float64())
        return pc.equal(numbers, float(spec.match_value))
    values, parents = _values_view(table, spec.column)
    matches = pc.equal(values, str(spec.match_value))
    return _per_row(table.num_rows, parents, matches)


def _bound(table: pa.Table, spec: BoundFilter) -> pa.Array:
    values, parents = _values_view(table, spec.dimension)
    if spec.ordering == "numeric":
        subject, _bad = number_column(values, pa.float64())

        def bound(value: str) -> Any:
            return float(value)
    else:
        subject = values

        def bound(value: str) -> Any:
            return value if isinstance(value, str) else java_string(value)

    result = pc.is_valid(subject)
    result = pc.if_else(result, True, pa.scalar(None, pa.bool_()))
    if spec.lower is not None:
        compare = pc.greater if spec.lower_strict else pc.greater_equal
        result = pc.and_kleene(result, compare(subject, bound(spec.lower)))
    if spec.upper is not None:
        compare = pc.less if spec.upper_strict else pc.less_equal
        result = pc.and_kleene(result, compare(subject, bound(spec.upper)))
    return _per_row(table.num_rows, parents, result)


# --- the transformer ----------------------------------------------------------------


@dataclass(frozen=True)
class _Bad:
    row: int
    message: str


class RowTransformer:
    """Turns parsed input tables into row tables, counting Druid's row stats."""

    def __init__(
        self, schema: DataSchema, handler: ParseExceptionHandler, stats: RowStats
    ) -> None:
        self.schema = schema
        self.handler = handler
        self.stats = stats
        self.timestamps = TimestampParser(schema.timestamp.format)
        missing = schema.timestamp.missing_value
        self.missing_millis: int | None = None
        if missing is not None:
            self.missing_millis = to_millis(missing)
        granularity = schema.granularity
        self.allowed = (
            pa.array(
                bucket_starts(granularity.segment_granularity, granularity.intervals),
                pa.int64(),
            )
            if granularity.intervals
            else None
        )
        self.discovered: list[str] = []
        self.multi_value: set[str] = set()
        # When a list, bad rows are put here as (row of the raw table, kind, its
        # problem) instead of going to the handler: the engine hands them over in
        # input order with the block's other bad rows.
        self.deferred: (
            list[tuple[int, ErrorType, Callable[[], ParseProblem]]] | None
        ) = None
        self._excluded = {
            schema.timestamp.column,
            *schema.dimensions.exclusions,
            *(m.name for m in schema.metrics),
            *(m.field_name for m in schema.metrics if m.field_name),
        }

    @property
    def dimensions(self) -> list[DimensionSchema]:
        """The explicit dimensions, else those discovered so far (first seen first)."""
        if self.schema.dimensions.dimensions:
            return list(self.schema.dimensions.dimensions)
        return [DimensionSchema(name) for name in self.discovered]

    @property
    def metrics(self) -> tuple[Aggregator, ...]:
        return self.schema.metrics

    def schema_of_rows(self) -> pa.Schema:
        return pa.schema(
            [(TIME, pa.int64())]
            + [(d.name, DIMENSION_TYPES[d.type]) for d in self.dimensions]
            + [(m.name, METRIC_TYPES[m.type]) for m in self.metrics]
        )

    def _discover(self, table: pa.Table) -> None:
        known = set(self.discovered)
        for field in table.schema:
            if field.name in known or field.name in self._excluded:
                continue
            kind = field.type
            # Druid's field discovery takes root-level primitives and lists of them.
            if pa.types.is_struct(kind) or pa.types.is_map(kind):
                continue
            if (
                pa.types.is_list(kind) or pa.types.is_large_list(kind)
            ) and pa.types.is_nested(kind.value_type):
                continue
            self.discovered.append(field.name)
            known.add(field.name)

    def count(self, raw: pa.Table) -> None:
        """Druid's determine-partitions pass over ``raw`` (IndexTask
        collectIntervalsAndShardSpecs): rows with a timestamp that the filter keeps
        are ``processed``, the others ``thrownAway`` or ``unparseable`` as in
        :meth:`transform`; dimension and metric values are not read (Druid finds
        their errors only when indexing, in the buildSegments phase).

        Raises:
            MaxParseExceptionsExceeded: through the handler.
        """
        keep, _ = self._kept(raw)
        self.stats.processed += _count(keep)

    def _kept(self, raw: pa.Table) -> tuple[pa.Array, pa.Array]:
        """The mask of ``raw``'s rows that are kept and their timestamps (epoch ms);
        the others are counted (thrownAway, unparseable)."""
        count = raw.num_rows
        spec = self.schema
        source = _column(raw, spec.timestamp.column)
        millis, bad = self.timestamps.parse(source)
        if self.missing_millis is not None:
            millis = pc.if_else(pc.is_null(source), self.missing_millis, millis)
        # Instants Python's datetime cannot hold (outside years 1000-9999, the
        # range the stores keep too) are reported like an unparseable timestamp.
        outside = pc.or_(pc.less(millis, MIN_MILLIS), pc.greater(millis, MAX_MILLIS))
        if pc.any(outside).as_py():
            bad = sorted(
                {*bad, *pc.indices_nonzero(pc.fill_null(outside, False)).to_pylist()}
            )
            millis = pc.if_else(outside, pa.scalar(None, pa.int64()), millis)
        if bad:
            if self.deferred is not None:
                self.deferred.extend(
                    (
                        row,
                        "unparseable",
                        functools.partial(_first, self._timestamp_problems, raw, [row]),
                    )
                    for row in bad
                )
            else:
                self.handler.handle(
                    "unparseable", len(bad), lambda: self._timestamp_problems(raw, bad)
                )
        keep = pc.is_valid(millis)
        # Rows without a timestamp are thrown away (issue 9's rule; Druid's newest
        # MapInputRowParser reports them as unparseable instead).
        self.stats.thrown_away += count - len(bad) - _count(keep)
        if spec.filter is not None:
            # Filters may name __time (epoch ms), as Druid's row selectors allow.
            subject = (
                raw if TIME in raw.column_names else raw.append_column(TIME, millis)
            )
            matches = pc.fill_null(filter_mask(subject, spec.filter), False)
            self.stats.thrown_away += _count(pc.and_(keep, pc.invert(matches)))
            keep = pc.and_(keep, matches)
        if self.allowed is not None:
            starts = truncate(millis, spec.granularity.segment_granularity)
            inside = pc.fill_null(pc.is_in(starts, value_set=self.allowed), False)
            self.stats.thrown_away += _count(pc.and_(keep, pc.invert(inside)))
            keep = pc.and_(keep, inside)
        return keep, millis

    def transform(self, raw: pa.Table) -> pa.Table:
        """Row table of ``raw``'s rows that are kept.

        Raises:
            MaxParseExceptionsExceeded: through the handler.
        """
        count = raw.num_rows
        spec = self.schema
        keep, millis = self._kept(raw)
        kept_count = _count(keep)
        if kept_count != count:
            raw = raw.filter(keep)
            millis = pc.filter(millis, keep)
        if not spec.dimensions.dimensions:
            self._discover(raw)
        columns: list[pa.Array] = [truncate(millis, spec.granularity.query_granularity)]
        problems: list[_Bad] = []
        for dimension in self.dimensions:
            column = _column(raw, dimension.name)
            if dimension.type == "string":
                cells, multi = string_dimension(column)
                if multi:
                    self.multi_value.add(dimension.name)
                columns.append(cells)
                continue
            values, several = single_values(column)
            numbers, wrong = number_column(values, DIMENSION_TYPES[dimension.type])
            numbers = _null_at(numbers, several)
            problems += _messages(column, sorted({*several, *wrong}), dimension.name)
            columns.append(numbers)
        for metric in self.metrics:
            if metric.type == "count":
                columns.append(pa.repeat(pa.scalar(1, pa.int64()), kept_count))
                continue
            column = _column(raw, metric.field_name or "")
            values, several = single_values(column)
            numbers, wrong = number_column(values, METRIC_TYPES[metric.type])
            numbers = _null_at(numbers, several)
            problems += _messages(
                column, sorted({*several, *wrong}), metric.field_name or ""
            )
            columns.append(numbers)
        with_error = sorted({p.row for p in problems})
        self.stats.processed += kept_count - len(with_error)
        if with_error and self.deferred is not None:
            kept_rows = (
                pc.indices_nonzero(keep).to_pylist()
                if kept_count != count
                else range(count)
            )
            by_row: dict[int, list[_Bad]] = {}
            for problem in problems:
                by_row.setdefault(problem.row, []).append(problem)
            self.deferred.extend(
                (
                    kept_rows[row],
                    "processedWithError",
                    functools.partial(_first, _column_problems, raw, by_row[row]),
                )
                for row in with_error
            )
        elif with_error:
            self.handler.handle(
                "processedWithError",
                len(with_error),
                lambda: _column_problems(raw, problems),
            )
        return pa.Table.from_arrays(columns, schema=self.schema_of_rows())

    def _timestamp_problems(
        self, raw: pa.Table, bad: list[int]
    ) -> Iterator[ParseProblem]:
        column = self.schema.timestamp.column
        for index in bad:
            row = raw.slice(index, 1).to_pylist()[0]
            text = java_map(row)
            event = text if len(text) < 100 else text[:100] + "..."
            yield ParseProblem(
                event,
                (
                    f"Timestamp[{java_string(row.get(column))}] is unparseable! Event: {event}",
                ),
            )


def _null_at(values: pa.Array, rows: list[int]) -> pa.Array:
    if not rows:
        return values
    mask = pc.is_in(row_numbers(len(values)), pa.array(rows, pa.int64()))
    return pc.if_else(mask, pa.scalar(None, values.type), values)


def _count(mask: pa.Array) -> int:
    return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)


def _messages(column: pa.Array, wrong: list[int], field: str) -> list[_Bad]:
    if not wrong:
        return []
    values = pc.take(column, pa.array(wrong, pa.int64())).to_pylist()
    return [
        _Bad(row, f"Unable to parse value[{java_string(value)}] for field[{field}]")
        for row, value in zip(wrong, values, strict=True)
    ]


def _first(
    problems: Callable[[pa.Table, Any], Iterator[ParseProblem]],
    raw: pa.Table,
    rows: Any,
) -> ParseProblem:
    """The one problem ``problems`` reports about ``rows`` (one row's)."""
    return next(problems(raw, rows))


def _column_problems(raw: pa.Table, problems: list[_Bad]) -> Iterator[ParseProblem]:
    by_row: dict[int, list[str]] = {}
    for problem in problems:
        by_row.setdefault(problem.row, []).append(problem.message)
    for row in sorted(by_row):
        yield ParseProblem(
            java_map(raw.slice(row, 1).to_pylist()[0]), tuple(by_row[row])
        )


# --- rollup -------------------------------------------------------------------------


def combine(
    table: pa.Table, dimensions: list[str], metrics: tuple[Aggregator, ...]
) -> pa.Table:
    """Roll up rows with equal ``__time`` and dimensions (Druid's IncrementalIndex
    rollup); applied again to rolled-up rows it re-rolls them (merging spills)."""
    if table.num_rows <= 1:
        return table
    keys = [TIME, *dimensions]
    grouped = table.group_by(keys, use_threads=False).aggregate(
        [(m.name, _COMBINE[m.type]) for m in metrics]
    )
    arrays = [grouped.column(k) for k in keys] + [
        pc.cast(grouped.column(f"{m.name}_{_COMBINE[m.type]}"), METRIC_TYPES[m.type])
        for m in metrics
    ]
    names = [*keys, *(m.name for m in metrics)]
    fields = pa.schema([table.schema.field(name) for name in names])
    return pa.Table.from_arrays(arrays, schema=fields).select(table.column_names)


def sort_rows(table: pa.Table, dimensions: list[str], rollup: bool) -> pa.Table:
    """Druid's row order in a segment: by time, then (rollup) by dimensions."""
    keys = [TIME, *dimensions] if rollup else [TIME]
    if not rollup and time_sorted(table):
        return table
    # Druid sorts nulls first.
    order = pc.sort_indices(
        table, sort_keys=[(k, "ascending", "at_start") for k in keys]
    )
    return table.take(order)


def time_sorted(table: pa.Table) -> bool:
    """Whether ``__time`` never decreases (input often comes in time order)."""
    if table.num_rows < 2:
        return True
    times = table.column(TIME)
    later = pc.greater_equal(times.slice(1), times.slice(0, table.num_rows - 1))
    return bool(pc.all(later).as_py())
