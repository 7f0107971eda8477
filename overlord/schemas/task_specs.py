"""Load a posted task spec into the typed model (``overlord.tasktypes.specs``), refusing
what Druid's Jackson object mapper refuses, with Jackson's texts.

Jackson reads an object's properties in document order and stops at the first
problem; ``load_task_spec`` reports the first error in document order, with Jackson's
``(through reference chain: …)`` suffix naming the Java classes on the way. Unknown
properties are ignored (Druid's ``DefaultObjectMapper`` turns
``FAIL_ON_UNKNOWN_PROPERTIES`` off), and the stored payload stays what was posted.

Where overlord is stricter than Jackson it says so next to the field (numbers given
as strings for fields the task's own run reads as numbers).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, ClassVar

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load

from overlord.errors import InvalidInput, InvalidTaskId
from overlord.granularity import parse_granularity
from overlord.jackson import INT, LONG, token_text
from overlord.services.ids import MAX_ID_LENGTH, validate_id
from overlord.tasktypes import specs
from overlord.timeutil import (
    Interval,
    InvalidTime,
    parse_druid_datetime,
    parse_interval,
)

MAP_TYPE = "java.util.LinkedHashMap<java.lang.String,java.lang.Object>"
STRING_LIST = "java.util.ArrayList<java.lang.String>"

_TASK = "org.apache.druid.indexing.common.task."
_INPUT = "org.apache.druid.data.input.impl."


def _cannot(java_type: str, value: Any) -> ValidationError:
    return ValidationError(
        f"Cannot deserialize value of type `{java_type}` from {token_text(value)}"
    )


# ----------------------------------------------------------------------- scalars


class JavaString(fields.Field[str]):
    """``java.lang.String``: Jackson coerces scalars to their text, refuses
    objects and arrays."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kw: Any
    ) -> str:
        if isinstance(value, dict | list):
            raise _cannot("java.lang.String", value)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


class JavaInteger(fields.Field[int]):
    """A Java ``int``/``long`` (primitive or boxed): an integral JSON number in range.

    ``text``: accept a string holding an integer, as Jackson's scalar coercion does.
    Off where the task's run reads the stored value as a number (noop's ``runTime``,
    kill's ``batchSize``): there overlord refuses what Druid would coerce.
    """

    def __init__(
        self,
        kind: tuple[str, int, int],
        *,
        boxed: bool = False,
        text: bool = True,
        **kw: Any,
    ) -> None:
        super().__init__(allow_none=True, load_default=None, **kw)
        self.kind = kind
        name = kind[0]
        self.java_type = (
            {"long": "java.lang.Long", "int": "java.lang.Integer"}[name]
            if boxed
            else name
        )
        self.text = text

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kw: Any
    ) -> int:
        name, low, high = self.kind
        shown = str(value)
        if isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                number = None
            if number is None or not self.text:
                raise ValidationError(
                    f'Cannot deserialize value of type `{self.java_type}` from String "'
                    f'{value}": not a valid `{self.java_type}` value'
                )
            value = number
        if isinstance(value, bool) or not isinstance(value, int):
            raise _cannot(self.java_type, value)
        if not low <= value <= high:
            raise ValidationError(
                f"Numeric value ({shown}) out of range of {name} ({low} - {high})"
            )
        return value


class JavaBoolean(fields.Field[bool]):
    """``boolean``/``java.lang.Boolean``: JSON booleans, and the strings ``"true"``
    and ``"false"`` (Jackson's scalar coercion)."""

    def __init__(self, *, boxed: bool = True, **kw: Any) -> None:
        super().__init__(allow_none=True, load_default=None, **kw)
        self.java_type = "java.lang.Boolean" if boxed else "boolean"

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kw: Any
    ) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            if value in ("true", "false"):
                return value == "true"
            raise ValidationError(
                f'Cannot deserialize value of type `{self.java_type}` from String "'
                f'{value}": only "true" or "false" recognized'
            )
        raise _cannot(self.java_type, value)


class JavaMap(fields.Field[dict[str, Any]]):
    """``Map<String, Object>`` (``context``), kept as posted."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kw: Any
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _cannot_object(MAP_TYPE, value)
        return value


def _cannot_object(java_type: str, value: Any) -> ValidationError:
    """Jackson's text for a scalar where an object or container is expected: a
    string is named by its token, not its text."""
    if isinstance(value, str):
        return ValidationError(
            f"Cannot deserialize value of type `{java_type}` from String value "
            "(token `JsonToken.VALUE_STRING`)"
        )
    return _cannot(java_type, value)


class JavaList(fields.List[Any]):
    """``List<…>``: a JSON array (``ACCEPT_SINGLE_VALUE_AS_ARRAY`` is off).
    ``container_class`` names the collection in Jackson's reference chain."""

    def __init__(
        self,
        inner: fields.Field[Any],
        java_type: str,
        *,
        container_class: str = "java.util.ArrayList",
        **kw: Any,
    ) -> None:
        super().__init__(inner, allow_none=True, load_default=None, **kw)
        self.java_type = java_type
        self.container_class = container_class

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kw: Any
    ) -> list[Any]:
        if not isinstance(value, list):
            raise _cannot_object(self.java_type, value)
        return list(super()._deserialize(value, attr, data, **kw))


