"""Load the ``action`` of a ``POST /action`` body (Druid's TaskActionHolder) into the
typed actions of :mod:`overlord.taskactions`, refusing what Druid's Jackson refuses
with Jackson's texts (the field types of the typed task spec model).

The reference chain starts at ``TaskActionHolder["action"]``, the property Jackson
was binding. Unknown properties are ignored, as Druid's object mapper does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, post_load

from overlord.errors import InvalidInput
from overlord.jackson import INT, LONG, token_text
from overlord.schemas.task_specs import (
    STRING_LIST,
    DruidGranularity,
    JavaBoolean,
    JavaInteger,
    JavaList,
    JavaMap,
    JavaNested,
    JavaSchema,
    JavaString,
    JodaDateTime,
    JodaInterval,
    OneOf,
    Polymorphic,
    Subtypes,
    first_error,
)
from overlord.segments import (
    DataSegment,
    LockGranularity,
    LockType,
    ShardKind,
    ShardSpec,
    split_names,
)
from overlord.taskactions import (
    LockAcquire,
    LockList,
    LockRelease,
    LockTryAcquire,
    SegmentAllocate,
    SegmentInsertion,
    SegmentListUnused,
    SegmentListUsed,
    SegmentNuke,
    SegmentTransactionalInsert,
    SurrogateAction,
    TaskAction,
    Visibility,
)

_ACTIONS = "org.apache.druid.indexing.common.actions."
HOLDER_CHAIN = f'{_ACTIONS}TaskActionHolder["action"]'
_PARTITION = "org.apache.druid.timeline.partition."
CHAIN = " (through reference chain: "


class StorableString(JavaString):
    """A ``java.lang.String`` overlord stores or queries: no NUL (PostgreSQL refuses
    it in text, even as a query parameter; Druid's own store would take it)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kw: Any
    ) -> str:
        text = super()._deserialize(value, attr, data, **kw)
        if "\x00" in text:
            raise ValidationError("Invalid value: contains NUL")
        return text


def _string(**kw: Any) -> JavaString:
    return StorableString(allow_none=True, load_default=None, **kw)


def _interval(**kw: Any) -> JodaInterval:
    return JodaInterval(allow_none=True, load_default=None, **kw)


def _lock_type(**kw: Any) -> OneOf:
    return OneOf(
        "org.apache.druid.indexing.common.TaskLockType",
        tuple(LockType),
        **kw,
    )


def _constructor(java_class: str, problem: str) -> ValidationError:
    """Jackson's text for an exception thrown by a constructor."""
    return ValidationError(
        f"Cannot construct instance of `{java_class}`, problem: {problem}"
    )


def _missing_interval(key: str = "interval") -> ValidationError:
    # Druid's lock actions NPE later (a 500); overlord refuses the action instead.
    return ValidationError(f"Missing required creator property '{key}'")


class Raw(fields.Field[Any]):
    """A property overlord keeps as posted (``startMetadata``…)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kw: Any
    ) -> Any:
        return value


class CommaList(fields.Field[tuple[str, ...]]):
    """DataSegment's ``dimensions``/``metrics`` (Druid's CommaListJoinDeserializer):
    a comma-joined string; a list of names is taken too."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kw: Any
    ) -> tuple[str, ...]:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return split_names(value)
        if isinstance(value, str):
            return split_names(value)
        raise ValidationError(
            "Cannot deserialize value of type `java.util.List<java.lang.String>` from "
            + token_text(value)
        )


# -------------------------------------------------------------------- shard specs


class NumberedShardSpecSchema(JavaSchema):
    java_class = _PARTITION + "NumberedShardSpec"
    partition_num = JavaInteger(INT, data_key="partitionNum")
    partitions = JavaInteger(INT)

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> ShardSpec:
        partition_num = data.get("partition_num") or 0
        partitions = data.get("partitions") or 0
        # NumberedShardSpec's Preconditions.checkArgument texts.
        if partition_num < 0:
            raise _constructor(self.java_class, "partitionNum >= 0")
        if partitions < 0:
            raise _constructor(self.java_class, "partitions >= 0")
        return ShardSpec(ShardKind.NUMBERED, partition_num, partitions)


