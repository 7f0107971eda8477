"""The typed task model at submit (issue #9 §1): what Druid's Jackson refuses is a
400 ``{"error": <Jackson's text>}`` and nothing is stored; Druid's tutorial specs are
accepted and read back byte for byte."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from overlord.db import Database
from overlord.store.models import AuditEntry, Task

BASE = "/druid/indexer/v1"
JSON = "application/json"
TASK = "org.apache.druid.indexing.common.task."
NOOP = TASK + "NoopTask"
KILL = TASK + "KillUnusedSegmentsTask"
INDEX = TASK + "IndexTask"
PARALLEL = TASK + "batch.parallel.ParallelIndexSupervisorTask"
LONG_RANGE = "(-9223372036854775808 - 9223372036854775807)"
INT_RANGE = "(-2147483648 - 2147483647)"
OBJECT = "Object value (token `JsonToken.START_OBJECT`)"
ARRAY = "Array value (token `JsonToken.START_ARRAY`)"
STRING_TOKEN = "String value (token `JsonToken.VALUE_STRING`)"
MAP = "java.util.LinkedHashMap<java.lang.String,java.lang.Object>"

WIKI_SPEC: dict[str, Any] = {
    "dataSchema": {
        "dataSource": "wikipedia",
        "timestampSpec": {"column": "time", "format": "iso"},
        "dimensionsSpec": {
            "dimensions": [
                "channel",
                "cityName",
                {"type": "long", "name": "added"},
                {"name": "page", "type": "string"},
            ]
        },
        "metricsSpec": [
            {"type": "count", "name": "count"},
            {"type": "longSum", "name": "sum_added", "fieldName": "added"},
        ],
        "granularitySpec": {
            "type": "uniform",
            "segmentGranularity": "day",
            "queryGranularity": "none",
            "intervals": ["2015-09-12/2015-09-13"],
            "rollup": False,
        },
        "transformSpec": {
            "filter": {
                "type": "and",
                "fields": [
                    {"type": "selector", "dimension": "channel", "value": "#en"},
                    {
                        "type": "not",
                        "field": {"type": "in", "dimension": "x", "values": ["a"]},
                    },
                ],
            }
        },
    },
    "ioConfig": {
        "type": "index_parallel",
        "inputSource": {
            "type": "local",
            "baseDir": "quickstart/tutorial/",
            "filter": "wikiticker-2015-09-12-sampled.json.gz",
        },
        "inputFormat": {"type": "json"},
        "appendToExisting": False,
    },
    "tuningConfig": {
        "type": "index_parallel",
        "maxRowsPerSegment": 5000000,
        "maxRowsInMemory": 25000,
        "partitionsSpec": {"type": "dynamic"},
        "maxNumConcurrentSubTasks": 1,
    },
}


def _parallel(**spec: Any) -> dict[str, Any]:
    return {"type": "index_parallel", "spec": copy.deepcopy(WIKI_SPEC) | spec}


def _with(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``document`` with the dotted ``path`` set to ``value``."""
    result = copy.deepcopy(document)
    target: Any = result
    *parents, last = path.split(".")
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return result


def _chain(*links: str) -> str:
    return f" (through reference chain: {'->'.join(links)})"


def _unknown(name: str, interface: str, known: str) -> str:
    return (
        f"Please make sure to load all the necessary extensions and jars with type "
        f"'{name}'. Could not resolve type id '{name}' as a subtype of "
        f"`{interface}` known type ids = [{known}]"
    )


NOOP_BASE = {"type": "noop", "dataSource": "wiki"}
KILL_BASE = {"type": "kill", "dataSource": "wiki", "interval": "2020/2021"}
INDEX_BASE = {"type": "index", "spec": copy.deepcopy(WIKI_SPEC)}
PARALLEL_BASE = _parallel()

