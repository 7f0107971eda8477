"""Batch ingestion engine (issue 9): Druid native batch specs → Parquet segments.

No Flask, no SQL, no task runtime here: a task type builds an :class:`IngestSpec`
(from its typed spec model), runs an :class:`Ingestion` in its process and publishes
the returned segment descriptions through task actions.

Pipeline, block by block (memory stays bounded whatever the input size):

* ``sources`` — ``inline``, ``local`` (``baseDir`` + ``filter``, ``files``) and
  ``http`` (``uris``, basic auth) as byte streams, ``.gz`` decompressed;
* ``formats`` — ``json`` lines, ``csv``, ``tsv`` → Arrow tables by Arrow's vectorised
  readers; only a failing block is split down to the lines that are bad;
* ``timestamps`` / ``rows`` — timestamps (``iso``, ``auto``, ``millis``, ``posix``,
  ``micro``, ``nano``, Joda patterns, ``missingValue``), the ``transformSpec``
  filter, ``intervals``, dimensions (explicit or discovered), metrics, rollup with
  ``queryGranularity`` truncation — all ``pyarrow.compute``;
* ``spill`` — rows in memory up to ``maxRowsInMemory`` / ``maxBytesInMemory``, then
  a time-sorted spill file; a streaming merge re-rolls them up at the end;
* ``segments`` / ``deep_storage`` — one Parquet file per partition (≤
  ``maxRowsPerSegment`` rows) per ``segmentGranularity`` chunk, under a directory or
  any filesystem URI pyarrow opens, described as Druid ``DataSegment``\\ s;
* ``stats`` — Druid's ``rowStats`` and saved parse exceptions, and
  ``Max parse exceptions[N] exceeded``; ``javatext`` prints values as Druid's Java
  does in rows and messages.

Without ``granularitySpec.intervals`` an ``index`` task reads its input twice, as
Druid's IndexTask does (``Ingestion(..., determine_intervals=True)``): a first pass
counted in ``rowStats.determinePartitions`` (json: only the timestamp field is
built when there is no filter), then the build.

Rule taken from issue 9 rather than the newest Druid: a row without a timestamp
(and no ``missingValue``) counts as ``thrownAway``; Druid's MapInputRowParser now
reports it as unparseable (``Timestamp[null] is unparseable!``).

Usage::

    ingestion = Ingestion(spec, storage="/var/druid/segments", version=version)
    segments = ingestion.run()          # list[SegmentDescription]; .to_json()
    ingestion.stats.to_json()           # rowStats.buildSegments (live, too)
    ingestion.unparseable_events()      # unparseableEvents.buildSegments
"""

from __future__ import annotations

from overlord.ingest.deep_storage import DeepStorage, delete_segment_file
from overlord.ingest.engine import Ingestion, IngestStopped
from overlord.ingest.segments import Allocation, Allocator, SegmentDescription
from overlord.ingest.sources import InputEntity, entities
from overlord.ingest.spec import IngestSpec
from overlord.ingest.stats import IngestError, MaxParseExceptionsExceeded, RowStats

__all__ = [
    "Allocation",
    "Allocator",
    "DeepStorage",
    "IngestError",
    "IngestSpec",
    "IngestStopped",
    "Ingestion",
    "InputEntity",
    "MaxParseExceptionsExceeded",
    "RowStats",
    "SegmentDescription",
    "delete_segment_file",
    "entities",
]
