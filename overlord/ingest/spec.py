"""The parts of a Druid native batch spec the engine needs, as frozen dataclasses.

A later schema layer (marshmallow, Druid-exact refusals) builds these from a posted
task; :func:`IngestSpec.from_json` is a lenient shortcut for tests and benchmarks that
reads the same JSON shape (``spec.dataSchema``/``ioConfig``/``tuningConfig``) without
Druid's validation messages.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

# Granularity is re-exported: the engine's modules name it from here.
from overlord.granularity import Granularity as Granularity
from overlord.granularity import parse_granularity
from overlord.jackson import JAVA_INT_MAX
from overlord.timeutil import Interval, parse_druid_datetime, parse_interval

# Druid's TuningConfig / DynamicPartitionsSpec defaults.
DEFAULT_MAX_ROWS_PER_SEGMENT = 5_000_000
DEFAULT_MAX_ROWS_IN_MEMORY = 1_000_000
# Druid's default is a sixth of the JVM heap; the engine has no heap, so a fixed share.
DEFAULT_MAX_BYTES_IN_MEMORY = 256 * 1024 * 1024


# --- input sources ------------------------------------------------------------------


@dataclass(frozen=True)
class InlineSource:
    """``{"type": "inline", "data": "..."}``."""

    data: str


@dataclass(frozen=True)
class LocalSource:
    """``{"type": "local", "baseDir": ..., "filter": ...}`` or ``"files": [...]``."""

    base_dir: str | None = None
    filter: str | None = None
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class HttpSource:
    """``{"type": "http", "uris": [...]}`` with optional basic auth (the password
    already resolved from its ``DefaultPasswordProvider``)."""

    uris: tuple[str, ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)


InputSource = InlineSource | LocalSource | HttpSource


# --- input formats ------------------------------------------------------------------


@dataclass(frozen=True)
class JsonFormat:
    """``{"type": "json"}``: one JSON object per line."""


@dataclass(frozen=True)
class DelimitedFormat:
    """``{"type": "csv"}`` or ``{"type": "tsv"}`` (Druid's CsvInputFormat and
    DelimitedInputFormat)."""

    kind: Literal["csv", "tsv"] = "csv"
    columns: tuple[str, ...] = ()
    find_columns_from_header: bool = False
    skip_header_rows: int = 0
    # Druid's default list delimiter is Ctrl-A (ParserUtils.DEFAULT_LIST_DELIMITER).
    list_delimiter: str = "\u0001"
    # tsv's ``delimiter`` (a tab unless given); csv always uses a comma.
    delimiter: str | None = None

    @property
    def separator(self) -> str:
        if self.kind == "csv":
            return ","
        return self.delimiter or "\t"


InputFormat = JsonFormat | DelimitedFormat


# --- data schema --------------------------------------------------------------------


@dataclass(frozen=True)
class TimestampSpec:
    """Druid's TimestampSpec: defaults ``timestamp`` / ``auto``."""

    column: str = "timestamp"
    format: str = "auto"
    missing_value: dt.datetime | None = None


DimensionType = Literal["string", "long", "float", "double"]


@dataclass(frozen=True)
class DimensionSchema:
    name: str
    type: DimensionType = "string"


@dataclass(frozen=True)
class DimensionsSpec:
    """No ``dimensions`` means schema-less discovery."""

    dimensions: tuple[DimensionSchema, ...] = ()
    exclusions: tuple[str, ...] = ()


AggregatorType = Literal[
    "count",
    "longSum",
    "doubleSum",
    "floatSum",
    "longMin",
    "longMax",
    "doubleMin",
    "doubleMax",
]
AGGREGATOR_TYPES: tuple[str, ...] = (
    "count",
    "longSum",
    "doubleSum",
    "floatSum",
    "longMin",
    "longMax",
    "doubleMin",
    "doubleMax",
)


@dataclass(frozen=True)
class Aggregator:
    """One ``metricsSpec`` entry; ``field_name`` is None only for ``count``."""

    type: AggregatorType
    name: str
    field_name: str | None = None