P_SPEC = f'{PARALLEL}["spec"]'
P_INGEST = TASK + "batch.parallel.ParallelIndexIngestionSpec"
P_SCHEMA = f'{P_INGEST}["dataSchema"]'
P_IO = f'{P_INGEST}["ioConfig"]'
P_TUNING = f'{P_INGEST}["tuningConfig"]'
P_IO_CLASS = TASK + "batch.parallel.ParallelIndexIOConfig"
P_TUNING_CLASS = TASK + "batch.parallel.ParallelIndexTuningConfig"
DATA_SCHEMA = "org.apache.druid.segment.indexing.DataSchema"
UNIFORM = "org.apache.druid.segment.indexing.granularity.UniformGranularitySpec"
INPUT = "org.apache.druid.data.input.impl."
INPUT_SOURCES = "combining, druid, http, inline, local, sql"
AGGREGATORS = (
    "cardinality, count, doubleAny, doubleFirst, doubleLast, doubleMax, doubleMean, "
    "doubleMin, doubleSum, expression, filtered, floatAny, floatFirst, floatLast, "
    "floatMax, floatMin, floatSum, grouping, histogram, hyperUnique, javascript, "
    "longAny, longFirst, longLast, longMax, longMin, longSum, singleValue, stringAny, "
    "stringFirst, stringFirstFold, stringLast, stringLastFold"
)
FILTERS = (
    "and, arrayContainsElement, bound, columnComparison, equals, expression, "
    "extraction, false, in, interval, isfalse, istrue, javascript, like, not, null, "
    "or, range, regex, search, selector, spatial, true"
)