class JodaInterval(fields.Field[Interval]):
    """``org.joda.time.Interval``: Joda's own text for a bad ISO interval."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kw: Any
    ) -> Interval:
        if not isinstance(value, str):
            raise _cannot("org.joda.time.Interval", value)
        try:
            return parse_interval(value)
        except InvalidTime as error:
            raise ValidationError(str(error)) from None


class JodaDateTime(fields.Field[dt.datetime]):
    """``org.joda.time.DateTime``: Joda's ``Invalid format`` text."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kw: Any
    ) -> dt.datetime:
        if not isinstance(value, str):
            raise _cannot("org.joda.time.DateTime", value)
        try:
            return parse_druid_datetime(value)
        except InvalidTime as error:
            raise ValidationError(str(error)) from None


class DruidGranularity(fields.Field[str | dt.timedelta]):
    """``org.apache.druid.java.util.common.granularity.Granularity``: a name or a
    ``{"type": "period"…}`` object."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kw: Any
    ) -> str | dt.timedelta:
        if isinstance(value, list | bool):
            raise _cannot(
                "org.apache.druid.java.util.common.granularity.Granularity", value
            )
        try:
            return parse_granularity(value)
        except InvalidInput as error:
            raise ValidationError(error.message) from None


class OneOf(fields.Field[str]):
    """A Java enum (``NoopTask$IsReadyResult``)."""

    def __init__(self, java_type: str, values: tuple[str, ...], **kw: Any) -> None:
        super().__init__(allow_none=True, load_default=None, **kw)
        self.java_type = java_type
        self.values = values

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kw: Any
    ) -> str:
        if not isinstance(value, str):
            raise _cannot(self.java_type, value)
        if value not in self.values:
            raise ValidationError(
                f'Cannot deserialize value of type `{self.java_type}` from String "'
                f'{value}": not one of the values accepted for Enum class: '
                f"[{', '.join(self.values)}]"
            )
        return value


def _string(**kw: Any) -> JavaString:
    return JavaString(allow_none=True, load_default=None, **kw)


# ----------------------------------------------------------------- nested objects


class JavaSchema(Schema):
    """A Java class Jackson binds: ``java_class`` names it in reference chains."""

    java_class: ClassVar[str]

    class Meta:
        unknown = EXCLUDE


@functools.cache
def schema_instance(schema_class: type[JavaSchema]) -> JavaSchema:
    """One shared instance per schema class: marshmallow deep-copies every declared
    field when a schema is made, and a load keeps no state on the instance. Typed
    load (timeit, in process, loaded machine): ``{"type":"noop"}`` 89 → 18 µs,
    the index_parallel spec of tests/api/test_druid_submit.py 1070 → 227 µs."""
    return schema_class()


class JavaNested(fields.Field[Any]):
    """A nested (non-polymorphic) object."""

    def __init__(self, schema: type[JavaSchema], **kw: Any) -> None:
        super().__init__(allow_none=True, load_default=None, **kw)
        self.schema_class = schema

    def schema_for(self, value: Any) -> JavaSchema | None:
        return schema_instance(self.schema_class)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kw: Any
    ) -> Any:
        if not isinstance(value, dict):
            raise _cannot_object(self.schema_class.java_class, value)
        return schema_instance(self.schema_class).load(value)


def unknown_subtype(interface: str, name: str, known: list[str]) -> str:
    """Druid's text for an unresolvable ``type`` id (as for the task ``type``)."""
    return (
        f"Please make sure to load all the necessary extensions and jars with type "
        f"'{name}'. Could not resolve type id '{name}' as a subtype of "
        f"`{interface}` known type ids = [{', '.join(sorted(known))}]"
    )


def missing_subtype(interface: str) -> str:
    return (
        f"Could not resolve subtype of [simple type, class {interface}]: "
        "missing type id property 'type'"
    )


Subtypes = dict[str, tuple[type[JavaSchema], Callable[[str, Any, Any], Any]]]


class Polymorphic(fields.Field[Any]):
    """A ``@JsonTypeInfo(property = "type")`` interface resolved as Druid's object
    mapper does: ``subtypes`` maps each id overlord builds to its schema and a
    constructor of the typed value; ``known`` holds the other ids Druid registers
    (refused with ``unsupported``); ``default`` is the ``defaultImpl`` id."""

    def __init__(
        self,
        interface: str,
        subtypes: Subtypes | Callable[[], Subtypes],
        *,
        known: tuple[str, ...] = (),
        default: str | None = None,
        unsupported: str = "",
        from_string: Callable[[str], Any] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(allow_none=True, load_default=None, **kw)
        self.interface = interface
        self._subtypes = subtypes
        self.known = known
        self.default = default
        self.unsupported = unsupported
        self.from_string = from_string

    @property
    def subtypes(self) -> Subtypes:
        """The subtypes, resolved late for recursive types (filters in filters)."""
        return self._subtypes() if callable(self._subtypes) else self._subtypes

    def _type_id(self, value: Any) -> str | None:
        type_id = value.get("type", self.default)
        if type_id is None:
            return self.default
        if isinstance(type_id, str):
            return type_id
        return json.dumps(type_id, separators=(",", ":"))

    def schema_for(self, value: Any) -> JavaSchema | None:
        if not isinstance(value, dict):
            return None
        entry = self.subtypes.get(self._type_id(value) or "")
        return schema_instance(entry[0]) if entry else None

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kw: Any
    ) -> Any:
        if isinstance(value, str) and self.from_string is not None:
            return self.from_string(value)
        if not isinstance(value, dict):
            # As.PROPERTY type information needs an object.
            raise ValidationError(
                f"Unexpected token ({_token_name(value)}), expected START_OBJECT: "
                "need JSON Object to contain As.PROPERTY type information (for "
                f"class {self.interface})"
            )
        type_id = self._type_id(value)
        if type_id is None:
            raise ValidationError(missing_subtype(self.interface))
        entry = self.subtypes.get(type_id)
        if entry is None:
            if type_id in self.known:
                raise ValidationError(self.unsupported.format(type=type_id))
            raise ValidationError(
                unknown_subtype(self.interface, type_id, [*self.subtypes, *self.known])
            )
        schema_class, make = entry
        return make(type_id, schema_instance(schema_class).load(value), value)