class LinearShardSpecSchema(JavaSchema):
    java_class = _PARTITION + "LinearShardSpec"
    partition_num = JavaInteger(INT, boxed=True, data_key="partitionNum")

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> ShardSpec:
        partition_num = data.get("partition_num")
        if partition_num is None:
            raise _constructor(
                self.java_class, "Must set partitionNum on LinearShardSpec"
            )
        if partition_num < 0:
            raise _constructor(self.java_class, "partitionNum >= 0")
        return ShardSpec(ShardKind.LINEAR, partition_num, 0)


class NoneShardSpecSchema(JavaSchema):
    java_class = _PARTITION + "NoneShardSpec"

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> ShardSpec:
        return ShardSpec(ShardKind.NONE, 0, 0)


def _loaded(type_id: str, loaded: Any, raw: Any) -> Any:
    return loaded


SHARD_SPECS: Subtypes = {
    "numbered": (NumberedShardSpecSchema, _loaded),
    "linear": (LinearShardSpecSchema, _loaded),
    "none": (NoneShardSpecSchema, _loaded),
}
# The other ShardSpec ids Druid registers (``ShardSpec``'s @JsonSubTypes).
OTHER_SHARD_SPECS = (
    "bucket_hash",
    "bucket_range",
    "bucket_single_dim",
    "building_hashed",
    "building_numbered",
    "building_range",
    "building_single_dim",
    "hashed",
    "numbered_overwrite",
    "range",
    "single",
    "tombstone",
)


# ------------------------------------------------------------------- data segments


class DataSegmentSchema(JavaSchema):
    java_class = "org.apache.druid.timeline.DataSegment"
    datasource = _string(data_key="dataSource")
    interval = _interval()
    version = _string()
    load_spec = JavaMap(
        allow_none=True,
        load_default=None,
        data_key="loadSpec",
    )
    dimensions = CommaList(allow_none=True, load_default=None)
    metrics = CommaList(allow_none=True, load_default=None)
    shard_spec = Polymorphic(
        "org.apache.druid.timeline.partition.ShardSpec",
        SHARD_SPECS,
        known=OTHER_SHARD_SPECS,
        unsupported="shardSpec type [{type}] is not supported by overlord (only "
        "[linear, none, numbered])",
        data_key="shardSpec",
    )
    binary_version = JavaInteger(INT, boxed=True, data_key="binaryVersion")
    size = JavaInteger(LONG)
    last_compaction_state = Raw(data_key="lastCompactionState")
    projections = Raw()
    compaction_state_fingerprint = Raw(data_key="compactionStateFingerprint")

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> DataSegment:
        # DataSegment's constructor builds its SegmentId, which needs these.
        for key, problem in (
            ("datasource", "Datasource is not specified"),
            ("interval", "interval"),
            ("version", "version"),
        ):
            if data.get(key) is None:
                raise _constructor(self.java_class, problem)
        extra = {
            "lastCompactionState": data.get("last_compaction_state"),
            "projections": data.get("projections"),
            "compactionStateFingerprint": data.get("compaction_state_fingerprint"),
        }
        return DataSegment(
            datasource=data["datasource"],
            interval=data["interval"],
            version=data["version"],
            load_spec=data.get("load_spec"),
            dimensions=data.get("dimensions") or (),
            metrics=data.get("metrics") or (),
            shard_spec=data.get("shard_spec") or ShardSpec(ShardKind.NUMBERED, 0, 1),
            binary_version=data.get("binary_version"),
            size=data.get("size") or 0,
            extra=tuple((k, v) for k, v in extra.items() if v is not None),
        )


