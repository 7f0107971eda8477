"""More of issue 9 §4 through real ``index`` tasks on every backend: tsv with a
filter, rollup at hour granularity, http input with basic auth, bad rows within
``maxParseExceptions``, null timestamps, and a 1-million-row input under a memory
bound."""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from flask.testing import FlaskClient

from tests.processes import descendants
from tests.worker.conftest import BASE, Processes, status, submit, wait_for
from tests.worker.test_index_ingest import (
    _finished,
    _report,
    _stats,
    _used,
    _write_rows,
)

UTC = dt.UTC
DAY1 = "2015-09-12T00:00:00.000Z/2015-09-13T00:00:00.000Z"


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _spec(
    source: dict[str, Any],
    input_format: dict[str, Any],
    *,
    dimensions: list[Any],
    metrics: list[dict[str, Any]] | None = None,
    granularity: dict[str, Any] | None = None,
    transform: dict[str, Any] | None = None,
    tuning: dict[str, Any] | None = None,
) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "dataSource": "wikipedia",
        "timestampSpec": {"column": "time", "format": "iso"},
        "dimensionsSpec": {"dimensions": dimensions},
        "granularitySpec": granularity
        or {"segmentGranularity": "day", "queryGranularity": "none", "rollup": False},
    }
    if metrics is not None:
        schema["metricsSpec"] = metrics
    if transform is not None:
        schema["transformSpec"] = transform
    return {
        "type": "index",
        "spec": {
            "dataSchema": schema,
            "ioConfig": {
                "type": "index",
                "inputSource": source,
                "inputFormat": input_format,
                "appendToExisting": False,
            },
            "tuningConfig": {
                "type": "index",
                "partitionsSpec": {"type": "dynamic"},
                **(tuning or {}),
            },
        },
    }


def _segment(
    segment: dict[str, Any], storage: Path, dimensions: str, metrics: str = ""
) -> dict[str, Any]:
    """What a published segment of these tests must look like, given its version."""
    start, end = segment["interval"].split("/")
    shard = segment["shardSpec"]
    path = (
        storage
        / "wikipedia"
        / f"{start}_{end}"
        / segment["version"]
        / str(shard["partitionNum"])
        / "index.parquet"
    )
    identifier = f"wikipedia_{start}_{end}_{segment['version']}"
    return {
        "dataSource": "wikipedia",
        "interval": segment["interval"],
        "version": segment["version"],
        "loadSpec": {"type": "local", "path": str(path)},
        "dimensions": dimensions,
        "metrics": metrics,
        "shardSpec": {"type": "numbered", "partitionNum": 0, "partitions": 1},
        "binaryVersion": 9,
        "size": path.stat().st_size,
        "identifier": identifier,
    }


def _log(client: FlaskClient, task_id: str) -> str:
    response = client.get(f"{BASE}/task/{task_id}/log")
    assert response.status_code == 200
    return response.get_data(as_text=True)


# --- 1. tsv with columns and a transformSpec filter ---------------------------------


