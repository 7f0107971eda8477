"""Whole ingestions: wikipedia-shaped json, csv, tsv, rollup, partitions, spills,
parse-exception limits, stopping."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from overlord.ingest import (
    IngestError,
    Ingestion,
    IngestSpec,
    IngestStopped,
    MaxParseExceptionsExceeded,
)
from overlord.timeutil import parse_druid_datetime

WIKI = [
    {
        "time": "2015-09-12T00:46:58.771Z",
        "channel": "#en.wikipedia",
        "page": "Talk:Oswald Tilghman",
        "user": "GELongstreet",
        "added": 36,
        "deleted": 0,
    },
    {
        "time": "2015-09-12T00:47:00.496Z",
        "channel": "#ca.wikipedia",
        "page": "Rallicula",
        "user": "PereBot",
        "added": 17,
        "deleted": 0,
    },
    {
        "time": "2015-09-12T00:47:05.474Z",
        "channel": "#en.wikipedia",
        "page": "Peremptory norm",
        "user": "60.225.66.142",
        "added": 0,
        "deleted": 26,
    },
    {
        "time": "2015-09-12T01:10:00.000Z",
        "channel": "#en.wikipedia",
        "page": "Peremptory norm",
        "user": "60.225.66.142",
        "added": 5,
        "deleted": 1,
    },
    {
        "time": "2015-09-13T12:00:00.000Z",
        "channel": "#vi.wikipedia",
        "page": "Apamea abruzzorum",
        "user": "Cheers!-bot",
        "added": 18,
        "deleted": 0,
    },
]


def wiki_spec(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    data = tmp_path / "input"
    data.mkdir(exist_ok=True)
    (data / "wikiticker-sample.json").write_text(
        "".join(json.dumps(r) + "\n" for r in WIKI)
    )
    spec: dict[str, Any] = {
        "dataSchema": {
            "dataSource": "wikipedia",
            "timestampSpec": {"column": "time", "format": "iso"},
            "dimensionsSpec": {"dimensions": ["channel", "page", "user"]},
            "metricsSpec": [
                {"type": "count", "name": "count"},
                {"type": "longSum", "name": "added", "fieldName": "added"},
                {"type": "longSum", "name": "deleted", "fieldName": "deleted"},
            ],
            "granularitySpec": {
                "segmentGranularity": "day",
                "queryGranularity": "hour",
                "intervals": ["2015-09-12/2015-09-13"],
                "rollup": True,
            },
        },
        "ioConfig": {
            "inputSource": {"type": "local", "baseDir": str(data), "filter": "*.json"},
            "inputFormat": {"type": "json"},
        },
        "tuningConfig": {"type": "index_parallel", "maxSavedParseExceptions": 5},
    }
    for key, value in extra.items():
        section, field = key.split("__")
        spec[section][field] = value
    return spec


def ingest(
    spec: dict[str, Any], tmp_path: Path, **kwargs: Any
) -> tuple[Ingestion, list[dict[str, Any]]]:
    ingestion = Ingestion(
        IngestSpec.from_json(spec),
        storage=str(tmp_path / "deep"),
        version="2024-05-06T07:08:09.456Z",
        **kwargs,
    )
    segments = [s.to_json() for s in ingestion.run()]
    return ingestion, segments


def read_segment(segment: dict[str, Any]) -> list[dict[str, Any]]:
    return pq.read_table(segment["loadSpec"]["path"]).to_pylist()


def test_wikipedia_rollup_hourly(tmp_path: Path) -> None:
    ingestion, segments = ingest(wiki_spec(tmp_path), tmp_path)
    assert ingestion.stats.to_json() == {
        "processed": 4,
        "processedBytes": sum(len(json.dumps(r)) + 1 for r in WIKI),
        "processedWithError": 0,
        "thrownAway": 1,
        "unparseable": 0,
    }
    (segment,) = segments
    assert segment == {
        "dataSource": "wikipedia",
        "interval": "2015-09-12T00:00:00.000Z/2015-09-13T00:00:00.000Z",
        "version": "2024-05-06T07:08:09.456Z",
        "loadSpec": {
            "type": "local",
            "path": f"{tmp_path}/deep/wikipedia/2015-09-12T00:00:00.000Z_2015-09-13T00:00:00.000Z/2024-05-06T07:08:09.456Z/0/index.parquet",
        },
        "dimensions": "channel,page,user",
        "metrics": "count,added,deleted",
        "shardSpec": {"type": "numbered", "partitionNum": 0, "partitions": 1},
        "binaryVersion": 9,
        "size": Path(segment["loadSpec"]["path"]).stat().st_size,
    }
    h0, h1 = (
        parse_druid_datetime("2015-09-12T00"),
        parse_druid_datetime("2015-09-12T01"),
    )
    assert read_segment(segment) == [
        {
            "__time": h0,
            "channel": "#ca.wikipedia",
            "page": "Rallicula",
            "user": "PereBot",
            "count": 1,
            "added": 17,
            "deleted": 0,
        },
        {
            "__time": h0,
            "channel": "#en.wikipedia",
            "page": "Peremptory norm",
            "user": "60.225.66.142",
            "count": 1,
            "added": 0,
            "deleted": 26,
        },
        {
            "__time": h0,
            "channel": "#en.wikipedia",
            "page": "Talk:Oswald Tilghman",
            "user": "GELongstreet",
            "count": 1,
            "added": 36,
            "deleted": 0,
        },
        {
            "__time": h1,
            "channel": "#en.wikipedia",
            "page": "Peremptory norm",
            "user": "60.225.66.142",
            "count": 1,
            "added": 5,
            "deleted": 1,
        },
    ]


def test_rollup_by_day_merges_rows(tmp_path: Path) -> None:
    spec = wiki_spec(tmp_path)
    spec["dataSchema"]["granularitySpec"] = {
        "segmentGranularity": "month",
        "queryGranularity": "day",
    }
    spec["dataSchema"]["dimensionsSpec"] = {"dimensions": ["channel"]}
    _, (segment,) = ingest(spec, tmp_path)
    assert segment["interval"] == "2015-09-01T00:00:00.000Z/2015-10-01T00:00:00.000Z"
    d12, d13 = parse_druid_datetime("2015-09-12"), parse_druid_datetime("2015-09-13")
    assert read_segment(segment) == [
        {
            "__time": d12,
            "channel": "#ca.wikipedia",
            "count": 1,
            "added": 17,
            "deleted": 0,
        },
        {
            "__time": d12,
            "channel": "#en.wikipedia",
            "count": 3,
            "added": 41,
            "deleted": 27,
        },
        {
            "__time": d13,
            "channel": "#vi.wikipedia",
            "count": 1,
            "added": 18,
            "deleted": 0,
        },
    ]


def test_max_rows_per_segment_and_spills_give_the_same_rows(tmp_path: Path) -> None:
    lines = [
        {
            "time": f"2024-01-0{1 + i % 2}T00:{i % 60:02d}:00Z",
            "page": f"p{i % 7}",
            "added": i,
        }
        for i in range(600)
    ]
    (tmp_path / "in.json").write_text("".join(json.dumps(r) + "\n" for r in lines))
    spec = {
        "dataSchema": {
            "dataSource": "ds",
            "timestampSpec": {"column": "time"},
            "dimensionsSpec": {"dimensions": ["page"]},
            "metricsSpec": [
                {"type": "count", "name": "count"},
                {"type": "longSum", "name": "added", "fieldName": "added"},
            ],
            "granularitySpec": {"queryGranularity": "hour"},
        },
        "ioConfig": {
            "inputSource": {"type": "local", "files": [str(tmp_path / "in.json")]},
            "inputFormat": {"type": "json"},
        },
        "tuningConfig": {"maxRowsPerSegment": 5},
    }
    _, plain = ingest(spec, tmp_path / "a")
    spec["tuningConfig"] |= {"maxRowsInMemory": 10, "maxBytesInMemory": 1}
    spilled, spilled_segments = ingest(spec, tmp_path / "b")
    assert [s["shardSpec"] for s in plain] == [
        {"type": "numbered", "partitionNum": n, "partitions": 2} for n in (0, 1)
    ] * 2
    rows_plain = [r for s in plain for r in read_segment(s)]
    rows_spilled = [r for s in spilled_segments for r in read_segment(s)]
    assert rows_plain == rows_spilled
    assert len(rows_plain) == 14
    assert sum(r["count"] for r in rows_plain) == 600
    assert sum(r["added"] for r in rows_plain) == sum(range(600))
    assert spilled.stats.processed == 600


def test_many_spills_merge_in_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("overlord.ingest.spill.FAN_IN", 2)
    data = "".join(
        json.dumps({"t": 1_000 * i, "k": str(i % 3), "v": i}) + "\n" for i in range(200)
    )
    spec = {
        "dataSchema": {
            "dataSource": "ds",
            "timestampSpec": {"column": "t", "format": "millis"},
            "dimensionsSpec": {"dimensions": []},
            "metricsSpec": [{"type": "longMax", "name": "v", "fieldName": "v"}],
            "granularitySpec": {
                "queryGranularity": "minute",
                "segmentGranularity": "hour",
            },
        },
        "ioConfig": {
            "inputSource": {"type": "inline", "data": data},
            "inputFormat": {"type": "json"},
        },
        "tuningConfig": {"maxRowsInMemory": 7, "maxBytesInMemory": 1},
    }
    _, (segment,) = ingest(spec, tmp_path)
    assert segment["dimensions"] == "k"
    assert read_segment(segment) == [
        {
            "__time": parse_druid_datetime(f"1970-01-01T00:0{m}"),
            "k": k,
            "v": max(i for i in range(200) if i % 3 == int(k) and i // 60 == m),
        }
        for m in range(4)
        for k in "012"
    ]


def test_csv_with_header(tmp_path: Path) -> None:
    data = "time,page,added\n2024-01-01T00:00:00Z,Main,1\n2024-01-01T05:00:00Z,Main,2\nnot-a-time,X,3\n"
    spec = {
        "dataSchema": {
            "dataSource": "ds",
            "timestampSpec": {"column": "time", "format": "iso"},
            "dimensionsSpec": {},
            "metricsSpec": [
                {"type": "doubleSum", "name": "added", "fieldName": "added"}
            ],
            "granularitySpec": {"queryGranularity": "day"},
        },
        "ioConfig": {
            "inputSource": {"type": "inline", "data": data},
            "inputFormat": {"type": "csv", "findColumnsFromHeader": True},
        },
        "tuningConfig": {"maxSavedParseExceptions": 1},
    }
    ingestion, (segment,) = ingest(spec, tmp_path)
    assert read_segment(segment) == [
        {"__time": parse_druid_datetime("2024-01-01"), "page": "Main", "added": 3.0}
    ]
    assert ingestion.stats.to_json() == {
        "processed": 2,
        "processedBytes": len(data),
        "processedWithError": 0,
        "thrownAway": 0,
        "unparseable": 1,
    }
    (event,) = ingestion.unparseable_events()
    assert event["details"] == [
        "Timestamp[not-a-time] is unparseable! Event: {time=not-a-time, page=X, added=3}"
    ]


def test_tsv_with_columns_and_filter(tmp_path: Path) -> None:
    data = "1704067200000\tMain\ten\n1704067201000\tTalk\tfr\n1704067202000\tUser\ten\n"
    spec = {
        "dataSchema": {
            "dataSource": "ds",
            "timestampSpec": {"column": "ts", "format": "millis"},
            "dimensionsSpec": {"dimensions": ["page", "lang"]},
            "granularitySpec": {"rollup": False},
            "transformSpec": {
                "filter": {"type": "selector", "dimension": "lang", "value": "en"}
            },
        },
        "ioConfig": {
            "inputSource": {"type": "inline", "data": data},
            "inputFormat": {"type": "tsv", "columns": ["ts", "page", "lang"]},
        },
    }
    ingestion, (segment,) = ingest(spec, tmp_path)
    assert [r["page"] for r in read_segment(segment)] == ["Main", "User"]
    assert segment["metrics"] == ""
    assert (ingestion.stats.processed, ingestion.stats.thrown_away) == (2, 1)


def test_max_parse_exceptions_fails_and_leaves_no_file(tmp_path: Path) -> None:
    spec = wiki_spec(tmp_path)
    (tmp_path / "input" / "wikiticker-sample.json").write_text(
        json.dumps(WIKI[0]) + "\n{oops\n[]\n" + json.dumps(WIKI[1]) + "\n"
    )
    spec["tuningConfig"]["maxParseExceptions"] = 1
    ingestion = Ingestion(
        IngestSpec.from_json(spec), storage=str(tmp_path / "deep"), version="v"
    )
    with pytest.raises(
        MaxParseExceptionsExceeded, match=r"^Max parse exceptions\[1\] exceeded$"
    ):
        ingestion.run()
    assert ingestion.stats.unparseable == 2
    assert not (tmp_path / "deep").exists()
    spec["tuningConfig"]["maxParseExceptions"] = 2
    ingestion, (segment,) = ingest(spec, tmp_path)
    assert segment["shardSpec"] == {
        "type": "numbered",
        "partitionNum": 0,
        "partitions": 1,
    }
    assert (ingestion.stats.processed, ingestion.stats.unparseable) == (2, 2)
    assert [e["details"] for e in ingestion.unparseable_events()] == [
        ["Unable to parse row [[]]"],
        ["Unable to parse row [{oops]"],
    ]


def test_stop_during_ingestion(tmp_path: Path) -> None:
    asked: list[bool] = []

    def should_stop() -> bool:
        asked.append(True)
        return len(asked) > 1

    spec = wiki_spec(tmp_path)
    ingestion = Ingestion(
        IngestSpec.from_json(spec),
        storage=str(tmp_path / "deep"),
        version="v",
        should_stop=should_stop,
    )
    with pytest.raises(IngestStopped):
        ingestion.run()
    assert not list((tmp_path).rglob("*.parquet"))


def test_log_parse_exceptions(tmp_path: Path) -> None:
    lines: list[str] = []
    spec = {
        "dataSchema": {"dataSource": "ds", "timestampSpec": {"column": "t"}},
        "ioConfig": {
            "inputSource": {"type": "inline", "data": '{"t":"2024-01-01"}\n{bad\n'},
            "inputFormat": {"type": "json"},
        },
        "tuningConfig": {"logParseExceptions": True},
    }
    ingest(spec, tmp_path, log=lines.append)
    assert [line for line in lines if line.startswith("Encountered")] == [
        "Encountered parse exception: Unable to parse row [{bad]"
    ]
    assert lines[0] == "Reading input [inline]"
    assert lines[-2].startswith(
        "Wrote segment ds 2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z "
        "partition 0: 1 rows, "
    )
    assert re.fullmatch(r"Ingestion done; peak RSS \d+ KiB", lines[-1])


def test_corrupt_input_fails_with_its_name(tmp_path: Path) -> None:
    broken = tmp_path / "data.json.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00garbage")
    spec = {
        "dataSchema": {"dataSource": "ds", "timestampSpec": {"column": "t"}},
        "ioConfig": {
            "inputSource": {"type": "local", "files": [str(broken)]},
            "inputFormat": {"type": "json"},
        },
    }
    with pytest.raises(IngestError, match=rf"^Failed to read \[{broken}\]: "):
        ingest(spec, tmp_path)


def test_without_intervals_the_input_is_read_twice(tmp_path: Path) -> None:
    """IndexTask without ``granularitySpec.intervals``: a first pass to find them
    (state DETERMINE_PARTITIONS, ``determinePartitions`` figures), then the build.
    The pass only needs timestamps and the filter: a bad metric value is a
    processed row there, a ``processedWithError`` one when building."""
    spec = wiki_spec(tmp_path)
    del spec["dataSchema"]["granularitySpec"]["intervals"]
    text = (
        "".join(json.dumps(r) + "\n" for r in WIKI)
        + "{not json\n"
        + json.dumps({**WIKI[0], "added": "many"})
        + "\n"
        + json.dumps({**WIKI[0], "time": None})
        + "\n"
    )
    (tmp_path / "input" / "wikiticker-sample.json").write_text(text)
    phases: list[str] = []
    ingestion: Ingestion | None = None

    def log(message: str) -> None:
        if ingestion is not None:
            phases.append(ingestion.phase)

    ingestion = Ingestion(
        IngestSpec.from_json(spec),
        storage=str(tmp_path / "deep"),
        version="v",
        determine_intervals=True,
        log=log,
    )
    assert ingestion.phase == "DETERMINE_PARTITIONS"
    ingestion.run()

    size = len(text.encode())
    assert ingestion.phase == "BUILD_SEGMENTS"
    assert phases[0] == "DETERMINE_PARTITIONS"
    assert phases[-1] == "BUILD_SEGMENTS"
    assert ingestion.determine_stats.to_json() == {
        "processed": 6,
        "processedBytes": size,
        "processedWithError": 0,
        "thrownAway": 1,
        "unparseable": 1,
    }
    assert ingestion.stats.to_json() == {
        "processed": 5,
        "processedBytes": size,
        "processedWithError": 1,
        "thrownAway": 1,
        "unparseable": 1,
    }
    assert [e["details"] for e in ingestion.determine_unparseable_events()] == [
        ["Unable to parse row [{not json]"]
    ]


def test_intervals_given_or_not_asked_no_first_pass(tmp_path: Path) -> None:
    with_intervals, _ = ingest(wiki_spec(tmp_path), tmp_path, determine_intervals=True)
    spec = wiki_spec(tmp_path)
    del spec["dataSchema"]["granularitySpec"]["intervals"]
    not_asked, _ = ingest(spec, tmp_path)
    for ingestion in (with_intervals, not_asked):
        assert ingestion.determine_stats.to_json() == dict.fromkeys(
            ingestion.stats.to_json(), 0
        )
        assert ingestion.stats.processed > 0


def test_parse_exceptions_are_reported_in_the_rows_order(tmp_path: Path) -> None:
    """Druid meets bad rows one by one: its saved reports, newest first, follow the
    input's row order whatever the kind (a line that is not JSON, an unparseable
    timestamp, a value with an error), within one read block too."""
    spec = wiki_spec(tmp_path)
    spec["dataSchema"]["dimensionsSpec"]["dimensions"] = [
        "channel",
        {"name": "added", "type": "long"},
    ]
    spec["dataSchema"]["metricsSpec"] = [{"type": "count", "name": "count"}]
    spec["tuningConfig"]["maxParseExceptions"] = 10
    lines = [
        json.dumps({**WIKI[0], "added": "lots"}),  # 1 processedWithError
        json.dumps(WIKI[1]),
        "{not json",  # 3 unparseable (the format)
        json.dumps({**WIKI[2], "time": "yesterday"}),  # 4 unparseable (timestamp)
        json.dumps({**WIKI[3], "added": "few"}),  # 5 processedWithError
        "[]",  # 6 unparseable (the format)
    ]
    (tmp_path / "input" / "wikiticker-sample.json").write_text("\n".join(lines) + "\n")

    ingestion, _ = ingest(spec, tmp_path)

    events = ingestion.unparseable_events()
    assert [(e["errorType"], e["input"][:20]) for e in events] == [
        ("unparseable", "[]"),
        ("processedWithError", "{time=2015-09-12T01:"),
        ("unparseable", "{time=yesterday, cha"),
        ("unparseable", "{not json"),
        ("processedWithError", "{time=2015-09-12T00:"),
    ]
    assert (ingestion.stats.unparseable, ingestion.stats.processed_with_error) == (
        3,
        2,
    )


def test_the_row_passing_the_limit_is_found_in_the_rows_order(tmp_path: Path) -> None:
    """maxParseExceptions 1: the second bad row in input order fails the run, and
    it is the one counted last, whichever its kind."""
    spec = wiki_spec(tmp_path)
    spec["dataSchema"]["dimensionsSpec"]["dimensions"] = [
        {"name": "added", "type": "long"}
    ]
    spec["dataSchema"]["metricsSpec"] = [{"type": "count", "name": "count"}]
    spec["tuningConfig"]["maxParseExceptions"] = 1
    lines = [
        json.dumps({**WIKI[0], "added": "lots"}),
        json.dumps({**WIKI[1], "added": "more"}),
        "{not json",
    ]
    (tmp_path / "input" / "wikiticker-sample.json").write_text("\n".join(lines) + "\n")
    ingestion = Ingestion(
        IngestSpec.from_json(spec), storage=str(tmp_path / "deep"), version="v"
    )

    with pytest.raises(MaxParseExceptionsExceeded):
        ingestion.run()

    assert (ingestion.stats.unparseable, ingestion.stats.processed_with_error) == (
        0,
        2,
    )