@dataclass(frozen=True)
class GranularitySpec:
    """Druid's UniformGranularitySpec (defaults DAY / NONE / rollup true)."""

    segment_granularity: Granularity = "DAY"
    query_granularity: Granularity = "NONE"
    intervals: tuple[Interval, ...] = ()
    rollup: bool = True


# --- transformSpec filters ----------------------------------------------------------


@dataclass(frozen=True)
class SelectorFilter:
    dimension: str
    value: str | None


@dataclass(frozen=True)
class InFilter:
    dimension: str
    values: tuple[str | None, ...]


@dataclass(frozen=True)
class EqualsFilter:
    """Druid 28's typed ``equals``: ``matchValueType`` is a column type name."""

    column: str
    match_value_type: str
    match_value: Any


@dataclass(frozen=True)
class BoundFilter:
    dimension: str
    lower: str | None = None
    upper: str | None = None
    lower_strict: bool = False
    upper_strict: bool = False
    ordering: Literal["lexicographic", "numeric"] = "lexicographic"


@dataclass(frozen=True)
class AndFilter:
    fields: tuple[Filter, ...]


@dataclass(frozen=True)
class OrFilter:
    fields: tuple[Filter, ...]


@dataclass(frozen=True)
class NotFilter:
    field: Filter


Filter = (
    SelectorFilter
    | InFilter
    | EqualsFilter
    | BoundFilter
    | AndFilter
    | OrFilter
    | NotFilter
)


@dataclass(frozen=True)
class DataSchema:
    data_source: str
    timestamp: TimestampSpec = TimestampSpec()
    dimensions: DimensionsSpec = DimensionsSpec()
    metrics: tuple[Aggregator, ...] = ()
    granularity: GranularitySpec = GranularitySpec()
    filter: Filter | None = None


@dataclass(frozen=True)
class TuningConfig:
    """Druid's IndexTuningConfig limits the engine honours.

    ``max_bytes_in_memory``: 0 means the default, a negative value no byte limit
    (Druid's rule). ``max_parse_exceptions`` defaults to Integer.MAX_VALUE.
    """

    max_rows_per_segment: int = DEFAULT_MAX_ROWS_PER_SEGMENT
    max_rows_in_memory: int = DEFAULT_MAX_ROWS_IN_MEMORY
    max_bytes_in_memory: int = 0
    max_parse_exceptions: int = JAVA_INT_MAX
    max_saved_parse_exceptions: int = 0
    log_parse_exceptions: bool = False

    @property
    def bytes_limit(self) -> int | None:
        if self.max_bytes_in_memory < 0:
            return None
        return self.max_bytes_in_memory or DEFAULT_MAX_BYTES_IN_MEMORY


@dataclass(frozen=True)
class IngestSpec:
    data_schema: DataSchema
    source: InputSource
    format: InputFormat
    tuning: TuningConfig = TuningConfig()

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> IngestSpec:
        """Read an ``index``/``index_parallel`` ``spec`` object (tests and bench only:
        lenient, no Druid validation texts)."""
        schema = spec.get("dataSchema", {})
        io_config = spec.get("ioConfig", {})
        tuning = spec.get("tuningConfig") or {}
        return cls(
            data_schema=_data_schema(schema),
            source=_source(io_config["inputSource"]),
            format=_format(io_config["inputFormat"]),
            tuning=_tuning(tuning),
        )