# (id, posted document, the whole 400 error text)
REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    # ---- common AbstractTask properties
    (
        "ds-object",
        _with(NOOP_BASE, "dataSource", {"name": "x"}),
        f"Cannot deserialize value of type `java.lang.String` from {OBJECT}"
        + _chain(f'{NOOP}["dataSource"]'),
    ),
    (
        "ds-array",
        _with(KILL_BASE, "dataSource", ["x"]),
        f"Cannot deserialize value of type `java.lang.String` from {ARRAY}"
        + _chain(f'{KILL}["dataSource"]'),
    ),
    (
        "id-object",
        _with(NOOP_BASE, "id", {}),
        f"Cannot deserialize value of type `java.lang.String` from {OBJECT}"
        + _chain(f'{NOOP}["id"]'),
    ),
    (
        "groupId-array",
        _with(PARALLEL_BASE, "groupId", []),
        f"Cannot deserialize value of type `java.lang.String` from {ARRAY}"
        + _chain(f'{PARALLEL}["groupId"]'),
    ),
    (
        "context-string",
        _with(NOOP_BASE, "context", "x"),
        f"Cannot deserialize value of type `{MAP}` from {STRING_TOKEN}"
        + _chain(f'{NOOP}["context"]'),
    ),
    (
        "context-array",
        _with(INDEX_BASE, "context", [1]),
        f"Cannot deserialize value of type `{MAP}` from {ARRAY}"
        + _chain(f'{INDEX}["context"]'),
    ),
    (
        "resource-capacity-over-int",
        _with(NOOP_BASE, "resource", {"requiredCapacity": 2**31}),
        f"Numeric value (2147483648) out of range of int {INT_RANGE}"
        + _chain(f'{NOOP}["resource"]', f'{TASK}TaskResource["requiredCapacity"]'),
    ),
    # ---- noop
    (
        "runTime-over-long",
        _with(NOOP_BASE, "runTime", 2**63),
        f"Numeric value (9223372036854775808) out of range of long {LONG_RANGE}"
        + _chain(f'{NOOP}["runTime"]'),
    ),
    (
        "runTime-under-long",
        _with(NOOP_BASE, "runTime", -(2**63) - 1),
        f"Numeric value (-9223372036854775809) out of range of long {LONG_RANGE}"
        + _chain(f'{NOOP}["runTime"]'),
    ),
    (
        "runTime-text",
        _with(NOOP_BASE, "runTime", "soon"),
        'Cannot deserialize value of type `long` from String "soon": not a valid '
        "`long` value" + _chain(f'{NOOP}["runTime"]'),
    ),
    (
        "runTime-object",
        _with(NOOP_BASE, "runTime", {}),
        f"Cannot deserialize value of type `long` from {OBJECT}"
        + _chain(f'{NOOP}["runTime"]'),
    ),
    (
        "runTime-boolean",
        _with(NOOP_BASE, "runTime", True),
        "Cannot deserialize value of type `long` from Boolean value (token "
        "`JsonToken.VALUE_TRUE`)" + _chain(f'{NOOP}["runTime"]'),
    ),
    (
        "isReadyTime-float",
        _with(NOOP_BASE, "isReadyTime", 1.5),
        "Cannot deserialize value of type `long` from Floating-point value (token "
        "`JsonToken.VALUE_NUMBER_FLOAT`)" + _chain(f'{NOOP}["isReadyTime"]'),
    ),
    (
        "isReadyResult-unknown",
        _with(NOOP_BASE, "isReadyResult", "MAYBE"),
        'Cannot deserialize value of type `NoopTask$IsReadyResult` from String "MAYBE"'
        ": not one of the values accepted for Enum class: [YES, NO, EXCEPTION]"
        + _chain(f'{NOOP}["isReadyResult"]'),
    ),
    (
        "first-error-in-document-order",
        {"type": "noop", "isReadyTime": "x", "runTime": {}},
        'Cannot deserialize value of type `long` from String "x": not a valid '
        "`long` value" + _chain(f'{NOOP}["isReadyTime"]'),
    ),
    # ---- kill
    (
        "kill-no-interval",
        {"type": "kill", "dataSource": "wiki"},
        f"Cannot construct instance of `{KILL}`, problem: interval",
    ),
    (
        "kill-interval-no-separator",
        _with(KILL_BASE, "interval", "2020"),
        "Format requires a '/' separator: \"2020\"" + _chain(f'{KILL}["interval"]'),
    ),
    (
        "kill-interval-bad-date",
        _with(KILL_BASE, "interval", "2020-13-01/2021"),
        'Invalid format: "2020-13-01"' + _chain(f'{KILL}["interval"]'),
    ),
    (
        "kill-interval-number",
        _with(KILL_BASE, "interval", 2020),
        "Cannot deserialize value of type `org.joda.time.Interval` from Integer "
        "value (token `JsonToken.VALUE_NUMBER_INT`)" + _chain(f'{KILL}["interval"]'),
    ),
    (
        "kill-versions-string",
        _with(KILL_BASE, "versions", "v1"),
        "Cannot deserialize value of type `java.util.ArrayList<java.lang.String>` "
        f"from {STRING_TOKEN}" + _chain(f'{KILL}["versions"]'),
    ),
    (
        "kill-versions-item-object",
        _with(KILL_BASE, "versions", ["v1", {}]),
        f"Cannot deserialize value of type `java.lang.String` from {OBJECT}"
        + _chain(f'{KILL}["versions"]', "java.util.ArrayList[1]"),
    ),
    (
        "kill-markAsUnused-text",
        _with(KILL_BASE, "markAsUnused", "yes"),
        'Cannot deserialize value of type `java.lang.Boolean` from String "yes": '
        'only "true" or "false" recognized' + _chain(f'{KILL}["markAsUnused"]'),
    ),
    (
        "kill-batchSize-over-int",
        _with(KILL_BASE, "batchSize", 2**31),
        f"Numeric value (2147483648) out of range of int {INT_RANGE}"
        + _chain(f'{KILL}["batchSize"]'),
    ),
    (
        "kill-limit-array",
        _with(KILL_BASE, "limit", [1]),
        f"Cannot deserialize value of type `java.lang.Integer` from {ARRAY}"
        + _chain(f'{KILL}["limit"]'),
    ),
    (
        "kill-no-dataSource",
        {"type": "kill", "interval": "2020/2021", "batchSize": 0},
        f"Cannot construct instance of `{KILL}`, problem: dataSource",
    ),
    (
        "kill-empty-interval",
        {**KILL_BASE, "id": "kill_me", "interval": "2020/2020"},
        f"Cannot construct instance of `{KILL}`, problem: interval empty",
    ),
    (
        "kill-batchSize-zero",
        _with(KILL_BASE, "batchSize", 0),
        f"Cannot construct instance of `{KILL}`, problem: batchSize[0] must be a "
        "positive integer.",
    ),
    (
        "kill-batchSize-before-limit",
        {**KILL_BASE, "batchSize": 0, "limit": -1},
        f"Cannot construct instance of `{KILL}`, problem: batchSize[0] must be a "
        "positive integer.",
    ),
    (
        "kill-limit-zero",
        _with(KILL_BASE, "limit", 0),
        f"Cannot construct instance of `{KILL}`, problem: limit[0] must be a "
        "positive integer.",
    ),
    (
        "kill-maxUsedStatusLastUpdatedTime",
        _with(KILL_BASE, "maxUsedStatusLastUpdatedTime", "yesterday"),
        'Invalid format: "yesterday"'
        + _chain(f'{KILL}["maxUsedStatusLastUpdatedTime"]'),
    ),
    # ---- index / index_parallel: dataSchema
    (
        "index-no-spec",
        {"type": "index"},
        "spec must not be null",
    ),
    (
        "index-spec-string",
        {"type": "index", "spec": "x"},
        f"Cannot deserialize value of type `{INDEX}$IndexIngestionSpec` from "
        f"{STRING_TOKEN}" + _chain(f'{INDEX}["spec"]'),
    ),
    (
        "index-ds-object",
        _with(INDEX_BASE, "spec.dataSchema.dataSource", {}),
        f"Cannot deserialize value of type `java.lang.String` from {OBJECT}"
        + _chain(
            f'{INDEX}["spec"]',
            f'{INDEX}$IndexIngestionSpec["dataSchema"]',
            f'{DATA_SCHEMA}["dataSource"]',
        ),
    ),
    (
        "parallel-ds-empty",
        _with(PARALLEL_BASE, "spec.dataSchema.dataSource", ""),
        f"Cannot construct instance of `{DATA_SCHEMA}`, problem: dataSource cannot "
        "be null or empty. Please provide a dataSource." + _chain(P_SPEC, P_SCHEMA),
    ),
    (
        "index-ds-slash",
        _with(INDEX_BASE, "spec.dataSchema.dataSource", "a/b"),
        f"Cannot construct instance of `{DATA_SCHEMA}`, problem: Invalid value for "
        "field [dataSource]: Value [a/b] cannot contain '/'."
        + _chain(f'{INDEX}["spec"]', f'{INDEX}$IndexIngestionSpec["dataSchema"]'),
    ),
    (
        "index-ds-tab",
        _with(INDEX_BASE, "spec.dataSchema.dataSource", "a\tb"),
        f"Cannot construct instance of `{DATA_SCHEMA}`, problem: Invalid value for "
        "field [dataSource]: Value [a\tb] contains illegal whitespace characters.  "
        "Only space is allowed."
        + _chain(f'{INDEX}["spec"]', f'{INDEX}$IndexIngestionSpec["dataSchema"]'),
    ),
    (
        "parallel-timestampSpec-column-object",
        _with(PARALLEL_BASE, "spec.dataSchema.timestampSpec.column", {}),
        f"Cannot deserialize value of type `java.lang.String` from {OBJECT}"
        + _chain(
            P_SPEC,
            P_SCHEMA,
            f'{DATA_SCHEMA}["timestampSpec"]',
            f'{INPUT}TimestampSpec["column"]',
        ),
    ),
    (
        "parallel-dimensions-string",
        _with(PARALLEL_BASE, "spec.dataSchema.dimensionsSpec.dimensions", "a"),
        "Cannot deserialize value of type `java.util.ArrayList<"
        f"{INPUT}DimensionSchema>` from {STRING_TOKEN}"
        + _chain(
            P_SPEC,
            P_SCHEMA,
            f'{DATA_SCHEMA}["dimensionsSpec"]',
            f'{INPUT}DimensionsSpec["dimensions"]',
        ),
    ),
    (
        "parallel-dimension-unknown-type",
        _with(
            PARALLEL_BASE,
            "spec.dataSchema.dimensionsSpec.dimensions.2",
            {"type": "decimal", "name": "added"},
        ),
        _unknown(
            "decimal",
            f"{INPUT}DimensionSchema",
            "auto, double, float, json, long, spatial, string",
        )
        + _chain(
            P_SPEC,
            P_SCHEMA,
            f'{DATA_SCHEMA}["dimensionsSpec"]',
            f'{INPUT}DimensionsSpec["dimensions"]',
            "java.util.ArrayList[2]",
        ),
    ),
    (
        "parallel-metric-unknown-type",
        _with(PARALLEL_BASE, "spec.dataSchema.metricsSpec.1.type", "longSumm"),
        _unknown(
            "longSumm",
            "org.apache.druid.query.aggregation.AggregatorFactory",
            AGGREGATORS,
        )
        + _chain(
            P_SPEC, P_SCHEMA, f'{DATA_SCHEMA}["metricsSpec"]', "java.util.ArrayList[1]"
        ),
    ),
    (
        "parallel-metric-no-type",
        _with(PARALLEL_BASE, "spec.dataSchema.metricsSpec.0", {"name": "count"}),
        "Could not resolve subtype of [simple type, class "
        "org.apache.druid.query.aggregation.AggregatorFactory]: missing type id "
        "property 'type'"
        + _chain(
            P_SPEC, P_SCHEMA, f'{DATA_SCHEMA}["metricsSpec"]', "java.util.ArrayList[0]"
        ),
    ),
    (
        "parallel-metric-fieldName-array",
        _with(PARALLEL_BASE, "spec.dataSchema.metricsSpec.1.fieldName", ["added"]),
        f"Cannot deserialize value of type `java.lang.String` from {ARRAY}"
        + _chain(
            P_SPEC,
            P_SCHEMA,
            f'{DATA_SCHEMA}["metricsSpec"]',
            "java.util.ArrayList[1]",
            'org.apache.druid.query.aggregation.LongSumAggregatorFactory["fieldName"]',
        ),
    ),
    (
        "parallel-granularitySpec-unknown-type",
        _with(PARALLEL_BASE, "spec.dataSchema.granularitySpec.type", "fancy"),
        _unknown(
            "fancy",
            "org.apache.druid.segment.indexing.granularity.GranularitySpec",
            "arbitrary, uniform",
        )
        + _chain(P_SPEC, P_SCHEMA, f'{DATA_SCHEMA}["granularitySpec"]'),
    ),
    (
        "parallel-segmentGranularity-unknown",
        _with(
            PARALLEL_BASE, "spec.dataSchema.granularitySpec.segmentGranularity", "EON"
        ),
        "Unknown granularity[EON]"
        + _chain(
            P_SPEC,
            P_SCHEMA,
            f'{DATA_SCHEMA}["granularitySpec"]',
            f'{UNIFORM}["segmentGranularity"]',
        ),
    ),
    (
        "parallel-intervals-bad",
        _with(PARALLEL_BASE, "spec.dataSchema.granularitySpec.intervals", ["2015/x"]),
        'Invalid format: "x"'
        + _chain(
            P_SPEC,
            P_SCHEMA,
            f'{DATA_SCHEMA}["granularitySpec"]',
            f'{UNIFORM}["intervals"]',
            "java.util.ArrayList[0]",
        ),
    ),
    (
        "parallel-rollup-object",
        _with(PARALLEL_BASE, "spec.dataSchema.granularitySpec.rollup", {}),
        f"Cannot deserialize value of type `java.lang.Boolean` from {OBJECT}"
        + _chain(
            P_SPEC,
            P_SCHEMA,
            f'{DATA_SCHEMA}["granularitySpec"]',
            f'{UNIFORM}["rollup"]',
        ),
    ),
    (
        "parallel-filter-unknown-type",
        _with(
            PARALLEL_BASE, "spec.dataSchema.transformSpec.filter.fields.1.type", "nor"
        ),
        _unknown("nor", "org.apache.druid.query.filter.DimFilter", FILTERS)
        + _chain(
            P_SPEC,
            P_SCHEMA,
            f'{DATA_SCHEMA}["transformSpec"]',
            'org.apache.druid.segment.transform.TransformSpec["filter"]',
            'org.apache.druid.query.filter.AndDimFilter["fields"]',
            "java.util.ArrayList[1]",
        ),
    ),
    (
        "parallel-filter-nested-not",
        _with(
            PARALLEL_BASE,
            "spec.dataSchema.transformSpec.filter.fields.1.field.type",
            "nope",
        ),
        _unknown("nope", "org.apache.druid.query.filter.DimFilter", FILTERS)
        + _chain(
            P_SPEC,
            P_SCHEMA,
            f'{DATA_SCHEMA}["transformSpec"]',
            'org.apache.druid.segment.transform.TransformSpec["filter"]',
            'org.apache.druid.query.filter.AndDimFilter["fields"]',
            "java.util.ArrayList[1]",
            'org.apache.druid.query.filter.NotDimFilter["field"]',
        ),
    ),
    # ---- ioConfig
    (
        "index-unknown-inputSource",
        _with(INDEX_BASE, "spec.ioConfig.inputSource", {"type": "nope"}),
        _unknown("nope", "org.apache.druid.data.input.InputSource", INPUT_SOURCES)
        + _chain(
            f'{INDEX}["spec"]',
            f'{INDEX}$IndexIngestionSpec["ioConfig"]',
            f'{INDEX}$IndexIOConfig["inputSource"]',
        ),
    ),
    (
        "only-inputSource-unknown",
        {"type": "index", "spec": {"ioConfig": {"inputSource": {"type": "nope"}}}},
        _unknown("nope", "org.apache.druid.data.input.InputSource", INPUT_SOURCES)
        + _chain(
            f'{INDEX}["spec"]',
            f'{INDEX}$IndexIngestionSpec["ioConfig"]',
            f'{INDEX}$IndexIOConfig["inputSource"]',
        ),
    ),
    (
        "parallel-inputSource-no-type",
        _with(PARALLEL_BASE, "spec.ioConfig.inputSource", {"data": "x"}),
        "Could not resolve subtype of [simple type, class "
        "org.apache.druid.data.input.InputSource]: missing type id property 'type'"
        + _chain(P_SPEC, P_IO, f'{P_IO_CLASS}["inputSource"]'),
    ),
    (
        "parallel-inputSource-string",
        _with(PARALLEL_BASE, "spec.ioConfig.inputSource", "local"),
        "Unexpected token (VALUE_STRING), expected START_OBJECT: need JSON Object "
        "to contain As.PROPERTY type information (for class "
        "org.apache.druid.data.input.InputSource)"
        + _chain(P_SPEC, P_IO, f'{P_IO_CLASS}["inputSource"]'),
    ),
    (
        "parallel-inline-data-object",
        _with(
            PARALLEL_BASE, "spec.ioConfig.inputSource", {"type": "inline", "data": {}}
        ),
        f"Cannot deserialize value of type `java.lang.String` from {OBJECT}"
        + _chain(
            P_SPEC,
            P_IO,
            f'{P_IO_CLASS}["inputSource"]',
            f'{INPUT}InlineInputSource["data"]',
        ),
    ),
    (
        "parallel-http-uris-string",
        _with(
            PARALLEL_BASE,
            "spec.ioConfig.inputSource",
            {"type": "http", "uris": "http://x/a.json"},
        ),
        "Cannot deserialize value of type `java.util.ArrayList<java.net.URI>` from "
        f"{STRING_TOKEN}"
        + _chain(
            P_SPEC,
            P_IO,
            f'{P_IO_CLASS}["inputSource"]',
            f'{INPUT}HttpInputSource["uris"]',
        ),
    ),
    (
        "parallel-unknown-inputFormat",
        _with(PARALLEL_BASE, "spec.ioConfig.inputFormat.type", "xml"),
        _unknown(
            "xml", "org.apache.druid.data.input.InputFormat", "csv, json, regex, tsv"
        )
        + _chain(P_SPEC, P_IO, f'{P_IO_CLASS}["inputFormat"]'),
    ),
    (
        "parallel-csv-skipHeaderRows-over-int",
        _with(
            PARALLEL_BASE,
            "spec.ioConfig.inputFormat",
            {"type": "csv", "skipHeaderRows": 2**40},
        ),
        f"Numeric value (1099511627776) out of range of int {INT_RANGE}"
        + _chain(
            P_SPEC,
            P_IO,
            f'{P_IO_CLASS}["inputFormat"]',
            f'{INPUT}CsvInputFormat["skipHeaderRows"]',
        ),
    ),
    (
        "parallel-appendToExisting-text",
        _with(PARALLEL_BASE, "spec.ioConfig.appendToExisting", "no"),
        'Cannot deserialize value of type `java.lang.Boolean` from String "no": only '
        '"true" or "false" recognized'
        + _chain(P_SPEC, P_IO, f'{P_IO_CLASS}["appendToExisting"]'),
    ),
    (
        "index-dropExisting-array",
        _with(INDEX_BASE, "spec.ioConfig.dropExisting", [True]),
        f"Cannot deserialize value of type `java.lang.Boolean` from {ARRAY}"
        + _chain(
            f'{INDEX}["spec"]',
            f'{INDEX}$IndexIngestionSpec["ioConfig"]',
            f'{INDEX}$IndexIOConfig["dropExisting"]',
        ),
    ),
    # ---- tuningConfig
    (
        "parallel-maxRowsPerSegment-over-int",
        _with(PARALLEL_BASE, "spec.tuningConfig.maxRowsPerSegment", 2**31),
        f"Numeric value (2147483648) out of range of int {INT_RANGE}"
        + _chain(P_SPEC, P_TUNING, f'{P_TUNING_CLASS}["maxRowsPerSegment"]'),
    ),
    (
        "parallel-maxRowsInMemory-text",
        _with(PARALLEL_BASE, "spec.tuningConfig.maxRowsInMemory", "many"),
        'Cannot deserialize value of type `java.lang.Integer` from String "many": '
        "not a valid `java.lang.Integer` value"
        + _chain(P_SPEC, P_TUNING, f'{P_TUNING_CLASS}["maxRowsInMemory"]'),
    ),
    (
        "parallel-maxBytesInMemory-over-long",
        _with(PARALLEL_BASE, "spec.tuningConfig.maxBytesInMemory", 2**64),
        f"Numeric value (18446744073709551616) out of range of long {LONG_RANGE}"
        + _chain(P_SPEC, P_TUNING, f'{P_TUNING_CLASS}["maxBytesInMemory"]'),
    ),
    (
        "parallel-maxParseExceptions-object",
        _with(PARALLEL_BASE, "spec.tuningConfig.maxParseExceptions", {}),
        f"Cannot deserialize value of type `java.lang.Integer` from {OBJECT}"
        + _chain(P_SPEC, P_TUNING, f'{P_TUNING_CLASS}["maxParseExceptions"]'),
    ),
    (
        "parallel-logParseExceptions-text",
        _with(PARALLEL_BASE, "spec.tuningConfig.logParseExceptions", "always"),
        'Cannot deserialize value of type `java.lang.Boolean` from String "always": '
        'only "true" or "false" recognized'
        + _chain(P_SPEC, P_TUNING, f'{P_TUNING_CLASS}["logParseExceptions"]'),
    ),
    (
        "parallel-partitionsSpec-unknown",
        _with(PARALLEL_BASE, "spec.tuningConfig.partitionsSpec.type", "random"),
        _unknown(
            "random",
            "org.apache.druid.indexer.partitions.PartitionsSpec",
            "dimension, dynamic, hashed, range, single_dim",
        )
        + _chain(P_SPEC, P_TUNING, f'{P_TUNING_CLASS}["partitionsSpec"]'),
    ),
    (
        "parallel-partitionsSpec-hashed",
        _with(PARALLEL_BASE, "spec.tuningConfig.partitionsSpec.type", "hashed"),
        "partitionsSpec type [hashed] is not supported by overlord (only [dynamic])"
        + _chain(P_SPEC, P_TUNING, f'{P_TUNING_CLASS}["partitionsSpec"]'),
    ),
    (
        "parallel-partitionsSpec-no-type-is-hashed",
        _with(
            PARALLEL_BASE, "spec.tuningConfig.partitionsSpec", {"maxRowsPerSegment": 5}
        ),
        "partitionsSpec type [hashed] is not supported by overlord (only [dynamic])"
        + _chain(P_SPEC, P_TUNING, f'{P_TUNING_CLASS}["partitionsSpec"]'),
    ),
    (
        "parallel-inputSource-druid-not-built",
        _with(PARALLEL_BASE, "spec.ioConfig.inputSource", {"type": "druid"}),
        "inputSource type [druid] is not supported by overlord (only [inline, local, "
        "http])" + _chain(P_SPEC, P_IO, f'{P_IO_CLASS}["inputSource"]'),
    ),
    (
        "parallel-maxNumConcurrentSubTasks-float",
        _with(PARALLEL_BASE, "spec.tuningConfig.maxNumConcurrentSubTasks", 2.5),
        "Cannot deserialize value of type `java.lang.Integer` from Floating-point "
        "value (token `JsonToken.VALUE_NUMBER_FLOAT`)"
        + _chain(P_SPEC, P_TUNING, f'{P_TUNING_CLASS}["maxNumConcurrentSubTasks"]'),
    ),
    (
        "parallel-maxRetry-text",
        _with(PARALLEL_BASE, "spec.tuningConfig.maxRetry", "twice"),
        'Cannot deserialize value of type `java.lang.Integer` from String "twice": '
        "not a valid `java.lang.Integer` value"
        + _chain(P_SPEC, P_TUNING, f'{P_TUNING_CLASS}["maxRetry"]'),
    ),
]


