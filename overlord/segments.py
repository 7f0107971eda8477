"""Druid's segment and lock value types, shared by ``POST /action``, the task
runtime, task code, ingestion and the store: ``SegmentId`` (the one builder and
parser of Druid's segment id text), ``ShardSpec``, ``DataSegment``,
``SegmentIdWithShardSpec``, ``LockType`` and ``LockGranularity``.

Leaf module: imports only :mod:`overlord.jackson` and :mod:`overlord.timeutil`. Every type is a frozen value;
``to_json`` writes Druid's JSON (Jackson's field order) and ``from_json`` reads
documents overlord itself stored (wire input is loaded and checked by the
marshmallow schemas of ``overlord.schemas.actions``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from overlord.jackson import JAVA_INT_MAX
from overlord.timeutil import (
    Interval,
    InvalidTime,
    format_druid,
    parse_druid_datetime,
    parse_interval,
)

JsonObject = dict[str, Any]


class LockType(enum.StrEnum):
    """Druid's TaskLockType (``KILL`` is the newest Overlords' embedded-kill type)."""

    EXCLUSIVE = "EXCLUSIVE"
    SHARED = "SHARED"
    REPLACE = "REPLACE"
    APPEND = "APPEND"


class LockGranularity(enum.StrEnum):
    """Druid's LockGranularity (the ``lockGranularity`` of ``segmentAllocate``)."""

    TIME_CHUNK = "TIME_CHUNK"
    SEGMENT = "SEGMENT"


# --------------------------------------------------------------------- shard specs


class ShardKind(enum.StrEnum):
    """The ShardSpec ``type`` ids overlord models."""

    NUMBERED = "numbered"
    LINEAR = "linear"
    NONE = "none"


@dataclass(frozen=True)
class ShardSpec:
    """``NumberedShardSpec`` (``partitionNum``, ``partitions`` = core partitions),
    ``LinearShardSpec`` (``partitionNum``) or ``NoneShardSpec`` (one partition, 0)."""

    kind: ShardKind = ShardKind.NUMBERED
    partition_num: int = 0
    partitions: int = 0

    @classmethod
    def numbered(cls, partition_num: int, partitions: int) -> ShardSpec:
        return cls(ShardKind.NUMBERED, partition_num, partitions)

    @property
    def partitioned(self) -> bool:
        """``druid_segments.partitioned``: every shardSpec but ``none``."""
        return self.kind is not ShardKind.NONE

    def to_json(self) -> JsonObject:
        if self.kind is ShardKind.NONE:
            return {"type": "none"}
        if self.kind is ShardKind.LINEAR:
            return {"type": "linear", "partitionNum": self.partition_num}
        return {
            "type": "numbered",
            "partitionNum": self.partition_num,
            "partitions": self.partitions,
        }

    @classmethod
    def from_json(cls, document: Any) -> ShardSpec:
        """A stored shardSpec; a missing one is DataSegment's default,
        ``NumberedShardSpec(0, 1)``."""
        if not isinstance(document, Mapping):
            return DEFAULT_SHARD_SPEC
        try:
            kind = ShardKind(document.get("type", "numbered"))
        except ValueError:
            kind = ShardKind.NUMBERED  # a row stored before shardSpecs were typed
        if kind is ShardKind.NONE:
            return cls(kind, 0, 0)
        return cls(
            kind, _int(document.get("partitionNum")), _int(document.get("partitions"))
        )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# DataSegment's shardSpec when none is given (``new NumberedShardSpec(0, 1)``).
DEFAULT_SHARD_SPEC = ShardSpec(ShardKind.NUMBERED, 0, 1)


# ---------------------------------------------------------------------- segment ids

_DELIMITER = "_"
_PARTITION = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class SegmentId:
    """Druid's SegmentId: ``<dataSource>_<start>_<end>_<version>``, plus
    ``_<partitionNum>`` only when the partition is not 0."""

    datasource: str
    interval: Interval
    version: str
    partition_num: int = 0

    def __str__(self) -> str:
        text = _DELIMITER.join(
            [
                self.datasource,
                format_druid(self.interval.start),
                format_druid(self.interval.end),
                self.version,
            ]
        )
        return text if self.partition_num == 0 else f"{text}_{self.partition_num}"

    @classmethod
    def possible_parsings(cls, datasource: str, text: str) -> list[SegmentId]:
        """Every reading of ``text`` as an id of ``datasource`` (Druid's
        ``iteratePossibleParsingsWithDataSource``): none, one, or two when the id
        ends in ``_<positive int>`` — first with that partition, then with partition
        0 and a version ending in it."""
        if not datasource or not text.startswith(datasource + _DELIMITER):
            return []
        splits = text[len(datasource) + 1 :].split(_DELIMITER)
        if len(splits) < 3:
            return []
        try:
            interval = Interval(
                parse_druid_datetime(splits[0]), parse_druid_datetime(splits[1])
            )
        except InvalidTime:
            return []
        if interval.start >= interval.end:
            return []
        version = _DELIMITER.join(splits[2 : max(len(splits) - 1, 3)])
        parsings: list[SegmentId] = []
        if len(splits) > 3:
            trail = splits[-1]
            if _PARTITION.fullmatch(trail) and 0 < int(trail) <= JAVA_INT_MAX:
                parsings.append(cls(datasource, interval, version, int(trail)))
            version = f"{version}_{trail}"
        parsings.append(cls(datasource, interval, version, 0))
        return parsings

    @classmethod
    def try_parse(cls, datasource: str, text: str) -> SegmentId | None:
        """Druid's ``SegmentId.tryParse``: the first possible parsing (a trailing
        ``_<positive int>`` is read as the partition), or None."""
        parsings = cls.possible_parsings(datasource, text)
        return parsings[0] if parsings else None

    @classmethod
    def all_possible_parsings(cls, text: str) -> list[SegmentId]:
        """Every reading of an id whose datasource is unknown (Druid's
        ``iterateAllPossibleParsings``): datasources containing ``_`` are tried by
        cutting the text at each delimiter, shortest datasource first."""
        splits = text.split(_DELIMITER)
        parsings: list[SegmentId] = []
        for cut in range(1, len(splits) - 3):
            parsings += cls.possible_parsings(_DELIMITER.join(splits[:cut]), text)
        return parsings