def _token_name(value: Any) -> str:
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, str):
        return "VALUE_STRING"
    if isinstance(value, bool):
        return f"VALUE_{str(value).upper()}"
    if isinstance(value, float | Decimal):
        return "VALUE_NUMBER_FLOAT"
    return "VALUE_NUMBER_INT"


def _raw(kind: type[Any]) -> Callable[[str, Any, Any], Any]:
    """The typed value of an object overlord keeps as posted."""
    return lambda type_id, loaded, raw: kind(type=type_id, raw=raw)


def _loaded(type_id: str, loaded: Any, raw: Any) -> Any:
    return loaded


# --------------------------------------------------------------- input sources


class InlineSourceSchema(JavaSchema):
    java_class = _INPUT + "InlineInputSource"
    data = _string()


class LocalSourceSchema(JavaSchema):
    java_class = _INPUT + "LocalInputSource"
    base_dir = _string(data_key="baseDir")
    filter = _string()
    files = JavaList(JavaString(allow_none=True), "java.util.ArrayList<java.io.File>")


class HttpSourceSchema(JavaSchema):
    java_class = _INPUT + "HttpInputSource"
    uris = JavaList(JavaString(allow_none=True), "java.util.ArrayList<java.net.URI>")
    username = _string(data_key="httpAuthenticationUsername")


INPUT_SOURCE = "org.apache.druid.data.input.InputSource"
INPUT_SOURCES: dict[str, tuple[type[JavaSchema], Callable[[str, Any, Any], Any]]] = {
    "inline": (InlineSourceSchema, _raw(specs.InputSource)),
    "local": (LocalSourceSchema, _raw(specs.InputSource)),
    "http": (HttpSourceSchema, _raw(specs.InputSource)),
}
# The other ids Druid registers with no extension loaded: ``combining`` (InputSource's
# own @JsonSubTypes: local, http, inline, combining — processing/.../data/input/
# InputSource.java, checked against Druid master, 2025), ``sql`` (InputSourceModule),
# ``druid`` (the indexing service's IndexingServiceInputSourceModule).
OTHER_INPUT_SOURCES = ("combining", "druid", "sql")


class JsonFormatSchema(JavaSchema):
    java_class = _INPUT + "JsonInputFormat"
    keep_null_columns = JavaBoolean(data_key="keepNullColumns")
    assume_newline_delimited = JavaBoolean(data_key="assumeNewlineDelimited")
    use_json_node_reader = JavaBoolean(data_key="useJsonNodeReader")


class CsvFormatSchema(JavaSchema):
    java_class = _INPUT + "CsvInputFormat"
    columns = JavaList(JavaString(allow_none=True), STRING_LIST)
    list_delimiter = _string(data_key="listDelimiter")
    find_columns_from_header = JavaBoolean(data_key="findColumnsFromHeader")
    skip_header_rows = JavaInteger(INT, data_key="skipHeaderRows")


class TsvFormatSchema(CsvFormatSchema):
    java_class = _INPUT + "DelimitedInputFormat"
    delimiter = _string()


INPUT_FORMAT = "org.apache.druid.data.input.InputFormat"
INPUT_FORMATS: dict[str, tuple[type[JavaSchema], Callable[[str, Any, Any], Any]]] = {
    "json": (JsonFormatSchema, _raw(specs.InputFormat)),
    "csv": (CsvFormatSchema, _raw(specs.InputFormat)),
    "tsv": (TsvFormatSchema, _raw(specs.InputFormat)),
}
# InputFormat's @JsonSubTypes are csv, json, regex, tsv (processing/.../data/input/
# InputFormat.java, Druid master, 2025); the others need extensions.
OTHER_INPUT_FORMATS = ("regex",)

NOT_BUILT = "{kind} type [{{type}}] is not supported by overlord (only [{built}])"


# ------------------------------------------------------------------ data schema


class TimestampSpecSchema(JavaSchema):
    java_class = _INPUT + "TimestampSpec"
    column = _string()
    format = _string()
    missing_value = _string(data_key="missingValue")

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> specs.TimestampSpec:
        return specs.TimestampSpec(
            column=data.get("column"),
            format=data.get("format"),
            missing_value=data.get("missing_value"),
        )