def test_tsv_with_columns_and_a_filter_keeps_the_matching_rows(
    client: FlaskClient, processes: Processes, tmp_path: Path
) -> None:
    lines = [
        "2015-09-12T01:00:00Z\t#en.wikipedia\tA\talice\t3",
        "2015-09-12T02:00:00Z\t#fr.wikipedia\tB\tbob\t5",  # channel filtered out
        "2015-09-12T03:00:00Z\t#en.wikipedia\tC\tbot1\t1",  # user filtered out
        "2015-09-12T04:00:00Z\t#en.wikipedia\tD\tcarol\t7",
        "2015-09-13T05:00:00Z\t#en.wikipedia\tE\tdave\t2",  # outside intervals
        "2015-09-12T06:00:00Z\t#en.wikipedia\tF\tbot2\t9",  # user filtered out
    ]
    text = "".join(line + "\n" for line in lines)
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "wiki.tsv").write_text(text)
    spec = _spec(
        {"type": "local", "baseDir": str(tmp_path / "input"), "filter": "*.tsv"},
        {"type": "tsv", "columns": ["time", "channel", "page", "user", "added"]},
        dimensions=["channel", "page", "user", {"name": "added", "type": "long"}],
        granularity={
            "segmentGranularity": "day",
            "queryGranularity": "none",
            "rollup": False,
            "intervals": ["2015-09-12/2015-09-13"],
        },
        transform={
            "filter": {
                "type": "and",
                "fields": [
                    {
                        "type": "selector",
                        "dimension": "channel",
                        "value": "#en.wikipedia",
                    },
                    {
                        "type": "not",
                        "field": {
                            "type": "in",
                            "dimension": "user",
                            "values": ["bot1", "bot2"],
                        },
                    },
                ],
            }
        },
    )
    processes.worker(1)
    task_id = submit(client, spec)

    final = _finished(client, task_id)

    assert (final["status"], final["errorMsg"]) == ("SUCCESS", None), processes.logs()
    [segment] = _used(client, "wikipedia")
    assert segment == _segment(
        segment, tmp_path / "segments", "channel,page,user,added"
    )
    assert segment["interval"] == DAY1
    assert pq.read_table(segment["loadSpec"]["path"]).to_pylist() == [
        {
            "__time": _at("2015-09-12T01:00:00Z"),
            "channel": "#en.wikipedia",
            "page": "A",
            "user": "alice",
            "added": 3,
        },
        {
            "__time": _at("2015-09-12T04:00:00Z"),
            "channel": "#en.wikipedia",
            "page": "D",
            "user": "carol",
            "added": 7,
        },
    ]
    payload = _report(client, task_id)["payload"]
    assert payload["rowStats"] == {
        "determinePartitions": _stats(),
        "buildSegments": _stats(
            processed=2, processedBytes=len(text.encode()), thrownAway=4
        ),
    }
    assert (payload["ingestionState"], payload["segmentsPublished"]) == (
        "COMPLETED",
        1,
    )


# --- 2. rollup at hour query granularity --------------------------------------------


def test_rollup_at_hour_granularity_combines_metrics(
    client: FlaskClient, processes: Processes, tmp_path: Path
) -> None:
    rows = [
        {"time": "2015-09-12T01:05:00Z", "channel": "#en", "added": 3, "delta": 1.5},
        {"time": "2015-09-12T01:59:59Z", "channel": "#en", "added": 7, "delta": -2.0},
        {"time": "2015-09-12T01:30:00Z", "channel": "#fr", "added": 1, "delta": 4.0},
        {"time": "2015-09-12T02:00:00Z", "channel": "#en", "added": 2, "delta": 0.5},
        {"time": "2015-09-12T01:10:00Z", "channel": "#en", "added": 5, "delta": 9.25},
        {"time": "2015-09-12T02:45:00Z", "channel": "#en", "added": 4, "delta": 3.0},
    ]
    data = _write_rows(tmp_path / "input", "wiki.json", rows)
    metrics = [
        {"type": "count", "name": "count"},
        {"type": "longSum", "name": "added", "fieldName": "added"},
        {"type": "longMin", "name": "minAdded", "fieldName": "added"},
        {"type": "doubleMax", "name": "maxDelta", "fieldName": "delta"},
        {"type": "doubleSum", "name": "sumDelta", "fieldName": "delta"},
    ]
    spec = _spec(
        {"type": "local", "baseDir": str(tmp_path / "input"), "filter": "*.json"},
        {"type": "json"},
        dimensions=["channel"],
        metrics=metrics,
        granularity={
            "segmentGranularity": "day",
            "queryGranularity": "hour",
            "rollup": True,
        },
    )
    processes.worker(1)
    task_id = submit(client, spec)

    final = _finished(client, task_id)

    assert (final["status"], final["errorMsg"]) == ("SUCCESS", None), processes.logs()
    [segment] = _used(client, "wikipedia")
    assert segment == _segment(
        segment,
        tmp_path / "segments",
        "channel",
        "count,added,minAdded,maxDelta,sumDelta",
    )
    path = segment["loadSpec"]["path"]
    one, two = _at("2015-09-12T01:00:00Z"), _at("2015-09-12T02:00:00Z")
    assert pq.read_table(path).to_pylist() == [
        {
            "__time": one,
            "channel": "#en",
            "count": 3,
            "added": 15,
            "minAdded": 3,
            "maxDelta": 9.25,
            "sumDelta": 8.75,
        },
        {
            "__time": one,
            "channel": "#fr",
            "count": 1,
            "added": 1,
            "minAdded": 1,
            "maxDelta": 4.0,
            "sumDelta": 4.0,
        },
        {
            "__time": two,
            "channel": "#en",
            "count": 2,
            "added": 6,
            "minAdded": 2,
            "maxDelta": 3.0,
            "sumDelta": 3.5,
        },
    ]
    # Druid's DataSegment JSON has no row count; the segment file and the task's
    # log tell it.
    assert pq.ParquetFile(path).metadata.num_rows == 3
    assert re.search(
        r"Wrote segment wikipedia \S+ partition 0: 3 rows", _log(client, task_id)
    )
    payload = _report(client, task_id)["payload"]
    assert payload["rowStats"]["buildSegments"] == _stats(
        processed=6, processedBytes=len(data)
    )


