"""IngestSpec.from_json: the lenient reader tests and the bench use."""

from __future__ import annotations

import datetime as dt

from overlord.ingest.spec import (
    Aggregator,
    AndFilter,
    BoundFilter,
    DelimitedFormat,
    DimensionSchema,
    HttpSource,
    IngestSpec,
    InlineSource,
    JsonFormat,
    LocalSource,
    NotFilter,
    SelectorFilter,
    TuningConfig,
)
from overlord.timeutil import parse_druid_datetime, parse_interval


def test_full_spec() -> None:
    spec = IngestSpec.from_json(
        {
            "dataSchema": {
                "dataSource": "wiki",
                "timestampSpec": {
                    "column": "ts",
                    "format": "posix",
                    "missingValue": "2024-01-01",
                },
                "dimensionsSpec": {
                    "dimensions": ["page", {"name": "n", "type": "long"}],
                    "dimensionExclusions": ["x"],
                },
                "metricsSpec": [
                    {"type": "count", "name": "count"},
                    {"type": "doubleMax", "name": "m", "fieldName": "v"},
                ],
                "granularitySpec": {
                    "segmentGranularity": {"type": "period", "period": "PT6H"},
                    "queryGranularity": "minute",
                    "intervals": ["2024-01-01/2024-01-02"],
                    "rollup": False,
                },
                "transformSpec": {
                    "filter": {
                        "type": "and",
                        "fields": [
                            {"type": "selector", "dimension": "page", "value": "A"},
                            {
                                "type": "not",
                                "field": {
                                    "type": "bound",
                                    "dimension": "n",
                                    "upper": "9",
                                    "ordering": "numeric",
                                },
                            },
                        ],
                    }
                },
            },
            "ioConfig": {
                "inputSource": {
                    "type": "http",
                    "uris": ["http://h/a"],
                    "httpAuthenticationUsername": "u",
                    "httpAuthenticationPassword": {"type": "default", "password": "p"},
                },
                "inputFormat": {
                    "type": "tsv",
                    "columns": ["ts", "page"],
                    "delimiter": "|",
                    "listDelimiter": ";",
                },
            },
            "tuningConfig": {
                "partitionsSpec": {"type": "dynamic", "maxRowsPerSegment": 7},
                "maxRowsInMemory": 3,
                "maxBytesInMemory": -1,
                "maxParseExceptions": 2,
                "maxSavedParseExceptions": 4,
                "logParseExceptions": True,
            },
        }
    )
    schema = spec.data_schema
    assert schema.timestamp.format == "posix"
    assert schema.timestamp.missing_value == parse_druid_datetime("2024-01-01")
    assert schema.dimensions.dimensions == (
        DimensionSchema("page"),
        DimensionSchema("n", "long"),
    )
    assert schema.dimensions.exclusions == ("x",)
    assert schema.metrics == (
        Aggregator("count", "count"),
        Aggregator("doubleMax", "m", "v"),
    )
    assert schema.granularity.segment_granularity == dt.timedelta(hours=6)
    assert schema.granularity.query_granularity == "MINUTE"
    assert schema.granularity.intervals == (parse_interval("2024-01-01/2024-01-02"),)
    assert schema.filter == AndFilter(
        (
            SelectorFilter("page", "A"),
            NotFilter(BoundFilter("n", upper="9", ordering="numeric")),
        )
    )
    assert spec.source == HttpSource(("http://h/a",), "u", "p")
    assert repr(spec.source) == "HttpSource(uris=('http://h/a',), username='u')"
    assert spec.format == DelimitedFormat(
        kind="tsv", columns=("ts", "page"), list_delimiter=";", delimiter="|"
    )
    assert spec.format.separator == "|"
    assert spec.tuning == TuningConfig(7, 3, -1, 2, 4, True)
    assert spec.tuning.bytes_limit is None


def test_defaults() -> None:
    spec = IngestSpec.from_json(
        {
            "dataSchema": {"dataSource": "d"},
            "ioConfig": {
                "inputSource": {"type": "inline", "data": ""},
                "inputFormat": {"type": "json"},
            },
        }
    )
    assert spec.data_schema.timestamp.column == "timestamp"
    assert spec.data_schema.timestamp.format == "auto"
    assert spec.data_schema.granularity.segment_granularity == "DAY"
    assert spec.data_schema.granularity.query_granularity == "NONE"
    assert spec.data_schema.granularity.rollup is True
    assert spec.source == InlineSource("")
    assert spec.format == JsonFormat()
    assert spec.tuning == TuningConfig()
    assert spec.tuning.max_parse_exceptions == 2**31 - 1
    assert spec.tuning.bytes_limit == 256 * 1024 * 1024
    assert LocalSource().files == ()