def _stored(db: Database) -> tuple[int, int]:
    with db.transaction() as session:
        tasks = session.scalar(select(func.count()).select_from(Task))
        audits = session.scalar(select(func.count()).select_from(AuditEntry))
    return int(tasks or 0), int(audits or 0)


def test_the_table_has_forty_cases() -> None:
    assert len(REFUSALS) >= 40
    assert len({case[0] for case in REFUSALS}) == len(REFUSALS)


@pytest.mark.parametrize(
    ("document", "message"),
    [pytest.param(document, message, id=name) for name, document, message in REFUSALS],
)
def test_submit_refuses_what_druid_refuses(
    client: FlaskClient, db: Database, document: dict[str, Any], message: str
) -> None:
    response = client.post(f"{BASE}/task", json=document)

    assert (response.status_code, response.json) == (400, {"error": message})
    assert _stored(db) == (0, 0)


def _round_trip(client: FlaskClient, body: str) -> str:
    response = client.post(f"{BASE}/task", data=body, content_type=JSON)
    assert response.status_code == 200, response.get_data(as_text=True)
    task_id = response.json["task"]
    read = client.get(f"{BASE}/task/{task_id}")
    assert read.status_code == 200
    return (
        read.get_data(as_text=True)
        .removeprefix(f'{{"task":"{task_id}","payload":')
        .removesuffix("}")
    )