# --- 3. http input with basic auth ---------------------------------------------------


class _AuthServer:
    """A loopback HTTP server answering one body to requests with the right basic
    credentials, 401 to others."""

    def __init__(self, body: bytes, user: str, password: str) -> None:
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.authorizations: list[str | None] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                given = self.headers.get("Authorization")
                outer.authorizations.append(given)
                if given != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="data"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/wiki.json"

    def __enter__(self) -> _AuthServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _http_spec(uri: str, password: str) -> dict[str, Any]:
    return _spec(
        {
            "type": "http",
            "uris": [uri],
            "httpAuthenticationUsername": "druid",
            "httpAuthenticationPassword": {"type": "default", "password": password},
        },
        {"type": "json"},
        dimensions=["channel", "user"],
    )


def test_http_input_with_basic_auth_masks_the_password_and_fails_on_a_wrong_one(
    client: FlaskClient, processes: Processes, tmp_path: Path
) -> None:
    rows = [
        {"time": "2015-09-12T01:00:00Z", "channel": "#en", "user": "alice"},
        {"time": "2015-09-12T02:00:00Z", "channel": "#fr", "user": "bob"},
    ]
    body = "".join(json.dumps(row) + "\n" for row in rows).encode()
    processes.worker(1)
    with _AuthServer(body, "druid", "s3cret") as server:
        good = submit(client, _http_spec(server.uri, "s3cret"))
        assert _finished(client, good)["status"] == "SUCCESS", processes.logs()
        bad = submit(client, _http_spec(server.uri, "wrong"))
        final = _finished(client, bad)

    assert (final["status"], final["errorMsg"]) == (
        "FAILED",
        f"Failed to read [{server.uri}]: HTTP Error 401: Unauthorized",
    ), processes.logs()
    # The good task reads its input twice (no intervals: Druid's determine pass).
    assert server.authorizations == [
        "Basic " + base64.b64encode(b"druid:s3cret").decode(),
        "Basic " + base64.b64encode(b"druid:s3cret").decode(),
        "Basic " + base64.b64encode(b"druid:wrong").decode(),
    ]
    [segment] = _used(client, "wikipedia")
    assert pq.read_table(segment["loadSpec"]["path"]).to_pylist() == [
        {"__time": _at("2015-09-12T01:00:00Z"), "channel": "#en", "user": "alice"},
        {"__time": _at("2015-09-12T02:00:00Z"), "channel": "#fr", "user": "bob"},
    ]
    # The stored payload keeps the secret; reading it back masks it as Druid's
    # password-redacting mapper does (DefaultPasswordProvider → password null).
    response = client.get(f"{BASE}/task/{good}")
    assert response.status_code == 200
    body_text = response.get_data(as_text=True)
    assert "s3cret" not in body_text
    expected = _http_spec(server.uri, "s3cret")
    expected["spec"]["ioConfig"]["inputSource"]["httpAuthenticationPassword"] = {
        "type": "default",
        "password": None,
    }
    payload = response.json["payload"]  # type: ignore[index]
    assert response.json == {"task": good, "payload": payload}
    assert payload["spec"] == expected["spec"]
    assert (payload["type"], payload["id"]) == ("index", good)
    assert _report(client, bad)["payload"]["errorMsg"] == final["errorMsg"]


# --- 4. bad rows within maxParseExceptions -------------------------------------------