class DimensionSchemaSchema(JavaSchema):
    java_class = _INPUT + "StringDimensionSchema"
    name = _string()


DIMENSION_SCHEMA = _INPUT + "DimensionSchema"
# DimensionSchema's @JsonSubTypes (processing/.../data/input/impl/DimensionSchema.java,
# Druid master, 2025): string, long, float, double, spatial, json and auto (both
# AutoTypeColumnSchema); no type means string.
DIMENSION_TYPES = ("string", "long", "float", "double")


def _dimension(type_id: str, loaded: Any, raw: Any) -> specs.DimensionSchema:
    name = loaded.get("name")
    if not name:
        # DimensionSchema's constructor: Preconditions.checkNotNull(name, ...).
        raise ValidationError(
            f"Cannot construct instance of `{DIMENSION_SCHEMA}`, problem: "
            "Dimension name cannot be null."
        )
    return specs.DimensionSchema(name=name, type=type_id)


class DimensionsSpecSchema(JavaSchema):
    java_class = _INPUT + "DimensionsSpec"
    dimensions = JavaList(
        Polymorphic(
            DIMENSION_SCHEMA,
            {name: (DimensionSchemaSchema, _dimension) for name in DIMENSION_TYPES},
            known=("auto", "json", "spatial"),
            default="string",
            unsupported=NOT_BUILT.format(
                kind="dimension", built=", ".join(DIMENSION_TYPES)
            ),
            from_string=lambda name: specs.DimensionSchema(name=name, type="string"),
        ),
        "java.util.ArrayList<" + DIMENSION_SCHEMA + ">",
    )
    dimension_exclusions = JavaList(
        JavaString(), STRING_LIST, data_key="dimensionExclusions"
    )
    include_all_dimensions = JavaBoolean(data_key="includeAllDimensions")
    use_schema_discovery = JavaBoolean(data_key="useSchemaDiscovery")

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> specs.DimensionsSpec:
        return specs.DimensionsSpec(
            dimensions=tuple(data.get("dimensions") or ()),
            dimension_exclusions=tuple(data.get("dimension_exclusions") or ()),
        )


AGGREGATOR = "org.apache.druid.query.aggregation.AggregatorFactory"
_AGG = "org.apache.druid.query.aggregation."
# The aggregators overlord computes, with their Java class.
AGGREGATORS = {
    "count": "CountAggregatorFactory",
    "longSum": "LongSumAggregatorFactory",
    "doubleSum": "DoubleSumAggregatorFactory",
    "floatSum": "FloatSumAggregatorFactory",
    "longMin": "LongMinAggregatorFactory",
    "longMax": "LongMaxAggregatorFactory",
    "doubleMin": "DoubleMinAggregatorFactory",
    "doubleMax": "DoubleMaxAggregatorFactory",
}
# Other ids Druid's core registers: AggregatorsModule.AggregatorFactoryMixin's
# @JsonSubTypes (processing/.../jackson/AggregatorsModule.java, Druid master, 2025).
OTHER_AGGREGATORS = (
    "cardinality",
    "doubleAny",
    "doubleFirst",
    "doubleLast",
    "doubleMean",
    "expression",
    "filtered",
    "floatAny",
    "floatFirst",
    "floatLast",
    "floatMax",
    "floatMin",
    "grouping",
    "histogram",
    "hyperUnique",
    "javascript",
    "longAny",
    "longFirst",
    "longLast",
    "singleValue",
    "stringAny",
    "stringFirst",
    "stringFirstFold",
    "stringLast",
    "stringLastFold",
)


def _aggregator_schema(type_id: str) -> type[JavaSchema]:
    return type(
        f"{type_id}Schema",
        (JavaSchema,),
        {
            "java_class": _AGG + AGGREGATORS[type_id],
            "name": _string(),
            "field_name": _string(data_key="fieldName"),
        },
    )


def _aggregator(type_id: str, loaded: Any, raw: Any) -> specs.Aggregator:
    name = loaded.get("name")
    if not name:
        # The aggregator factories' Preconditions.checkNotNull(name, ...).
        raise ValidationError(
            f"Cannot construct instance of `{_AGG + AGGREGATORS[type_id]}`, problem: "
            "Must have a valid, non-null aggregator name"
        )
    field_name = loaded.get("field_name")
    if type_id != "count" and field_name is None and raw.get("expression") is None:
        # SimpleAggregatorFactory: "Must have a valid, non-null fieldName or expression".
        raise ValidationError(
            f"Cannot construct instance of `{_AGG + AGGREGATORS[type_id]}`, problem: "
            "Must have a valid, non-null fieldName or expression"
        )
    return specs.Aggregator(type=type_id, name=name, field_name=field_name)


class UniformGranularitySchema(JavaSchema):
    java_class = "org.apache.druid.segment.indexing.granularity.UniformGranularitySpec"
    segment_granularity = DruidGranularity(
        allow_none=True, load_default=None, data_key="segmentGranularity"
    )
    query_granularity = DruidGranularity(
        allow_none=True, load_default=None, data_key="queryGranularity"
    )
    rollup = JavaBoolean()
    intervals = JavaList(JodaInterval(), "java.util.ArrayList<org.joda.time.Interval>")