def _data_schema(schema: dict[str, Any]) -> DataSchema:
    ts = schema.get("timestampSpec") or {}
    missing = ts.get("missingValue")
    dims = schema.get("dimensionsSpec") or {}
    gran = schema.get("granularitySpec") or {}
    transform = schema.get("transformSpec") or {}
    return DataSchema(
        data_source=schema["dataSource"],
        timestamp=TimestampSpec(
            column=ts.get("column", "timestamp"),
            format=ts.get("format", "auto"),
            missing_value=parse_druid_datetime(missing) if missing else None,
        ),
        dimensions=DimensionsSpec(
            dimensions=tuple(
                DimensionSchema(d)
                if isinstance(d, str)
                else DimensionSchema(d["name"], d.get("type", "string"))
                for d in dims.get("dimensions") or ()
            ),
            exclusions=tuple(dims.get("dimensionExclusions") or ()),
        ),
        metrics=tuple(
            Aggregator(m["type"], m["name"], m.get("fieldName"))
            for m in schema.get("metricsSpec") or ()
        ),
        granularity=GranularitySpec(
            segment_granularity=parse_granularity(
                gran.get("segmentGranularity", "DAY")
            ),
            query_granularity=parse_granularity(gran.get("queryGranularity", "NONE")),
            intervals=tuple(parse_interval(i) for i in gran.get("intervals") or ()),
            rollup=gran.get("rollup", True),
        ),
        filter=filter_from_json(transform["filter"])
        if transform.get("filter")
        else None,
    )


def filter_from_json(value: dict[str, Any]) -> Filter:
    """A ``transformSpec.filter`` object (tests and bench only)."""
    kind = value["type"]
    if kind == "selector":
        return SelectorFilter(value["dimension"], value.get("value"))
    if kind == "in":
        return InFilter(value["dimension"], tuple(value["values"]))
    if kind == "equals":
        return EqualsFilter(
            value["column"], value["matchValueType"], value["matchValue"]
        )
    if kind == "bound":
        return BoundFilter(
            value["dimension"],
            value.get("lower"),
            value.get("upper"),
            value.get("lowerStrict", False),
            value.get("upperStrict", False),
            value.get("ordering", "lexicographic"),
        )
    if kind == "and":
        return AndFilter(tuple(filter_from_json(f) for f in value["fields"]))
    if kind == "or":
        return OrFilter(tuple(filter_from_json(f) for f in value["fields"]))
    if kind == "not":
        return NotFilter(filter_from_json(value["field"]))
    raise ValueError(f"unknown filter type [{kind}]")


def _source(value: dict[str, Any]) -> InputSource:
    kind = value["type"]
    if kind == "inline":
        return InlineSource(value["data"])
    if kind == "local":
        return LocalSource(
            value.get("baseDir"), value.get("filter"), tuple(value.get("files") or ())
        )
    if kind == "http":
        password = value.get("httpAuthenticationPassword")
        if isinstance(password, dict):
            password = password.get("password")
        return HttpSource(
            tuple(value["uris"]), value.get("httpAuthenticationUsername"), password
        )
    raise ValueError(f"unknown inputSource type [{kind}]")


def _format(value: dict[str, Any]) -> InputFormat:
    kind = value["type"]
    if kind == "json":
        return JsonFormat()
    if kind in ("csv", "tsv"):
        return DelimitedFormat(
            kind=kind,
            columns=tuple(value.get("columns") or ()),
            find_columns_from_header=bool(value.get("findColumnsFromHeader", False)),
            skip_header_rows=int(value.get("skipHeaderRows", 0)),
            list_delimiter=value.get("listDelimiter") or "\u0001",
            delimiter=value.get("delimiter"),
        )
    raise ValueError(f"unknown inputFormat type [{kind}]")


def _tuning(value: dict[str, Any]) -> TuningConfig:
    partitions = value.get("partitionsSpec") or {}
    max_rows = partitions.get("maxRowsPerSegment", value.get("maxRowsPerSegment"))
    return TuningConfig(
        max_rows_per_segment=max_rows or DEFAULT_MAX_ROWS_PER_SEGMENT,
        max_rows_in_memory=value.get("maxRowsInMemory") or DEFAULT_MAX_ROWS_IN_MEMORY,
        max_bytes_in_memory=value.get("maxBytesInMemory", 0),
        max_parse_exceptions=value.get("maxParseExceptions", JAVA_INT_MAX),
        max_saved_parse_exceptions=value.get("maxSavedParseExceptions", 0),
        log_parse_exceptions=value.get("logParseExceptions", False),
    )