def test_bad_rows_within_max_parse_exceptions_succeed_and_are_reported(
    client: FlaskClient, processes: Processes, tmp_path: Path
) -> None:
    good = [
        {"time": "2015-09-12T01:00:00Z", "channel": "#en", "added": 1},
        {"time": "2015-09-12T02:00:00Z", "channel": "#fr", "added": 2},
        {"time": "2015-09-12T03:00:00Z", "channel": "#de", "added": 3},
    ]
    with_error = {"time": "2015-09-12T04:00:00Z", "channel": "#ja", "added": "many"}
    text = (
        json.dumps(good[0])
        + "\n{not json\n"
        + json.dumps(good[1])
        + "\n{neither\n"
        + json.dumps(good[2])
        + "\n"
        + json.dumps(with_error)
        + "\n"
    )
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "bad.json").write_text(text)
    spec = _spec(
        {"type": "local", "baseDir": str(tmp_path / "input"), "filter": "*.json"},
        {"type": "json"},
        dimensions=["channel", {"name": "added", "type": "long"}],
        tuning={
            "maxParseExceptions": 3,
            "maxSavedParseExceptions": 10,
            "logParseExceptions": True,
        },
    )
    processes.worker(1)
    before = int(time.time() * 1000)
    task_id = submit(client, spec)

    final = _finished(client, task_id)

    after = int(time.time() * 1000)
    assert (final["status"], final["errorMsg"]) == ("SUCCESS", None), processes.logs()
    payload = _report(client, task_id)["payload"]
    # No intervals: Druid's first read (determine partitions) counts the rows it
    # can parse, the row with a bad value among them (that error is found when
    # indexing, in buildSegments).
    assert payload["rowStats"] == {
        "determinePartitions": _stats(
            processed=4, processedBytes=len(text.encode()), unparseable=2
        ),
        "buildSegments": _stats(
            processed=3,
            processedBytes=len(text.encode()),
            processedWithError=1,
            unparseable=2,
        ),
    }
    events = payload["unparseableEvents"]
    assert list(events) == ["determinePartitions", "buildSegments"]
    determine = events["determinePartitions"]
    build = events["buildSegments"]
    times = [event.pop("timeOfExceptionMillis") for event in determine + build]
    assert all(isinstance(t, int) and before <= t <= after for t in times), times
    assert determine == build[1:]
    # Druid's ParseExceptionReports, newest first.
    assert build == [
        {
            "input": "{time=2015-09-12T04:00:00Z, channel=#ja, added=many}",
            "errorType": "processedWithError",
            "details": ["Unable to parse value[many] for field[added]"],
        },
        {
            "input": "{neither",
            "errorType": "unparseable",
            "details": ["Unable to parse row [{neither]"],
        },
        {
            "input": "{not json",
            "errorType": "unparseable",
            "details": ["Unable to parse row [{not json]"],
        },
    ]
    log = _log(client, task_id)
    assert [
        line.split("Encountered parse exception: ", 1)[1]
        for line in log.splitlines()
        if "Encountered parse exception: " in line
    ] == [
        "Unable to parse row [{not json]",
        "Unable to parse row [{neither]",
        "Unable to parse row [{not json]",
        "Unable to parse row [{neither]",
        "Unable to parse value[many] for field[added]",
    ], log
    [segment] = _used(client, "wikipedia")
    assert [
        (row["channel"], row["added"])
        for row in pq.read_table(segment["loadSpec"]["path"]).to_pylist()
    ] == [("#en", 1), ("#fr", 2), ("#de", 3), ("#ja", None)]


# --- 5. null timestamps ---------------------------------------------------------------


def test_null_timestamps_are_thrown_away(
    client: FlaskClient, processes: Processes, tmp_path: Path
) -> None:
    # Issue 9 §3: "null timestamps count as thrownAway" (Druid's newest
    # MapInputRowParser reports them as unparseable instead).
    rows = [
        {"time": "2015-09-12T01:00:00Z", "channel": "#en"},
        {"time": None, "channel": "#fr"},
        {"channel": "#de"},
        {"time": "2015-09-12T02:00:00Z", "channel": "#ja"},
    ]
    data = _write_rows(tmp_path / "input", "wiki.json", rows)
    spec = _spec(
        {"type": "local", "baseDir": str(tmp_path / "input"), "filter": "*.json"},
        {"type": "json"},
        dimensions=["channel"],
        tuning={"maxParseExceptions": 0, "maxSavedParseExceptions": 5},
    )
    processes.worker(1)
    task_id = submit(client, spec)

    final = _finished(client, task_id)

    assert (final["status"], final["errorMsg"]) == ("SUCCESS", None), processes.logs()
    payload = _report(client, task_id)["payload"]
    assert payload["rowStats"]["buildSegments"] == _stats(
        processed=2, processedBytes=len(data), thrownAway=2
    )
    # Druid's IndexTask lists both phases, empty, when it saves parse exceptions.
    assert payload["unparseableEvents"] == {
        "determinePartitions": [],
        "buildSegments": [],
    }
    [segment] = _used(client, "wikipedia")
    assert [
        row["channel"] for row in pq.read_table(segment["loadSpec"]["path"]).to_pylist()
    ] == ["#en", "#ja"]