class ArbitraryGranularitySchema(UniformGranularitySchema):
    java_class = (
        "org.apache.druid.segment.indexing.granularity.ArbitraryGranularitySpec"
    )


def _granularity(type_id: str, loaded: Any, raw: Any) -> specs.GranularitySpec:
    intervals = loaded.get("intervals")
    return specs.GranularitySpec(
        type=type_id,
        segment_granularity=loaded.get("segment_granularity"),
        query_granularity=loaded.get("query_granularity"),
        intervals=None if intervals is None else tuple(intervals),
        rollup=loaded.get("rollup"),
    )


DIM_FILTER = "org.apache.druid.query.filter.DimFilter"
_FILTER = "org.apache.druid.query.filter."


class SelectorFilterSchema(JavaSchema):
    java_class = _FILTER + "SelectorDimFilter"
    dimension = _string()
    value = _string()


class InFilterSchema(JavaSchema):
    java_class = _FILTER + "InDimFilter"
    dimension = _string()
    values = JavaList(
        JavaString(allow_none=True), "java.util.ArrayList<java.lang.String>"
    )


class BoundFilterSchema(JavaSchema):
    java_class = _FILTER + "BoundDimFilter"
    dimension = _string()
    lower = _string()
    upper = _string()
    lower_strict = JavaBoolean(data_key="lowerStrict")
    upper_strict = JavaBoolean(data_key="upperStrict")
    ordering = _string()


class EqualityFilterSchema(JavaSchema):
    java_class = _FILTER + "EqualityFilter"
    column = _string()


# Other ids of DimFilter's @JsonSubTypes (processing/.../query/filter/DimFilter.java,
# Druid master, 2025; ``isfalse``/``istrue`` since Druid 28).
OTHER_FILTERS = (
    "arrayContainsElement",
    "columnComparison",
    "expression",
    "extraction",
    "false",
    "interval",
    "isfalse",
    "istrue",
    "javascript",
    "like",
    "null",
    "range",
    "regex",
    "search",
    "spatial",
    "true",
)


def _filter_field(**kw: Any) -> Polymorphic:
    return Polymorphic(
        DIM_FILTER,
        lambda: FILTERS,
        known=OTHER_FILTERS,
        unsupported=(
            "filter type [{type}] is not supported by overlord (only [and, bound, "
            "equals, in, not, or, selector])"
        ),
        **kw,
    )


class NotFilterSchema(JavaSchema):
    java_class = _FILTER + "NotDimFilter"
    field = _filter_field()


class AndFilterSchema(JavaSchema):
    java_class = _FILTER + "AndDimFilter"
    fields_ = JavaList(
        _filter_field(), "java.util.ArrayList<" + DIM_FILTER + ">", data_key="fields"
    )


class OrFilterSchema(AndFilterSchema):
    java_class = _FILTER + "OrDimFilter"


FILTERS: dict[str, tuple[type[JavaSchema], Callable[[str, Any, Any], Any]]] = {
    "and": (AndFilterSchema, lambda type_id, loaded, raw: raw),
    "bound": (BoundFilterSchema, lambda type_id, loaded, raw: raw),
    "equals": (EqualityFilterSchema, lambda type_id, loaded, raw: raw),
    "in": (InFilterSchema, lambda type_id, loaded, raw: raw),
    "not": (NotFilterSchema, lambda type_id, loaded, raw: raw),
    "or": (OrFilterSchema, lambda type_id, loaded, raw: raw),
    "selector": (SelectorFilterSchema, lambda type_id, loaded, raw: raw),
}


class TransformSpecSchema(JavaSchema):
    java_class = "org.apache.druid.segment.transform.TransformSpec"
    filter = _filter_field()
    transforms = JavaList(
        JavaMap(), "java.util.ArrayList<org.apache.druid.segment.transform.Transform>"
    )

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> specs.TransformSpec:
        return specs.TransformSpec(
            filter=data.get("filter"), transforms=tuple(data.get("transforms") or ())
        )


# DataSchema's own check (a Preconditions.checkArgument in its constructor).
NO_DATASOURCE = "dataSource cannot be null or empty. Please provide a dataSource."