class SegmentsField(JavaList):
    """``Set<DataSegment>``."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(
            JavaNested(DataSegmentSchema),
            "java.util.Set<org.apache.druid.timeline.DataSegment>",
            container_class="java.util.HashSet",
            **kw,
        )


# ------------------------------------------------------------------------ actions


class ActionSchema(JavaSchema):
    """One task action class; ``make`` builds its dataclass."""

    action: ClassVar[type[TaskAction]]


class LockTryAcquireSchema(ActionSchema):
    java_class = _ACTIONS + "TimeChunkLockTryAcquireAction"
    action = LockTryAcquire
    lock_type = _lock_type(data_key="lockType")
    interval = _interval()

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> TaskAction:
        if data.get("interval") is None:
            raise _missing_interval()
        return LockTryAcquire(
            interval=data["interval"],
            lock_type=LockType(data.get("lock_type") or LockType.EXCLUSIVE),
        )


class LockAcquireSchema(ActionSchema):
    java_class = _ACTIONS + "TimeChunkLockAcquireAction"
    action = LockAcquire
    lock_type = _lock_type(data_key="lockType")
    interval = _interval()
    timeout_ms = JavaInteger(LONG, data_key="timeoutMs")

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> TaskAction:
        if data.get("interval") is None:
            raise _missing_interval()
        return LockAcquire(
            interval=data["interval"],
            lock_type=LockType(data.get("lock_type") or LockType.EXCLUSIVE),
            timeout_ms=data.get("timeout_ms") or 0,
        )


class LockReleaseSchema(ActionSchema):
    java_class = _ACTIONS + "LockReleaseAction"
    action = LockRelease
    interval = _interval()

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> TaskAction:
        if data.get("interval") is None:
            raise _missing_interval()
        return LockRelease(interval=data["interval"])


class LockListSchema(ActionSchema):
    java_class = _ACTIONS + "LockListAction"
    action = LockList

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> TaskAction:
        return LockList()


class SegmentListUsedSchema(ActionSchema):
    java_class = _ACTIONS + "RetrieveUsedSegmentsAction"
    action = SegmentListUsed
    datasource = _string(data_key="dataSource")
    interval = _interval()
    intervals = JavaList(
        JodaInterval(allow_none=True), "java.util.ArrayList<org.joda.time.Interval>"
    )
    visibility = OneOf("org.apache.druid.indexing.overlord.Segments", Visibility.ALL)

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> TaskAction:
        intervals = data.get("intervals")
        if intervals is None and data.get("interval") is not None:
            intervals = [data["interval"]]
        if not intervals or any(interval is None for interval in intervals):
            raise ValidationError("no intervals given")
        return SegmentListUsed(
            datasource=data.get("datasource"),
            intervals=tuple(intervals),
            visibility=data.get("visibility") or Visibility.ONLY_VISIBLE,
        )


class SegmentListUnusedSchema(ActionSchema):
    java_class = _ACTIONS + "RetrieveUnusedSegmentsAction"
    action = SegmentListUnused
    datasource = _string(data_key="dataSource")
    interval = _interval()
    versions = JavaList(StorableString(allow_none=True), STRING_LIST)
    limit = JavaInteger(INT, boxed=True)
    max_used_status_last_updated_time = JodaDateTime(
        allow_none=True, load_default=None, data_key="maxUsedStatusLastUpdatedTime"
    )

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> TaskAction:
        if data.get("interval") is None:
            raise ValidationError("no intervals given")
        versions = data.get("versions")
        limit = data.get("limit")
        return SegmentListUnused(
            datasource=data.get("datasource"),
            interval=data["interval"],
            versions=None if versions is None else tuple(versions),
            # A limit that is not positive lists everything, as before the model.
            limit=limit if limit is not None and limit > 0 else None,
            max_used_status_last_updated_time=data.get(
                "max_used_status_last_updated_time"
            ),
        )


class NumberedPartialShardSpecSchema(JavaSchema):
    java_class = _PARTITION + "NumberedPartialShardSpec"


class NumberedOverwritePartialShardSpecSchema(JavaSchema):
    java_class = _PARTITION + "NumberedOverwritePartialShardSpec"


PARTIAL_SHARD_SPECS: Subtypes = {
    "numbered": (NumberedPartialShardSpecSchema, lambda t, loaded, raw: t),
    "numbered_overwrite": (
        NumberedOverwritePartialShardSpecSchema,
        lambda t, loaded, raw: t,
    ),
}


class SegmentAllocateSchema(ActionSchema):
    java_class = _ACTIONS + "SegmentAllocateAction"
    action = SegmentAllocate
    datasource = _string(data_key="dataSource")
    timestamp = JodaDateTime(allow_none=True, load_default=None)
    query_granularity = DruidGranularity(
        allow_none=True, load_default=None, data_key="queryGranularity"
    )
    preferred_segment_granularity = DruidGranularity(
        allow_none=True, load_default=None, data_key="preferredSegmentGranularity"
    )
    sequence_name = _string(data_key="sequenceName")
    previous_segment_id = _string(data_key="previousSegmentId")
    skip_segment_lineage_check = JavaBoolean(
        boxed=False, data_key="skipSegmentLineageCheck"
    )
    shard_spec_factory = Polymorphic(
        _PARTITION + "PartialShardSpec",
        PARTIAL_SHARD_SPECS,
        known=("hashed", "range", "single_dim"),
        unsupported="shardSpecFactory type [{type}] is not supported by overlord "
        "(only [numbered, numbered_overwrite])",
        data_key="shardSpecFactory",
    )
    lock_granularity = OneOf(
        "org.apache.druid.indexing.common.LockGranularity",
        tuple(LockGranularity),
        data_key="lockGranularity",
    )
    task_lock_type = _lock_type(data_key="taskLockType")

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> TaskAction:
        # SegmentAllocateAction's Preconditions.checkNotNull(value, name) calls.
        for key, name in (
            ("datasource", "dataSource"),
            ("timestamp", "timestamp"),
            ("query_granularity", "queryGranularity"),
            ("preferred_segment_granularity", "preferredSegmentGranularity"),
            ("sequence_name", "sequenceName"),
        ):
            if data.get(key) is None:
                raise _constructor(self.java_class, name)
        return SegmentAllocate(
            datasource=data["datasource"],
            timestamp=data["timestamp"],
            query_granularity=data["query_granularity"],
            preferred_segment_granularity=data["preferred_segment_granularity"],
            sequence_name=data["sequence_name"],
            previous_segment_id=data.get("previous_segment_id"),
            skip_segment_lineage_check=bool(data.get("skip_segment_lineage_check")),
            overwrite=data.get("shard_spec_factory") == "numbered_overwrite",
            lock_granularity=LockGranularity(
                data.get("lock_granularity") or LockGranularity.TIME_CHUNK
            ),
            task_lock_type=LockType(data.get("task_lock_type") or LockType.EXCLUSIVE),
        )


def _segments(data: dict[str, Any]) -> tuple[DataSegment, ...]:
    segments = data.get("segments")
    if segments is None or any(segment is None for segment in segments):
        # Druid reads a missing set as empty; overlord refuses it (as before the
        # model) rather than publish nothing.
        raise ValidationError("'segments' must be a list of segments")
    return tuple(dict.fromkeys(segments))


class SegmentTransactionalInsertSchema(ActionSchema):
    java_class = _ACTIONS + "SegmentTransactionalInsertAction"
    action = SegmentTransactionalInsert
    segments_to_be_overwritten = SegmentsField(data_key="segmentsToBeOverwritten")
    segments = SegmentsField()
    start_metadata = Raw(data_key="startMetadata")
    end_metadata = Raw(data_key="endMetadata")
    datasource = _string(data_key="dataSource")
    segment_schema_mapping = Raw(data_key="segmentSchemaMapping")

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> TaskAction:
        overwritten = data.get("segments_to_be_overwritten")
        return SegmentTransactionalInsert(
            segments=_segments(data),
            segments_to_be_overwritten=None
            if overwritten is None
            else tuple(dict.fromkeys(overwritten)),
            start_metadata=data.get("start_metadata"),
            end_metadata=data.get("end_metadata"),
            datasource=data.get("datasource"),
        )


class SegmentInsertionSchema(ActionSchema):
    java_class = _ACTIONS + "SegmentInsertAction"
    action = SegmentInsertion
    segments = SegmentsField()
    segment_schema_mapping = Raw(data_key="segmentSchemaMapping")

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> TaskAction:
        return SegmentInsertion(segments=_segments(data))


class SegmentNukeSchema(ActionSchema):
    java_class = _ACTIONS + "SegmentNukeAction"
    action = SegmentNuke
    segments = SegmentsField()

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> TaskAction:
        return SegmentNuke(segments=_segments(data))


def _inner_actions() -> Subtypes:
    return {
        type_id: (schema, _loaded)
        for type_id, schema in ACTION_SCHEMAS.items()
        if type_id != SurrogateAction.type
    }


class SurrogateActionSchema(ActionSchema):
    java_class = _ACTIONS + "SurrogateAction"
    action = SurrogateAction
    surrogate_id = _string(data_key="surrogateId")
    task_action = Polymorphic(
        _ACTIONS + "TaskAction", _inner_actions, data_key="taskAction"
    )

    @post_load
    def make(self, data: dict[str, Any], **kw: Any) -> TaskAction:
        if not data.get("surrogate_id"):
            raise ValidationError("Missing required creator property 'surrogateId'")
        if data.get("task_action") is None:
            raise ValidationError("Missing required creator property 'taskAction'")
        return SurrogateAction(data["surrogate_id"], data["task_action"])


ACTION_SCHEMAS: dict[str, type[ActionSchema]] = {
    schema.action.type: schema
    for schema in (
        LockAcquireSchema,
        LockTryAcquireSchema,
        LockReleaseSchema,
        LockListSchema,
        SegmentListUsedSchema,
        SegmentListUnusedSchema,
        SegmentAllocateSchema,
        SegmentTransactionalInsertSchema,
        SegmentInsertionSchema,
        SegmentNukeSchema,
        SurrogateActionSchema,
    )
}


def load_action(document: Any) -> TaskAction:
    """The typed action of a TaskActionHolder's ``action`` object.

    Raises:
        InvalidInput: an unknown action ``type`` (HTTP 400).
        ValidationError: what Druid's Jackson refuses; its one message is Jackson's
            text for the first error in document order, with the reference chain.
    """
    if not isinstance(document, dict):
        raise InvalidInput("'task' and 'action' must be JSON objects")
    kind = document.get("type")
    schema_class = ACTION_SCHEMAS.get(kind) if isinstance(kind, str) else None
    if schema_class is None:
        raise InvalidInput(
            f"Could not resolve type id '{kind}' as a subtype of `TaskAction`: "
            f"known type ids = [{', '.join(sorted(ACTION_SCHEMAS))}]"
        )
    schema: Schema = schema_class()
    try:
        loaded: TaskAction = schema.load(document)
    except ValidationError as error:
        message = first_error(schema_class(), document, error.messages)
        raise ValidationError(_from_holder(message)) from None
    return loaded


def _from_holder(message: str) -> str:
    """Jackson's chain starts at the holder's ``action`` property. A check of
    overlord's own (no chain, not a constructor's) stays as it is."""
    if CHAIN in message:
        return message.replace(CHAIN, f"{CHAIN}{HOLDER_CHAIN}->", 1)
    if message.startswith("Cannot construct instance of"):
        return f"{message}{CHAIN}{HOLDER_CHAIN})"
    return message
