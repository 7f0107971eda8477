"""One batch ingestion run: input → rows → spills → segments."""

from __future__ import annotations

import functools
import http.client
import resource
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from overlord.ingest.deep_storage import DeepStorage
from overlord.ingest.formats import DEFAULT_BLOCK_SIZE, Block, read_blocks
from overlord.ingest.rows import RowTransformer, combine, sort_rows
from overlord.ingest.segments import (
    ROW_GROUP_ROWS,
    Allocator,
    SegmentDescription,
    SegmentWriter,
    fixed_version,
)
from overlord.ingest.sources import InputEntity, entities
from overlord.ingest.spec import IngestSpec
from overlord.ingest.spill import RowBuffer
from overlord.ingest.stats import (
    ErrorType,
    IngestError,
    ParseExceptionHandler,
    ParseProblem,
    RowStats,
)

MIN_BLOCK_SIZE = 64 * 1024


def peak_rss_kib() -> int:
    """This process's peak resident set size so far (``ru_maxrss``; a forked task
    process counts from its fork). Logged so tests can bound it."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # macOS: bytes


def _same(problem: ParseProblem) -> ParseProblem:
    return problem


class IngestStopped(IngestError):
    """``should_stop`` said so (the task was shut down)."""

    def __init__(self) -> None:
        super().__init__("Ingestion was stopped")


class Ingestion:
    """Ingest ``spec`` into segments under ``storage``.

    ``stats`` and :meth:`unparseable_events` may be read from another thread while
    :meth:`run` works (live reports). ``allocate`` decides each new partition's
    version and number (default: ``version``, numbered from 0 in each chunk);
    ``input_entities`` restricts the run to some of the source's entities (a
    sub-task's split). Runs that may write into the same time chunk (the
    sub-tasks of one ``index_parallel``, appends) need an ``allocate`` handing out
    distinct partition numbers (``segmentAllocate``); with ``core_partitions`` None
    a segment's ``partitions`` is the count this run wrote in its chunk, which the
    publisher may restate.

    ``determine_intervals``: without ``granularitySpec.intervals`` Druid's IndexTask
    reads the input a first time to find the intervals it then locks
    (determineShardSpecs → collectIntervalsAndShardSpecs, state
    DETERMINE_PARTITIONS), counting that pass in ``rowStats.determinePartitions``
    with its own parse-exception handler (same limits, its own saved events). With
    it true and no intervals, so does :meth:`run` (``determine_stats``,
    :meth:`determine_unparseable_events`, ``phase``). Druid's SinglePhaseSubTask
    has no such pass.
    """

    def __init__(
        self,
        spec: IngestSpec,
        *,
        storage: str,
        version: str,
        work_dir: str | None = None,
        allocate: Allocator | None = None,
        should_stop: Callable[[], bool] | None = None,
        log: Callable[[str], None] | None = None,
        input_entities: Sequence[InputEntity] | None = None,
        determine_intervals: bool = False,
    ) -> None:
        self.spec = spec
        self.storage = DeepStorage(storage)
        self.allocate = allocate or fixed_version(version)
        self.work_dir = work_dir
        self.should_stop = should_stop or (lambda: False)
        self.log = log
        self.input_entities = input_entities
        self.stats = RowStats()
        self.handler = self._handler(self.stats)
        self.determine_stats = RowStats()
        self.determine_handler = self._handler(self.determine_stats)
        self.determines = (
            determine_intervals and not spec.data_schema.granularity.intervals
        )
        # Druid's IngestionState while running.
        self.phase = "DETERMINE_PARTITIONS" if self.determines else "BUILD_SEGMENTS"

    def _handler(self, stats: RowStats) -> ParseExceptionHandler:
        tuning = self.spec.tuning
        return ParseExceptionHandler(
            stats,
            max_parse_exceptions=tuning.max_parse_exceptions,
            max_saved=tuning.max_saved_parse_exceptions,
            log=self.log if tuning.log_parse_exceptions else None,
        )

    @property
    def block_size(self) -> int:
        limit = self.spec.tuning.bytes_limit
        if limit is None:
            return DEFAULT_BLOCK_SIZE
        return max(MIN_BLOCK_SIZE, min(DEFAULT_BLOCK_SIZE, limit // 8))

    @property
    def saves_parse_exceptions(self) -> bool:
        """Whether bad rows are kept for the report (``maxSavedParseExceptions`` > 0;
        Druid's ParseExceptionHandler then has a buffer, possibly empty)."""
        return self.spec.tuning.max_saved_parse_exceptions > 0

    def unparseable_events(self) -> list[dict[str, Any]]:
        """Druid's saved ParseExceptionReports, newest first."""
        return self.handler.reports()

    def determine_unparseable_events(self) -> list[dict[str, Any]]:
        """Those of the determine-partitions pass, newest first."""
        return self.determine_handler.reports()

    def _blocks(
        self, string_fields: set[str], only_text: str | None = None
    ) -> Iterator[Block]:
        """Every block of the input, entity after entity (``only_text``: see
        :func:`read_blocks`).

        Raises:
            IngestStopped: ``should_stop`` said so.
            IngestError: an input could not be read.
        """
        spec = self.spec
        sources = (
            self.input_entities
            if self.input_entities is not None
            else entities(spec.source)
        )
        for entity in sources:
            self._info(f"Reading input [{entity.name}]")
            try:
                with entity.open() as stream:
                    for block in read_blocks(
                        stream,
                        spec.format,
                        self.block_size,
                        string_fields,
                        only_text=only_text,
                    ):
                        if self.should_stop():
                            raise IngestStopped
                        yield block
            except (OSError, EOFError, http.client.HTTPException) as error:
                # Unreadable, truncated or corrupt input (a dropped HTTP
                # connection, a bad gzip stream): the task fails saying so.
                raise IngestError(f"Failed to read [{entity.name}]: {error}") from error

    def _determine(self) -> None:
        """IndexTask.collectIntervalsAndShardSpecs: read everything once, counting
        the rows (the intervals found are not kept: overlord locks each chunk when
        it first writes to it)."""
        self._info("Determining intervals: a first pass over the input")
        stats = self.determine_stats
        schema = self.spec.data_schema
        rows = RowTransformer(schema, self.determine_handler, stats)
        # Only the timestamps are needed (and the filter's fields: with a filter
        # every field is read, typed as in the second pass).
        only = schema.timestamp.column if schema.filter is None else None
        for block in self._blocks(set(), only):
            stats.processed_bytes += block.nbytes
            self._in_row_order(block, rows, self.determine_handler, rows.count)
        self._info(f"Determined intervals; row stats {stats.to_json()}")

    def run(self) -> list[SegmentDescription]:
        """Read everything, write the segments and describe them.

        Raises:
            IngestError: with Druid's text (``Max parse exceptions[…] exceeded``…);
                no segment file is left behind then.
        """
        spec = self.spec
        schema = spec.data_schema
        rows = RowTransformer(schema, self.handler, self.stats)
        rollup = schema.granularity.rollup

        def roll(table: Any) -> Any:
            return combine(table, [d.name for d in rows.dimensions], schema.metrics)

        def finish(table: Any) -> Any:
            dimensions = [d.name for d in rows.dimensions]
            if rollup:
                table = combine(table, dimensions, schema.metrics)
            return sort_rows(table, dimensions, rollup)

        if self.determines:
            self._determine()
        self.phase = "BUILD_SEGMENTS"
        with tempfile.TemporaryDirectory(prefix="ingest-", dir=self.work_dir) as work:
            buffer = RowBuffer(
                work_dir=work,
                max_rows=spec.tuning.max_rows_in_memory,
                max_bytes=spec.tuning.bytes_limit,
                roll=roll if rollup else None,
            )
            for block in self._blocks(set()):
                self.stats.processed_bytes += block.nbytes
                self._in_row_order(
                    block,
                    rows,
                    self.handler,
                    lambda table: buffer.add(rows.transform(table)),
                )
            writer = SegmentWriter(
                data_source=schema.data_source,
                storage=self.storage,
                allocate=self.allocate,
                segment_granularity=schema.granularity.segment_granularity,
                row_schema=rows.schema_of_rows(),
                metrics=tuple(m.name for m in schema.metrics),
                multi_value=rows.multi_value,
                max_rows_per_segment=spec.tuning.max_rows_per_segment,
                # Row groups buffered in memory stay within the in-memory limit.
                row_group_rows=min(ROW_GROUP_ROWS, spec.tuning.max_rows_in_memory),
            )
            self._info(
                f"Read {self.stats.processed_bytes} bytes, row stats "
                f"{self.stats.to_json()}, {buffer.spills} spill file(s); "
                "merging into segments"
            )
            try:
                buffer.merge(rows.schema_of_rows(), finish, self._checked(writer.write))
                segments = writer.close()
            except BaseException:
                writer.abort()
                raise
            for segment in segments:
                self._info(
                    f"Wrote segment {segment.data_source} {segment.interval} "
                    f"partition {segment.partition_num}: {segment.num_rows} rows, "
                    f"{segment.size} bytes"
                )
            self._info(f"Ingestion done; peak RSS {peak_rss_kib()} KiB")
            return segments

    def _info(self, message: str) -> None:
        if self.log is not None:
            self.log(message)

    @staticmethod
    def _in_row_order(
        block: Block,
        rows: RowTransformer,
        handler: ParseExceptionHandler,
        each_table: Callable[[Any], None],
    ) -> None:
        """Run ``each_table`` on the block's tables, then hand the block's bad rows
        (lines the format refused, unparseable timestamps, values with errors) to
        the handler in the order of the input's rows, as Druid meets them; its
        saved reports are then newest first in that order too.

        Positions come from the block where the reader knows them (json's slow
        path); otherwise the bad lines come first, then each table's rows in turn
        (csv rows Arrow had to load apart are placed after the block's others).
        """
        events: list[tuple[int, ErrorType, Callable[[], ParseProblem]]] = []
        next_position = 0
        for index, bad in enumerate(block.bad):
            at = (
                block.bad_positions[index]
                if block.bad_positions is not None
                else next_position + index
            )
            events.append((at, "unparseable", functools.partial(_same, bad)))
        next_position += len(block.bad)
        rows.deferred = []
        try:
            for index, table in enumerate(block.tables):
                positions = (
                    block.table_positions[index]
                    if block.table_positions is not None
                    else None
                )
                del rows.deferred[:]
                each_table(table)
                for row, kind, problem in rows.deferred:
                    at = (
                        positions[row] if positions is not None else next_position + row
                    )
                    events.append((at, kind, problem))
                next_position += table.num_rows
        finally:
            rows.deferred = None
        if events:
            events.sort(key=lambda event: event[0])
            handler.handle_rows(
                [kind for _, kind, _ in events],
                lambda: (problem() for _, _, problem in events),
            )

    def _checked(self, write: Callable[[Any], None]) -> Callable[[Any], None]:
        def checked(table: Any) -> None:
            if self.should_stop():
                raise IngestStopped
            write(table)

        return checked