class DataSchemaSchema(JavaSchema):
    java_class = "org.apache.druid.segment.indexing.DataSchema"
    datasource = _string(data_key="dataSource")
    timestamp_spec = JavaNested(TimestampSpecSchema, data_key="timestampSpec")
    dimensions_spec = JavaNested(DimensionsSpecSchema, data_key="dimensionsSpec")
    metrics_spec = JavaList(
        Polymorphic(
            AGGREGATOR,
            {name: (_aggregator_schema(name), _aggregator) for name in AGGREGATORS},
            known=OTHER_AGGREGATORS,
            unsupported=NOT_BUILT.format(
                kind="aggregator", built=", ".join(AGGREGATORS)
            ),
        ),
        "[L" + AGGREGATOR + ";",
        data_key="metricsSpec",
    )
    granularity_spec = Polymorphic(
        "org.apache.druid.segment.indexing.granularity.GranularitySpec",
        {
            "uniform": (UniformGranularitySchema, _granularity),
            "arbitrary": (ArbitraryGranularitySchema, _granularity),
        },
        default="uniform",
        data_key="granularitySpec",
    )
    transform_spec = JavaNested(TransformSpecSchema, data_key="transformSpec")

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> specs.DataSchema:
        datasource = data.get("datasource")
        # DataSchema's constructor: the null/empty check, then
        # IdUtils.validateId("dataSource", …); Jackson wraps what it throws.
        problem = f"Cannot construct instance of `{self.java_class}`, problem: "
        if not datasource:
            raise ValidationError(problem + NO_DATASOURCE)
        try:
            validate_id("dataSource", datasource)
        except InvalidTaskId as error:
            # The length bound is overlord's column, not Druid's: the service answers
            # it (DruidException envelope) as for the other id fields.
            if not error.message.endswith(f"longer than {MAX_ID_LENGTH} characters."):
                raise ValidationError(problem + error.message) from None
        return specs.DataSchema(
            datasource=datasource,
            timestamp_spec=data.get("timestamp_spec"),
            dimensions_spec=data.get("dimensions_spec"),
            metrics_spec=tuple(data.get("metrics_spec") or ()),
            granularity_spec=data.get("granularity_spec"),
            transform_spec=data.get("transform_spec"),
        )


class IoConfigSchema(JavaSchema):
    java_class = _TASK + "IndexTask$IndexIOConfig"
    input_source = Polymorphic(
        INPUT_SOURCE,
        INPUT_SOURCES,
        known=OTHER_INPUT_SOURCES,
        unsupported=NOT_BUILT.format(
            kind="inputSource", built=", ".join(INPUT_SOURCES)
        ),
        data_key="inputSource",
    )
    input_format = Polymorphic(
        INPUT_FORMAT,
        INPUT_FORMATS,
        known=OTHER_INPUT_FORMATS,
        unsupported=NOT_BUILT.format(
            kind="inputFormat", built=", ".join(INPUT_FORMATS)
        ),
        data_key="inputFormat",
    )
    append_to_existing = JavaBoolean(data_key="appendToExisting")
    drop_existing = JavaBoolean(data_key="dropExisting")

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> specs.IoConfig:
        return specs.IoConfig(
            input_source=data.get("input_source"),
            input_format=data.get("input_format"),
            append_to_existing=data.get("append_to_existing"),
            drop_existing=data.get("drop_existing"),
        )


class ParallelIoConfigSchema(IoConfigSchema):
    java_class = _TASK + "batch.parallel.ParallelIndexIOConfig"


class DynamicPartitionsSchema(JavaSchema):
    java_class = "org.apache.druid.indexer.partitions.DynamicPartitionsSpec"
    max_rows_per_segment = JavaInteger(INT, boxed=True, data_key="maxRowsPerSegment")
    max_total_rows = JavaInteger(LONG, boxed=True, data_key="maxTotalRows")


def _partitions(type_id: str, loaded: Any, raw: Any) -> specs.PartitionsSpec:
    return specs.PartitionsSpec(
        type=type_id,
        max_rows_per_segment=loaded.get("max_rows_per_segment"),
        max_total_rows=loaded.get("max_total_rows"),
    )


class TuningConfigSchema(JavaSchema):
    java_class = _TASK + "IndexTask$IndexTuningConfig"
    max_rows_per_segment = JavaInteger(INT, boxed=True, data_key="maxRowsPerSegment")
    max_rows_in_memory = JavaInteger(INT, boxed=True, data_key="maxRowsInMemory")
    max_bytes_in_memory = JavaInteger(LONG, boxed=True, data_key="maxBytesInMemory")
    max_parse_exceptions = JavaInteger(INT, boxed=True, data_key="maxParseExceptions")
    log_parse_exceptions = JavaBoolean(data_key="logParseExceptions")
    partitions_spec = Polymorphic(
        "org.apache.druid.indexer.partitions.PartitionsSpec",
        {"dynamic": (DynamicPartitionsSchema, _partitions)},
        # PartitionsSpec's @JsonSubTypes (processing/.../indexer/partitions/
        # PartitionsSpec.java: dynamic, hashed, single_dim, "dimension" its old
        # name, and range since Druid 0.22); its defaultImpl is
        # HashedPartitionsSpec, so no type means hashed.
        known=("dimension", "hashed", "range", "single_dim"),
        default="hashed",
        unsupported=NOT_BUILT.format(kind="partitionsSpec", built="dynamic"),
        data_key="partitionsSpec",
    )
    max_num_concurrent_sub_tasks = JavaInteger(
        INT, boxed=True, data_key="maxNumConcurrentSubTasks"
    )

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> specs.TuningConfig:
        return specs.TuningConfig(
            max_rows_per_segment=data.get("max_rows_per_segment"),
            max_rows_in_memory=data.get("max_rows_in_memory"),
            max_bytes_in_memory=data.get("max_bytes_in_memory"),
            max_parse_exceptions=data.get("max_parse_exceptions"),
            log_parse_exceptions=data.get("log_parse_exceptions"),
            partitions_spec=data.get("partitions_spec"),
            max_num_concurrent_sub_tasks=data.get("max_num_concurrent_sub_tasks"),
        )