# ---------------------------------------------------------------------- data segments


@dataclass(frozen=True)
class SegmentIdWithShardSpec:
    """A ``segmentAllocate`` result and a pending segment's payload."""

    datasource: str
    interval: Interval
    version: str
    shard_spec: ShardSpec

    @property
    def id(self) -> SegmentId:
        return SegmentId(
            self.datasource, self.interval, self.version, self.shard_spec.partition_num
        )

    def to_json(self) -> JsonObject:
        return {
            "dataSource": self.datasource,
            "interval": str(self.interval),
            "version": self.version,
            "shardSpec": self.shard_spec.to_json(),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> SegmentIdWithShardSpec:
        return cls(
            datasource=str(document["dataSource"]),
            interval=parse_interval(str(document["interval"])),
            version=str(document["version"]),
            shard_spec=ShardSpec.from_json(document.get("shardSpec")),
        )


# DataSegment properties written only when set (``@JsonInclude(NON_NULL)``), kept
# as posted: overlord does not model them.
OPTIONAL_PROPERTIES = (
    "lastCompactionState",
    "projections",
    "compactionStateFingerprint",
)


@dataclass(frozen=True, eq=False)
class DataSegment:
    """Druid's DataSegment (``processing/.../timeline/DataSegment.java``).

    ``dimensions`` and ``metrics`` travel as comma-joined strings; ``extra`` holds
    the optional properties overlord keeps without modelling them. Equal and hashed
    by id, as Druid's ``DataSegment.equals`` (a ``Set<DataSegment>`` keeps one
    segment per id)."""

    datasource: str
    interval: Interval
    version: str
    load_spec: JsonObject | None = None
    dimensions: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    shard_spec: ShardSpec = DEFAULT_SHARD_SPEC
    binary_version: int | None = None
    size: int = 0
    extra: tuple[tuple[str, Any], ...] = field(default=())

    @property
    def id(self) -> SegmentId:
        return SegmentId(
            self.datasource, self.interval, self.version, self.shard_spec.partition_num
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataSegment) and self.id == other.id

    def __hash__(self) -> int:
        return hash(self.id)

    def to_json(self, *, identifier: bool = False) -> JsonObject:
        """DataSegment JSON in Jackson's order; ``identifier`` (the id text) is what
        Druid writes last in stored payloads and metadata listings."""
        document: JsonObject = {
            "dataSource": self.datasource,
            "interval": str(self.interval),
            "version": self.version,
            "loadSpec": self.load_spec,
            "dimensions": ",".join(self.dimensions),
            "metrics": ",".join(self.metrics),
            "shardSpec": self.shard_spec.to_json(),
        }
        extra = dict(self.extra)
        for key in OPTIONAL_PROPERTIES:
            if extra.get(key) is not None:
                document[key] = extra[key]
        document["binaryVersion"] = self.binary_version
        document["size"] = self.size
        if identifier:
            document["identifier"] = str(self.id)
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> DataSegment:
        """A DataSegment overlord stored (the payload of ``druid_segments``)."""
        return cls(
            datasource=str(document["dataSource"]),
            interval=parse_interval(str(document["interval"])),
            version=str(document["version"]),
            load_spec=document.get("loadSpec"),
            dimensions=split_names(document.get("dimensions")),
            metrics=split_names(document.get("metrics")),
            shard_spec=ShardSpec.from_json(document.get("shardSpec")),
            binary_version=document.get("binaryVersion"),
            size=int(document.get("size") or 0),
            extra=tuple(
                (key, document[key])
                for key in OPTIONAL_PROPERTIES
                if document.get(key) is not None
            ),
        )


def split_names(value: Any) -> tuple[str, ...]:
    """DataSegment's ``dimensions``/``metrics``: a comma-joined string (Druid's
    CommaListJoinDeserializer; empty names dropped) or a list of names."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(name for name in value.split(",") if name)
    return tuple(str(name) for name in value)
