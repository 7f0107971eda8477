"""Rows: timestamps, thrownAway rules, filters, dimensions, metrics and rollup."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from overlord.ingest.rows import (
    MULTI_VALUE_SEPARATOR,
    RowTransformer,
    combine,
    sort_rows,
)
from overlord.ingest.spec import (
    Aggregator,
    DataSchema,
    DimensionSchema,
    DimensionsSpec,
    Filter,
    GranularitySpec,
    TimestampSpec,
    filter_from_json,
)
from overlord.ingest.stats import ParseExceptionHandler, RowStats
from overlord.timeutil import parse_druid_datetime, parse_interval

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
HOUR = 3_600_000
SUM = Aggregator("longSum", "added", "added")


def schema(**overrides: Any) -> DataSchema:
    values: dict[str, Any] = {
        "data_source": "wiki",
        "timestamp": TimestampSpec("ts", "iso"),
        "dimensions": DimensionsSpec((DimensionSchema("page"),)),
        "metrics": (),
        "granularity": GranularitySpec(rollup=False),
    }
    values.update(overrides)
    return DataSchema(**values)


def run(
    data: DataSchema, rows: list[dict[str, Any]], saved: int = 10
) -> tuple[list[dict[str, Any]], RowStats, list[dict[str, Any]], RowTransformer]:
    stats = RowStats()
    handler = ParseExceptionHandler(stats, max_parse_exceptions=100, max_saved=saved)
    transformer = RowTransformer(data, handler, stats)
    table = transformer.transform(pa.Table.from_pylist(rows))
    reports = handler.reports()
    for report in reports:
        report.pop("timeOfExceptionMillis")
    return table.to_pylist(), stats, reports, transformer


def test_explicit_dimensions_typed() -> None:
    dims = DimensionsSpec(
        (
            DimensionSchema("page"),
            DimensionSchema("n", "long"),
            DimensionSchema("f", "float"),
            DimensionSchema("d", "double"),
            DimensionSchema("absent"),
        )
    )
    rows, stats, reports, _ = run(
        schema(dimensions=dims),
        [
            {
                "ts": "2024-01-01T00:00:00Z",
                "page": 1.0,
                "n": "12",
                "f": "1.5",
                "d": "2",
            },
            {"ts": "2024-01-01T00:00:01Z", "page": 2.5, "n": "3.9", "f": None, "d": ""},
        ],
    )
    assert rows == [
        {"__time": T0, "page": "1.0", "n": 12, "f": 1.5, "d": 2.0, "absent": None},
        {
            "__time": T0 + 1000,
            "page": "2.5",
            "n": 3,
            "f": None,
            "d": None,
            "absent": None,
        },
    ]
    assert stats.to_json() == {
        "processed": 2,
        "processedBytes": 0,
        "processedWithError": 0,
        "thrownAway": 0,
        "unparseable": 0,
    }
    assert reports == []


def test_bad_values_make_rows_processed_with_error() -> None:
    dims = DimensionsSpec((DimensionSchema("page"), DimensionSchema("n", "long")))
    rows, stats, reports, _ = run(
        schema(dimensions=dims, metrics=(SUM,)),
        [
            {"ts": "2024-01-01T00:00:00Z", "page": "A", "n": "x", "added": "y"},
            {"ts": "2024-01-01T00:00:00Z", "page": "B", "n": "1", "added": "2"},
        ],
    )
    assert rows == [
        {"__time": T0, "page": "A", "n": None, "added": None},
        {"__time": T0, "page": "B", "n": 1, "added": 2},
    ]
    assert (stats.processed, stats.processed_with_error) == (1, 1)
    assert reports == [
        {
            "input": "{ts=2024-01-01T00:00:00Z, page=A, n=x, added=y}",
            "errorType": "processedWithError",
            "details": [
                "Unable to parse value[x] for field[n]",
                "Unable to parse value[y] for field[added]",
            ],
        }
    ]


def test_timestamps_unparseable_null_missing_value() -> None:
    rows, stats, reports, _ = run(
        schema(),
        [
            {"ts": "2024-01-01T00:00:00Z", "page": "A"},
            {"ts": "yesterday", "page": "B"},
            {"ts": None, "page": "C"},
        ],
    )
    assert rows == [{"__time": T0, "page": "A"}]
    assert (stats.processed, stats.unparseable, stats.thrown_away) == (1, 1, 1)
    assert reports == [
        {
            "input": "{ts=yesterday, page=B}",
            "errorType": "unparseable",
            "details": [
                "Timestamp[yesterday] is unparseable! Event: {ts=yesterday, page=B}"
            ],
        }
    ]
    missing = TimestampSpec("ts", "iso", parse_druid_datetime("2024-01-02"))
    rows, stats, _, _ = run(schema(timestamp=missing), [{"ts": None, "page": "C"}])
    assert rows == [{"__time": T0 + 24 * HOUR, "page": "C"}]
    assert stats.thrown_away == 0


def test_long_event_is_cut_at_100_characters() -> None:
    page = "p" * 120
    _, _, reports, _ = run(schema(), [{"ts": "bad", "page": page}])
    event = f"{{ts=bad, page={page}}}"[:100] + "..."
    assert reports[0]["input"] == event
    assert reports[0]["details"] == [f"Timestamp[bad] is unparseable! Event: {event}"]


def test_intervals_keep_whole_segment_buckets() -> None:
    granularity = GranularitySpec(
        segment_granularity="DAY",
        intervals=(parse_interval("2024-01-01T12:00:00Z/2024-01-02T00:00:00Z"),),
        rollup=False,
    )
    rows, stats, _, _ = run(
        schema(granularity=granularity),
        [
            {"ts": "2024-01-01T01:00:00Z", "page": "A"},  # bucket overlaps: kept
            {"ts": "2024-01-02T00:00:00Z", "page": "B"},
            {"ts": "2023-12-31T23:59:59Z", "page": "C"},
        ],
    )
    assert rows == [{"__time": T0 + HOUR, "page": "A"}]
    assert (stats.processed, stats.thrown_away) == (1, 2)


def test_schemaless_discovery() -> None:
    data = schema(
        dimensions=DimensionsSpec((), exclusions=("secret",)),
        metrics=(Aggregator("count", "count"), Aggregator("longSum", "total", "added")),
    )
    rows, _, _, transformer = run(
        data,
        [
            {
                "ts": "2024-01-01T00:00:00Z",
                "user": "u",
                "secret": "s",
                "added": 1,
                "count": 9,
                "nested": {"a": 1},
                "tags": ["b", "a"],
                "flag": True,
            },
        ],
    )
    assert [d.name for d in transformer.dimensions] == ["user", "tags", "flag"]
    assert rows == [
        {
            "__time": T0,
            "user": "u",
            "tags": f"a{MULTI_VALUE_SEPARATOR}b",
            "flag": "true",
            "count": 1,
            "total": 1,
        }
    ]
    assert transformer.multi_value == {"tags"}


def test_query_granularity_truncates() -> None:
    data = schema(granularity=GranularitySpec(query_granularity="HOUR", rollup=False))
    rows, _, _, _ = run(data, [{"ts": "2024-01-01T05:59:59.999Z", "page": "A"}])
    assert rows == [{"__time": T0 + 5 * HOUR, "page": "A"}]


ROWS = [
    {"ts": "2024-01-01T00:00:00Z", "page": "Main", "n": 5, "tags": ["x", "y"]},
    {"ts": "2024-01-01T00:00:00Z", "page": "Talk", "n": 15, "tags": ["z"]},
    {"ts": "2024-01-01T00:00:00Z", "page": None, "n": None, "tags": None},
    {"ts": "2024-01-01T00:00:00Z", "page": "User", "n": 100, "tags": ["y"]},
]


@pytest.mark.parametrize(
    ("spec", "pages"),
    [
        ({"type": "selector", "dimension": "page", "value": "Main"}, ["Main"]),
        ({"type": "selector", "dimension": "page", "value": None}, [None]),
        ({"type": "selector", "dimension": "tags", "value": "y"}, ["Main", "User"]),
        (
            {"type": "in", "dimension": "page", "values": ["Talk", "User"]},
            ["Talk", "User"],
        ),
        (
            {
                "type": "not",
                "field": {"type": "selector", "dimension": "page", "value": "Main"},
            },
            ["Talk", "User"],
        ),
        (
            {
                "type": "and",
                "fields": [
                    {"type": "in", "dimension": "page", "values": ["Main", "Talk"]},
                    {
                        "type": "not",
                        "field": {
                            "type": "selector",
                            "dimension": "tags",
                            "value": "z",
                        },
                    },
                ],
            },
            ["Main"],
        ),
        (
            {
                "type": "or",
                "fields": [
                    {"type": "selector", "dimension": "page", "value": "User"},
                    {"type": "selector", "dimension": "tags", "value": "z"},
                ],
            },
            ["Talk", "User"],
        ),
        (
            {"type": "bound", "dimension": "n", "lower": "10", "ordering": "numeric"},
            ["Talk", "User"],
        ),
        (
            {
                "type": "bound",
                "dimension": "n",
                "lower": "10",
                "upper": "100",
                "upperStrict": True,
                "ordering": "numeric",
            },
            ["Talk"],
        ),
        # Lexicographic: "100" < "15" < "5".
        ({"type": "bound", "dimension": "n", "upper": "2"}, ["Talk", "User"]),
        (
            {
                "type": "equals",
                "column": "n",
                "matchValueType": "LONG",
                "matchValue": 15,
            },
            ["Talk"],
        ),
        (
            {
                "type": "equals",
                "column": "page",
                "matchValueType": "STRING",
                "matchValue": "User",
            },
            ["User"],
        ),
    ],
)
def test_filters(spec: dict[str, Any], pages: list[str | None]) -> None:
    flt: Filter = filter_from_json(spec)
    rows, stats, _, _ = run(schema(filter=flt), ROWS)
    assert [r["page"] for r in rows] == pages
    assert (stats.processed, stats.thrown_away) == (len(pages), len(ROWS) - len(pages))


ALL_METRICS = (
    Aggregator("count", "count"),
    Aggregator("longSum", "sum", "n"),
    Aggregator("doubleSum", "dsum", "x"),
    Aggregator("floatSum", "fsum", "x"),
    Aggregator("longMin", "min", "n"),
    Aggregator("longMax", "max", "n"),
    Aggregator("doubleMin", "dmin", "x"),
    Aggregator("doubleMax", "dmax", "x"),
)


def test_rollup_with_every_aggregator() -> None:
    data = schema(
        metrics=ALL_METRICS,
        granularity=GranularitySpec(query_granularity="HOUR", rollup=True),
    )
    rows, _, _, transformer = run(
        data,
        [
            {"ts": "2024-01-01T00:10:00Z", "page": "A", "n": 3, "x": 0.5},
            {"ts": "2024-01-01T00:50:00Z", "page": "A", "n": -2, "x": 2.25},
            {"ts": "2024-01-01T01:00:00Z", "page": "A", "n": 7, "x": None},
            {"ts": "2024-01-01T00:20:00Z", "page": None, "n": 1, "x": 1.0},
        ],
    )
    table = pa.Table.from_pylist(rows, schema=transformer.schema_of_rows())
    rolled = sort_rows(combine(table, ["page"], ALL_METRICS), ["page"], rollup=True)
    assert rolled.to_pylist() == [
        {
            "__time": T0,
            "page": None,
            "count": 1,
            "sum": 1,
            "dsum": 1.0,
            "fsum": 1.0,
            "min": 1,
            "max": 1,
            "dmin": 1.0,
            "dmax": 1.0,
        },
        {
            "__time": T0,
            "page": "A",
            "count": 2,
            "sum": 1,
            "dsum": 2.75,
            "fsum": 2.75,
            "min": -2,
            "max": 3,
            "dmin": 0.5,
            "dmax": 2.25,
        },
        {
            "__time": T0 + HOUR,
            "page": "A",
            "count": 1,
            "sum": 7,
            "dsum": None,
            "fsum": None,
            "min": 7,
            "max": 7,
            "dmin": None,
            "dmax": None,
        },
    ]
    assert rolled.schema.field("fsum").type == pa.float32()
    # Rolling up rolled-up rows again changes nothing (spills merge this way).
    assert (
        combine(rolled, ["page"], ALL_METRICS)
        .sort_by([("__time", "ascending"), ("page", "ascending")])
        .to_pylist()
        == sort_rows(rolled, ["page"], rollup=True)
        .sort_by([("__time", "ascending"), ("page", "ascending")])
        .to_pylist()
    )


def test_float_cells_as_java_text() -> None:
    values = [3.0, 0.25, 1e20, 1.5e-05, None, -12345678.5]
    rows, _, _, _ = run(
        schema(),
        [{"ts": "2024-01-01T00:00:00Z", "page": v} for v in values],
    )
    assert [r["page"] for r in rows] == [
        "3.0",
        "0.25",
        "1.0E20",
        "1.5E-5",
        None,
        "-1.23456785E7",
    ]


def test_numeric_columns_from_lists() -> None:
    dims = DimensionsSpec((DimensionSchema("page"), DimensionSchema("n", "long")))
    rows, stats, reports, _ = run(
        schema(dimensions=dims),
        [
            {"ts": "2024-01-01T00:00:00Z", "page": "A", "n": [4]},
            {"ts": "2024-01-01T00:00:00Z", "page": "B", "n": []},
            {"ts": "2024-01-01T00:00:00Z", "page": "C", "n": [1, 2]},
        ],
    )
    assert [r["n"] for r in rows] == [4, None, None]
    assert (stats.processed, stats.processed_with_error) == (2, 1)
    assert reports[0]["details"] == ["Unable to parse value[[1, 2]] for field[n]"]


def test_timestamps_out_of_range_are_unparseable() -> None:
    rows, stats, reports, _ = run(
        schema(timestamp=TimestampSpec("ts", "millis")),
        [{"ts": 10**17, "page": "far"}, {"ts": T0, "page": "now"}],
    )
    assert rows == [{"__time": T0, "page": "now"}]
    assert stats.unparseable == 1
    assert reports[0]["details"] == [
        "Timestamp[100000000000000000] is unparseable! Event: {ts=100000000000000000, page=far}"
    ]


def test_one_bad_number_among_many() -> None:
    from overlord.ingest.rows import number_column

    values = [str(i) for i in range(1000)]
    values[10] = "ten"
    values[900] = "9.5"
    numbers, bad = number_column(pa.array(values), pa.int64())
    assert bad == [10]
    assert numbers[9:12].to_pylist() == [9, None, 11]
    assert numbers[900].as_py() == 9


def test_filter_on_time() -> None:
    flt = filter_from_json(
        {
            "type": "bound",
            "dimension": "__time",
            "lower": str(T0 + HOUR),
            "ordering": "numeric",
        }
    )
    rows, stats, _, _ = run(
        schema(filter=flt),
        [
            {"ts": "2024-01-01T00:00:00Z", "page": "A"},
            {"ts": "2024-01-01T01:00:00Z", "page": "B"},
        ],
    )
    assert rows == [{"__time": T0 + HOUR, "page": "B"}]
    assert stats.thrown_away == 1


def test_filter_values_given_as_numbers_compare_as_text() -> None:
    flt = filter_from_json({"type": "in", "dimension": "n", "values": [5, 100]})
    rows, _, _, _ = run(schema(filter=flt), ROWS)
    assert [r["page"] for r in rows] == ["Main", "User"]
    flt = filter_from_json({"type": "selector", "dimension": "n", "value": 15})
    rows, _, _, _ = run(schema(filter=flt), ROWS)
    assert [r["page"] for r in rows] == ["Talk"]


def test_rollup_without_metrics_keeps_distinct_rows() -> None:
    table = pa.table({"__time": [1, 1, 2], "k": ["a", "a", "b"]})
    assert combine(table, ["k"], ()).to_pylist() == [
        {"__time": 1, "k": "a"},
        {"__time": 2, "k": "b"},
    ]