class ParallelTuningConfigSchema(TuningConfigSchema):
    java_class = _TASK + "batch.parallel.ParallelIndexTuningConfig"
    # An Integer in ParallelIndexTuningConfig (default 3); IndexTuningConfig does
    # not know it, so an ``index`` spec's maxRetry is ignored as Druid ignores it.
    max_retry = JavaInteger(INT, boxed=True, data_key="maxRetry")

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> specs.TuningConfig:
        loaded: specs.TuningConfig = super().make(data, **kw)
        return dataclasses.replace(loaded, max_retry=data.get("max_retry"))


class IngestionSpecSchema(JavaSchema):
    java_class = _TASK + "IndexTask$IndexIngestionSpec"
    data_schema = JavaNested(DataSchemaSchema, data_key="dataSchema")
    io_config = JavaNested(IoConfigSchema, data_key="ioConfig")
    tuning_config = JavaNested(TuningConfigSchema, data_key="tuningConfig")

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> specs.IngestionSpec:
        data_schema = data.get("data_schema")
        if data_schema is None:
            raise ValidationError(NO_DATASOURCE)
        return specs.IngestionSpec(
            data_schema=data_schema,
            io_config=data.get("io_config"),
            tuning_config=data.get("tuning_config"),
        )


class ParallelIngestionSpecSchema(IngestionSpecSchema):
    java_class = _TASK + "batch.parallel.ParallelIndexIngestionSpec"
    io_config = JavaNested(ParallelIoConfigSchema, data_key="ioConfig")
    tuning_config = JavaNested(ParallelTuningConfigSchema, data_key="tuningConfig")


# ------------------------------------------------------------------------ tasks


class TaskResourceSchema(JavaSchema):
    java_class = "org.apache.druid.indexing.common.task.TaskResource"
    availability_group = _string(data_key="availabilityGroup")
    required_capacity = JavaInteger(INT, data_key="requiredCapacity")


class TaskSchema(JavaSchema):
    """AbstractTask's properties, common to every type."""

    java_class = _TASK + "AbstractTask"
    id = _string()
    group_id = _string(data_key="groupId")
    datasource = _string(data_key="dataSource")
    context = JavaMap(allow_none=True, load_default=None)
    resource = JavaNested(TaskResourceSchema)


class NoopSchema(TaskSchema):
    java_class = _TASK + "NoopTask"
    # text=False: NoopTask's run reads runTime from the stored payload as a number.
    run_time = JavaInteger(LONG, text=False, data_key="runTime")
    is_ready_time = JavaInteger(LONG, text=False, data_key="isReadyTime")
    is_ready_result = OneOf(
        "NoopTask$IsReadyResult", ("YES", "NO", "EXCEPTION"), data_key="isReadyResult"
    )

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> specs.NoopSpec:
        return specs.NoopSpec(
            id=data.get("id"),
            group_id=data.get("group_id"),
            datasource=data.get("datasource"),
            run_time=data.get("run_time"),
            is_ready_time=data.get("is_ready_time"),
            is_ready_result=data.get("is_ready_result"),
            context=data.get("context"),
        )


class KillSchema(TaskSchema):
    java_class = _TASK + "KillUnusedSegmentsTask"
    interval = JodaInterval(allow_none=True, load_default=None)
    versions = JavaList(JavaString(allow_none=True), STRING_LIST)
    mark_as_unused = JavaBoolean(data_key="markAsUnused")
    # text=False: the kill run reads batchSize and limit as numbers.
    batch_size = JavaInteger(INT, boxed=True, text=False, data_key="batchSize")
    limit = JavaInteger(INT, boxed=True, text=False)
    max_used_status_last_updated_time = JodaDateTime(
        allow_none=True, load_default=None, data_key="maxUsedStatusLastUpdatedTime"
    )

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> specs.KillSpec:
        # The constructors' checks in their order: AbstractTask's
        # Preconditions.checkNotNull(dataSource, ...), AbstractFixedIntervalTask's
        # checkNotNull(interval, ...) and checkArgument(… > 0, "interval empty"),
        # then KillUnusedSegmentsTask's InvalidInput for batchSize and limit.
        problem = f"Cannot construct instance of `{self.java_class}`, problem: "
        if not data.get("datasource"):
            raise ValidationError(problem + "dataSource")
        interval = data.get("interval")
        if interval is None:
            raise ValidationError(problem + "interval")
        if interval.start == interval.end:
            raise ValidationError(problem + "interval empty")
        for key, name in (("batch_size", "batchSize"), ("limit", "limit")):
            value = data.get(key)
            if value is not None and value <= 0:
                raise ValidationError(
                    problem + f"{name}[{value}] must be a positive integer."
                )
        versions = data.get("versions")
        return specs.KillSpec(
            id=data.get("id"),
            group_id=data.get("group_id"),
            datasource=data.get("datasource"),
            interval=interval,
            versions=None if versions is None else tuple(versions),
            mark_as_unused=data.get("mark_as_unused"),
            batch_size=data.get("batch_size"),
            limit=data.get("limit"),
            max_used_status_last_updated_time=data.get(
                "max_used_status_last_updated_time"
            ),
            context=data.get("context"),
        )