# --- 6. a million rows under a memory bound --------------------------------------------

MILLION = 1_000_000
# Peak RSS of the task's process, imports and Arrow's pools included. Measured
# here for the ~110 MB input: about 145 MB, of which ~115 MB is the process before
# it reads a row; without maxBytesInMemory (its default 256 MB lets the reader
# take 16 MB blocks) about 265 MB.
RSS_BOUND_MB = 250


def _million_rows(path: Path) -> int:
    """1 M JSON lines over two days (~110 MB), written 1000 lines per write."""
    with path.open("w") as out:
        for block in range(MILLION // 1000):
            day, rest = divmod(block, 500)
            hour, minute = divmod(rest * 2, 60)
            stamp = f"2024-01-{day + 1:02d}T{hour:02d}:{minute:02d}"
            out.write(
                "".join(
                    f'{{"time":"{stamp}:{i % 60:02d}Z","channel":"#c{i % 7}",'
                    f'"page":"Page {block * 1000 + i}","user":"user{i % 997}",'
                    f'"added":{i},"deleted":{i % 13}}}\n'
                    for i in range(1000)
                )
            )
    return path.stat().st_size


def _peak_kib(pid: int) -> int:
    try:
        status_text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    found = re.search(r"^VmHWM:\s+(\d+) kB", status_text, re.MULTILINE)
    return int(found.group(1)) if found else 0


def test_a_million_rows_ingest_under_a_memory_bound(
    client: FlaskClient, processes: Processes, tmp_path: Path
) -> None:
    (tmp_path / "input").mkdir()
    size = _million_rows(tmp_path / "input" / "big.json")
    spec = _spec(
        {"type": "local", "baseDir": str(tmp_path / "input"), "filter": "*.json"},
        {"type": "json"},
        dimensions=["channel", "page", "user"],
        metrics=[
            {"type": "count", "name": "count"},
            {"type": "longSum", "name": "added", "fieldName": "added"},
            {"type": "longSum", "name": "deleted", "fieldName": "deleted"},
        ],
        tuning={
            "maxRowsInMemory": 20_000,
            "maxBytesInMemory": 4_000_000,
            "maxRowsPerSegment": 5_000_000,
        },
    )
    worker = processes.worker(1)
    task_id = submit(client, spec)
    # The worker's descendants (forkserver, spare and task processes): the
    # largest peak seen while polling is the task's, or above it.
    peaks: dict[int, int] = {}

    def sample() -> None:
        for pid in descendants(worker.pid):
            peaks[pid] = max(peaks.get(pid, 0), _peak_kib(pid))

    def done() -> bool:
        sample()
        return bool(status(client, task_id)["status"] != "RUNNING")

    wait_for(done, 240)
    final = _finished(client, task_id)
    assert (final["status"], final["errorMsg"]) == ("SUCCESS", None), processes.logs()
    log = _log(client, task_id)
    # The task's own figure (getrusage's ru_maxrss at the end of the run).
    found = re.search(r"peak RSS (\d+) KiB", log)
    assert found, log
    peak_mb = max(int(found.group(1)), *peaks.values(), 0) / 1024
    assert peak_mb < RSS_BOUND_MB, (peak_mb, size)
    segments = _used(client, "wikipedia")
    assert [s["interval"] for s in segments] == [
        "2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z",
        "2024-01-02T00:00:00.000Z/2024-01-03T00:00:00.000Z",
    ]
    assert [
        pq.ParquetFile(s["loadSpec"]["path"]).metadata.num_rows for s in segments
    ] == [
        MILLION // 2,
        MILLION // 2,
    ]
    assert _report(client, task_id)["payload"]["rowStats"]["buildSegments"] == _stats(
        processed=MILLION, processedBytes=size
    )
