"""The typed task model: what a submitted task spec holds, as Druid's Jackson binds it.

Pure frozen dataclasses (no marshmallow): ``overlord/schemas/task_specs.py`` loads a
posted document into them at submit, refusing what Druid refuses. The stored payload
stays the posted text: the model validates and gives typed access, it never rewrites a
spec, and fields it does not model are kept as posted (``raw``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from overlord.timeutil import Interval

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class NoopSpec:
    """Druid's NoopTask."""

    id: str | None
    group_id: str | None
    datasource: str | None
    run_time: int | None
    is_ready_time: int | None
    is_ready_result: str | None
    context: JsonObject | None


@dataclass(frozen=True)
class KillSpec:
    """Druid's KillUnusedSegmentsTask."""

    id: str | None
    group_id: str | None
    datasource: str | None
    interval: Interval
    versions: tuple[str, ...] | None
    mark_as_unused: bool | None
    batch_size: int | None
    limit: int | None
    max_used_status_last_updated_time: dt.datetime | None
    context: JsonObject | None


@dataclass(frozen=True)
class InputSource:
    """``inline`` (``data``), ``local`` (``baseDir``/``filter`` or ``files``), ``http``
    (``uris``); ``raw`` is the posted object."""

    type: str
    raw: JsonObject


@dataclass(frozen=True)
class InputFormat:
    """``json``, ``csv``, ``tsv``; ``raw`` is the posted object."""

    type: str
    raw: JsonObject


@dataclass(frozen=True)
class TimestampSpec:
    column: str | None
    format: str | None
    missing_value: str | None


@dataclass(frozen=True)
class DimensionSchema:
    name: str
    type: str


@dataclass(frozen=True)
class DimensionsSpec:
    dimensions: tuple[DimensionSchema, ...]
    dimension_exclusions: tuple[str, ...]


@dataclass(frozen=True)
class Aggregator:
    type: str
    name: str
    field_name: str | None


@dataclass(frozen=True)
class GranularitySpec:
    type: str
    segment_granularity: str | dt.timedelta | None
    query_granularity: str | dt.timedelta | None
    intervals: tuple[Interval, ...] | None
    rollup: bool | None


@dataclass(frozen=True)
class TransformSpec:
    filter: JsonObject | None
    transforms: tuple[JsonObject, ...]


@dataclass(frozen=True)
class DataSchema:
    datasource: str
    timestamp_spec: TimestampSpec | None
    dimensions_spec: DimensionsSpec | None
    metrics_spec: tuple[Aggregator, ...]
    granularity_spec: GranularitySpec | None
    transform_spec: TransformSpec | None


@dataclass(frozen=True)
class IoConfig:
    input_source: InputSource | None
    input_format: InputFormat | None
    append_to_existing: bool | None
    drop_existing: bool | None


@dataclass(frozen=True)
class PartitionsSpec:
    type: str
    max_rows_per_segment: int | None
    max_total_rows: int | None


@dataclass(frozen=True)
class TuningConfig:
    max_rows_per_segment: int | None
    max_rows_in_memory: int | None
    max_bytes_in_memory: int | None
    max_parse_exceptions: int | None
    log_parse_exceptions: bool | None
    partitions_spec: PartitionsSpec | None
    max_num_concurrent_sub_tasks: int | None
    max_retry: int | None = None


@dataclass(frozen=True)
class IngestionSpec:
    data_schema: DataSchema
    io_config: IoConfig | None
    tuning_config: TuningConfig | None


@dataclass(frozen=True)
class IndexSpec:
    """Druid's IndexTask and ParallelIndexSupervisorTask (``type`` tells which)."""

    type: str
    id: str | None
    group_id: str | None
    spec: IngestionSpec
    context: JsonObject | None


@dataclass(frozen=True)
class SinglePhaseSubTaskSpec:
    """Druid's SinglePhaseSubTask: an ``index_parallel`` supervisor's worker task
    (the supervisor submits it; a user may post one too, as Druid accepts it)."""

    id: str | None
    group_id: str | None
    supervisor_task_id: str | None
    subtask_spec_id: str | None
    num_attempts: int
    spec: IngestionSpec
    context: JsonObject | None


TaskSpec = NoopSpec | KillSpec | IndexSpec | SinglePhaseSubTaskSpec