class IndexSchema(TaskSchema):
    java_class = _TASK + "IndexTask"
    spec = JavaNested(IngestionSpecSchema)

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> specs.IndexSpec:
        spec = data.get("spec")
        if spec is None:
            # IndexTask's constructor (the text overlord answered before the model).
            raise ValidationError("spec must not be null")
        return specs.IndexSpec(
            type="index",
            id=data.get("id"),
            group_id=data.get("group_id"),
            spec=spec,
            context=data.get("context"),
        )


class IndexParallelSchema(IndexSchema):
    java_class = _TASK + "batch.parallel.ParallelIndexSupervisorTask"
    spec = JavaNested(ParallelIngestionSpecSchema)

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> specs.IndexSpec:
        loaded = super().make(data, **kw)
        return specs.IndexSpec(
            type="index_parallel",
            id=loaded.id,
            group_id=loaded.group_id,
            spec=loaded.spec,
            context=loaded.context,
        )


class SinglePhaseSubTaskSchema(TaskSchema):
    java_class = _TASK + "batch.parallel.SinglePhaseSubTask"
    supervisor_task_id = _string(data_key="supervisorTaskId")
    subtask_spec_id = _string(data_key="subtaskSpecId")
    # A primitive int: absent or null binds 0.
    num_attempts = JavaInteger(INT, data_key="numAttempts")
    spec = JavaNested(ParallelIngestionSpecSchema)

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> specs.SinglePhaseSubTaskSpec:
        spec = data.get("spec")
        if spec is None:
            # The constructor reads spec.getDataSchema() first: a null spec is an
            # NPE Jackson wraps without a message.
            raise ValidationError(
                f"Cannot construct instance of `{self.java_class}`, problem: "
                "java.lang.NullPointerException"
            )
        return specs.SinglePhaseSubTaskSpec(
            id=data.get("id"),
            group_id=data.get("group_id"),
            supervisor_task_id=data.get("supervisor_task_id"),
            subtask_spec_id=data.get("subtask_spec_id"),
            num_attempts=data.get("num_attempts") or 0,
            spec=spec,
            context=data.get("context"),
        )


TASK_SCHEMAS: dict[str, type[JavaSchema]] = {
    "noop": NoopSchema,
    "kill": KillSchema,
    "index": IndexSchema,
    "index_parallel": IndexParallelSchema,
    "single_phase_sub_task": SinglePhaseSubTaskSchema,
}


def load_task_spec(document: Any) -> specs.TaskSpec | None:
    """The typed spec of a posted task, or None when its ``type`` is not one the
    model knows (the service then answers the missing or unknown ``type`` first, as
    Druid resolves the task's subtype before reading any property).

    Raises:
        ValidationError: what Druid's Jackson refuses; its one message is the text
            of Jackson's first error in document order, with the reference chain.
    """
    if not isinstance(document, dict):
        return None
    type_name = document.get("type")
    schema_class = TASK_SCHEMAS.get(type_name) if isinstance(type_name, str) else None
    if schema_class is None:
        return None
    schema = schema_instance(schema_class)
    try:
        loaded: specs.TaskSpec = schema.load(document)
    except ValidationError as error:
        raise ValidationError(_first_error(schema, document, error.messages)) from None
    return loaded


def _first_error(schema: JavaSchema, document: Any, messages: Any) -> str:
    """Jackson's text for the first error in document order: the message, then the
    reference chain from the task class to the property."""
    chain: list[str] = []
    current_schema: JavaSchema | None = schema
    current_field: fields.Field[Any] | None = None
    data = document
    while isinstance(messages, dict):
        key = _first_key(messages, data)
        messages = messages[key]
        if key == "_schema":
            # A constructor's own check: Jackson's chain ends at the object.
            break
        if isinstance(key, int):
            container = getattr(current_field, "container_class", "java.util.ArrayList")
            chain.append(f"{container}[{key}]")
            data = data[key] if isinstance(data, list) and key < len(data) else None
            current_field = (
                current_field.inner if isinstance(current_field, fields.List) else None
            )
        else:
            owner = current_schema.java_class if current_schema else "java.lang.Object"
            chain.append(f'{owner}["{key}"]')
            current_field = (
                _field_by_key(current_schema, key) if current_schema else None
            )
            data = data.get(key) if isinstance(data, dict) else None
        current_schema = (
            current_field.schema_for(data)
            if isinstance(current_field, JavaNested | Polymorphic)
            else None
        )
    message = messages[0] if isinstance(messages, list) else str(messages)
    if not chain:
        return str(message)
    return f"{message} (through reference chain: {'->'.join(chain)})"


# The reference-chain builder other Jackson-shaped loaders share (task actions).
first_error = _first_error


def _first_key(messages: dict[Any, Any], data: Any) -> Any:
    """The failing key that comes first in the posted document; a key absent from
    it (a constructor's null check) comes after those present."""
    if isinstance(data, dict):
        for key in data:
            if key in messages:
                return key
    if isinstance(data, list):
        for index in range(len(data)):
            if index in messages:
                return index
    return next(iter(messages))


def _field_by_key(schema: JavaSchema, key: str) -> fields.Field[Any] | None:
    for name, field in schema.fields.items():
        if (field.data_key or name) == key:
            return field
    return None