def _complete(task_id: str, document: dict[str, Any]) -> dict[str, Any]:
    """The document with every field Druid adds already given, so that it reads back
    byte for byte."""
    return {
        **document,
        "id": task_id,
        "groupId": task_id,
        "resource": {"availabilityGroup": task_id, "requiredCapacity": 1},
        "context": {
            "forceTimeChunkLock": True,
            "useLineageBasedSegmentAllocation": True,
        },
    }


INLINE_SPEC = _with(
    WIKI_SPEC,
    "ioConfig.inputSource",
    {"type": "inline", "data": '{"time":"2015-09-12T00:46:58.771Z","channel":"#en"}\n'},
)
TUTORIALS = [
    pytest.param({"type": "index_parallel", "spec": WIKI_SPEC}, id="parallel-local"),
    pytest.param({"type": "index_parallel", "spec": INLINE_SPEC}, id="parallel-inline"),
    pytest.param(
        {
            "type": "index",
            "spec": _with(
                INLINE_SPEC,
                "ioConfig.inputFormat",
                {
                    "type": "csv",
                    "findColumnsFromHeader": True,
                    "skipHeaderRows": 0,
                    "listDelimiter": "|",
                },
            ),
        },
        id="index-csv",
    ),
    pytest.param(
        {
            "type": "kill",
            "dataSource": "wikipedia",
            "interval": "2015-09-12/2015-09-13",
            "versions": ["2023-06-26T21:08:05.216Z"],
            "markAsUnused": False,
            "batchSize": 100,
            "limit": 1000,
            "maxUsedStatusLastUpdatedTime": "2024-01-01T00:00:00.000Z",
        },
        id="kill",
    ),
    pytest.param(
        {
            "type": "noop",
            "dataSource": "wikipedia",
            "runTime": 100,
            "isReadyTime": 0,
            "isReadyResult": "YES",
            "unknownField": {"kept": [1, 2.50, None]},
        },
        id="noop",
    ),
]


@pytest.mark.parametrize("document", TUTORIALS)
def test_tutorial_specs_are_accepted_and_read_back_byte_for_byte(
    client: FlaskClient, document: dict[str, Any]
) -> None:
    body = json.dumps(_complete("tutorial-task", document), separators=(",", ":"))

    assert _round_trip(client, body) == body
