"""``index`` / ``index_parallel`` really ingest: real worker processes on every
backend, small inputs the tests write."""

from __future__ import annotations

import http.server
import json
import os
import threading
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from flask.testing import FlaskClient
from sqlalchemy import func, select

from overlord.db import Database
from overlord.store.models import PendingSegment
from tests.factories import make_task
from tests.worker.conftest import BASE, Processes, status, submit, wait_for

COORDINATOR = "/druid/coordinator/v1/metadata"

WIKI_ROWS = [
    {"time": "2015-09-12T00:46:58.771Z", "channel": "#en.wikipedia", "page": "Talk:Oswald Tilghman", "user": "GELongstreet", "added": 36, "deleted": 0, "delta": 36},
    {"time": "2015-09-12T00:47:00.496Z", "channel": "#ca.wikipedia", "page": "Rallicula", "user": "PereBot", "added": 17, "deleted": 0, "delta": 17},
    {"time": "2015-09-12T00:47:05.474Z", "channel": "#en.wikipedia", "page": "Peremptory norm", "user": "60.225.66.142", "added": 0, "deleted": 5, "delta": -5},
    {"time": "2015-09-12T23:59:59.000Z", "channel": "#vi.wikipedia", "page": "Apamea abruzzorum", "user": "Cheers!-bot", "added": 18, "deleted": 0, "delta": 18},
    {"time": "2015-09-13T00:00:00.000Z", "channel": "#en.wikipedia", "page": "Atmosphere", "user": "Kiwi", "added": 1, "deleted": 2, "delta": -1},
]  # fmt: skip


def _write_rows(directory: Path, name: str, rows: list[dict[str, Any]]) -> bytes:
    directory.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(row) + "\n" for row in rows).encode()
    (directory / name).write_bytes(data)
    return data


def _wiki_spec(
    kind: str,
    base_dir: Path,
    *,
    intervals: list[str] | None = None,
    append: bool = False,
    tuning: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Druid's wikipedia tutorial spec (quickstart/tutorial/wikipedia-index.json)."""
    granularity: dict[str, Any] = {
        "segmentGranularity": "day",
        "queryGranularity": "none",
        "rollup": False,
    }
    if intervals is not None:
        granularity["intervals"] = intervals
    return {
        "type": kind,
        "spec": {
            "dataSchema": {
                "dataSource": "wikipedia",
                "timestampSpec": {"column": "time", "format": "iso"},
                "dimensionsSpec": {
                    "dimensions": [
                        "channel",
                        "page",
                        "user",
                        {"name": "added", "type": "long"},
                        {"name": "deleted", "type": "long"},
                        {"name": "delta", "type": "long"},
                    ]
                },
                "granularitySpec": granularity,
            },
            "ioConfig": {
                "type": kind,
                "inputSource": {
                    "type": "local",
                    "baseDir": str(base_dir),
                    "filter": "*.json",
                },
                "inputFormat": {"type": "json"},
                "appendToExisting": append,
            },
            "tuningConfig": {
                "type": kind,
                "partitionsSpec": {"type": "dynamic"},
                **(tuning or {}),
            },
        },
    }


def _finished(client: FlaskClient, task_id: str, timeout: float = 60) -> dict[str, Any]:
    return dict(
        wait_for(
            lambda: (s := status(client, task_id))["status"] != "RUNNING" and s,
            timeout,
        )
    )


def _report(client: FlaskClient, task_id: str) -> dict[str, Any]:
    response = client.get(f"{BASE}/task/{task_id}/reports")
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.json["ingestionStatsAndErrors"])  # type: ignore[index]


def _stats(**figures: int) -> dict[str, int]:
    stats = {
        "processed": 0,
        "processedBytes": 0,
        "processedWithError": 0,
        "thrownAway": 0,
        "unparseable": 0,
    }
    stats.update(figures)
    return stats


def _used(client: FlaskClient, datasource: str) -> list[dict[str, Any]]:
    response = client.get(f"{COORDINATOR}/datasources/{datasource}/segments?full")
    if response.status_code == 404:
        assert response.get_data() == b""
        return []
    assert response.status_code == 200
    return list(response.json)  # type: ignore[arg-type]


def _segment(
    interval: str, version: str, partition: int, partitions: int, path: str, size: int
) -> dict[str, Any]:
    start, end = interval.split("/")
    identifier = f"wikipedia_{start}_{end}_{version}"
    return {
        "dataSource": "wikipedia",
        "interval": interval,
        "version": version,
        "loadSpec": {"type": "local", "path": path},
        "dimensions": "channel,page,user,added,deleted,delta",
        "metrics": "",
        "shardSpec": {
            "type": "numbered",
            "partitionNum": partition,
            "partitions": partitions,
        },
        "binaryVersion": 9,
        "size": size,
        "identifier": identifier if partition == 0 else f"{identifier}_{partition}",
    }


def _expected(segment: dict[str, Any], storage: Path) -> dict[str, Any]:
    """What a segment of this test must look like, given its version."""
    shard = segment["shardSpec"]
    start, end = segment["interval"].split("/")
    path = (
        storage
        / "wikipedia"
        / f"{start}_{end}"
        / segment["version"]
        / str(shard["partitionNum"])
        / "index.parquet"
    )
    return _segment(
        segment["interval"],
        segment["version"],
        shard["partitionNum"],
        shard["partitions"],
        str(path),
        path.stat().st_size,
    )


def _files(storage: Path) -> list[str]:
    if not storage.exists():
        return []
    return sorted(
        str(Path(root, name).relative_to(storage))
        for root, _, names in os.walk(storage)
        for name in names
    )


DAY1 = "2015-09-12T00:00:00.000Z/2015-09-13T00:00:00.000Z"
DAY2 = "2015-09-13T00:00:00.000Z/2015-09-14T00:00:00.000Z"


def test_wikipedia_tutorial_spec_ingests_publishes_and_reports(
    client: FlaskClient, processes: Processes, tmp_path: Path
) -> None:
    data = _write_rows(tmp_path / "input", "wikiticker.json", WIKI_ROWS)
    processes.worker(1)
    task_id = submit(client, _wiki_spec("index_parallel", tmp_path / "input"))

    final = _finished(client, task_id)

    assert (final["status"], final["errorMsg"]) == ("SUCCESS", None), processes.logs()
    storage = tmp_path / "segments"
    segments = _used(client, "wikipedia")
    assert [s["interval"] for s in segments] == [DAY1, DAY2]
    assert segments == [_expected(s, storage) for s in segments]
    rows = [pq.read_table(s["loadSpec"]["path"]).to_pylist() for s in segments]
    assert [len(part) for part in rows] == [4, 1]
    assert rows[1] == [
        {
            "__time": rows[1][0]["__time"],
            "channel": "#en.wikipedia",
            "page": "Atmosphere",
            "user": "Kiwi",
            "added": 1,
            "deleted": 2,
            "delta": -1,
        }
    ]
    assert client.get(f"{COORDINATOR}/datasources").json == ["wikipedia"]
    assert _report(client, task_id) == {
        "type": "ingestionStatsAndErrors",
        "taskId": task_id,
        "payload": {
            "ingestionState": "COMPLETED",
            "unparseableEvents": {},
            # No granularitySpec.intervals: Druid's IndexTask reads the input a
            # first time to find them (determineShardSpecs with determineIntervals,
            # collectIntervalsAndShardSpecs counting in determinePartitionsMeters),
            # then a second time to build the segments.
            "rowStats": {
                "determinePartitions": _stats(processed=5, processedBytes=len(data)),
                "buildSegments": _stats(processed=5, processedBytes=len(data)),
            },
            "errorMsg": None,
            "segmentAvailabilityConfirmed": False,
            "segmentAvailabilityWaitTimeMs": 0,
            "recordsProcessed": None,
            "segmentsPublished": 2,
        },
    }


def test_reingest_overshadows_append_adds_partitions_and_kill_removes_old_files(
    client: FlaskClient, processes: Processes, tmp_path: Path
) -> None:
    _write_rows(tmp_path / "input", "wiki.json", WIKI_ROWS[:4])
    storage = tmp_path / "segments"
    processes.worker(1)
    intervals = ["2015-09-12/2015-09-13"]

    first = submit(client, _wiki_spec("index", tmp_path / "input", intervals=intervals))
    assert _finished(client, first)["status"] == "SUCCESS", processes.logs()
    [old] = _used(client, "wikipedia")
    second = submit(
        client, _wiki_spec("index", tmp_path / "input", intervals=intervals)
    )
    assert _finished(client, second)["status"] == "SUCCESS", processes.logs()
    [new] = _used(client, "wikipedia")
    assert new["version"] > old["version"]
    assert new == _expected(new, storage)
    appended = submit(
        client,
        _wiki_spec("index", tmp_path / "input", intervals=intervals, append=True),
    )
    assert _finished(client, appended)["status"] == "SUCCESS", processes.logs()
    segments = _used(client, "wikipedia")
    assert segments == [
        new,
        {**_expected(segments[1], storage), "version": new["version"]},
    ]
    assert segments[1]["shardSpec"] == {
        "type": "numbered",
        "partitionNum": 1,
        "partitions": 1,
    }
    old_file = Path(old["loadSpec"]["path"])
    assert old_file.exists()

    kill = submit(
        client,
        {
            "type": "kill",
            "dataSource": "wikipedia",
            "interval": "2015-09-12/2015-09-13",
        },
    )
    assert _finished(client, kill)["status"] == "SUCCESS", processes.logs()
    assert not old_file.exists()
    assert _files(storage) == sorted(
        str(Path(s["loadSpec"]["path"]).relative_to(storage)) for s in segments
    )
    assert _used(client, "wikipedia") == segments


def test_csv_with_header_ingests(
    client: FlaskClient, processes: Processes, tmp_path: Path
) -> None:
    text = (
        "time,channel,page,user,added,deleted,delta\n"
        "2015-09-12T01:00:00Z,#en.wikipedia,A,u1,3,1,2\n"
        "2015-09-12T02:00:00Z,#fr.wikipedia,B,u2,5,0,5\n"
    )
    spec = _wiki_spec("index", tmp_path)
    spec["spec"]["ioConfig"]["inputSource"] = {"type": "inline", "data": text}
    spec["spec"]["ioConfig"]["inputFormat"] = {
        "type": "csv",
        "findColumnsFromHeader": True,
    }
    processes.worker(1)
    task_id = submit(client, spec)

    assert _finished(client, task_id)["status"] == "SUCCESS", processes.logs()
    [segment] = _used(client, "wikipedia")
    assert segment["interval"] == DAY1
    assert pq.read_table(segment["loadSpec"]["path"]).to_pylist()[1] | {
        "__time": None
    } == {
        "__time": None,
        "channel": "#fr.wikipedia",
        "page": "B",
        "user": "u2",
        "added": 5,
        "deleted": 0,
        "delta": 5,
    }
    payload = _report(client, task_id)["payload"]
    assert payload["rowStats"]["buildSegments"] == _stats(
        processed=2, processedBytes=len(text.encode())
    )


def test_bad_rows_beyond_max_parse_exceptions_fail_and_publish_nothing(
    client: FlaskClient, processes: Processes, tmp_path: Path, db: Database
) -> None:
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "bad.json").write_text(
        json.dumps(WIKI_ROWS[0])
        + "\n{not json\n{neither\n"
        + json.dumps(WIKI_ROWS[1])
        + "\n"
    )
    spec = _wiki_spec(
        "index_parallel", tmp_path / "input", tuning={"maxParseExceptions": 1}
    )
    processes.worker(1)
    task_id = submit(client, spec)

    final = _finished(client, task_id)

    assert (final["status"], final["errorMsg"]) == (
        "FAILED",
        "Max parse exceptions[1] exceeded",
    ), processes.logs()
    assert _used(client, "wikipedia") == []
    assert _files(tmp_path / "segments") == []
    assert (
        db.run(lambda s: s.scalar(select(func.count()).select_from(PendingSegment)))
        == 0
    )
    payload = _report(client, task_id)["payload"]
    # No intervals: the limit is passed in the first read (Druid's
    # determine-partitions pass has its own ParseExceptionHandler).
    assert payload["ingestionState"] == "DETERMINE_PARTITIONS"
    assert payload["errorMsg"] == "Max parse exceptions[1] exceeded"
    assert payload["rowStats"]["buildSegments"] == _stats()
    assert "segmentsPublished" not in payload


def test_airflow_style_index_parallel_submit_reaches_success(
    client: FlaskClient, processes: Processes, tmp_path: Path
) -> None:
    """Airflow's DruidHook.submit_indexing_job: POST the JSON text of the spec with
    a JSON content type, then poll ``/task/{id}/status`` until it is not RUNNING."""
    _write_rows(tmp_path / "input", "wiki.json", WIKI_ROWS)
    spec = _wiki_spec("index_parallel", tmp_path / "input")
    spec["spec"]["tuningConfig"]["maxNumConcurrentSubTasks"] = 2
    processes.worker(1)
    response = client.post(
        f"{BASE}/task",
        data=json.dumps(spec, indent=4),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    task_id = response.json["task"]  # type: ignore[index]

    assert _finished(client, task_id)["status"] == "SUCCESS", processes.logs()
    assert len(_used(client, "wikipedia")) == 2


class _HeldBackServer:
    """A loopback HTTP server that sends all but the end of its body, then waits
    for ``release`` (the test's signal) before sending the rest."""

    def __init__(self, body: bytes) -> None:
        self.requested = threading.Event()
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:-1])
                self.wfile.flush()
                outer.requested.set()
                outer.release.wait(60)
                self.wfile.write(body[-1:])

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/wiki.json"

    def __enter__(self) -> _HeldBackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_shutdown_during_ingestion_publishes_nothing_and_live_report_is_readable(
    client: FlaskClient, processes: Processes, tmp_path: Path, db: Database
) -> None:
    body = "".join(json.dumps(row) + "\n" for row in WIKI_ROWS).encode()
    with _HeldBackServer(body) as server:
        spec = _wiki_spec("index", tmp_path)
        spec["spec"]["ioConfig"]["inputSource"] = {"type": "http", "uris": [server.uri]}
        # A grace long enough for the task to stop on its own (not to be killed).
        processes.worker(1, OVERLORD_TASK_SHUTDOWN_GRACE="PT30S")
        task_id = submit(client, spec)
        assert server.requested.wait(60), processes.logs()
        live = wait_for(
            lambda: (
                (r := client.get(f"{BASE}/task/{task_id}/reports")).status_code == 200
                and r.json
            ),
            30,
        )
        # No intervals: the first read is IndexTask's determine-partitions pass,
        # and a running task's live report has the current phase's figures only.
        assert live["ingestionStatsAndErrors"] == {
            "taskId": task_id,
            "payload": {
                "ingestionState": "DETERMINE_PARTITIONS",
                "unparseableEvents": {},
                "rowStats": {
                    "movingAverages": {
                        "determinePartitions": {
                            window: {key: 0.0 for key in _stats()}
                            for window in ("1m", "5m", "15m")
                        }
                    },
                    "totals": {"determinePartitions": _stats()},
                },
            },
            "type": "ingestionStatsAndErrors",
        }

        assert client.post(f"{BASE}/task/{task_id}/shutdown").status_code == 200
        # The worker has signalled the task's process: let the input end.
        wait_for(lambda: "is no longer active" in processes.logs(), 30)
        server.release.set()
        final = _finished(client, task_id)

    assert (final["status"], final["errorMsg"]) == (
        "FAILED",
        "Shutdown request from user",
    ), processes.logs()
    # The task's process stops on its own, after removing what it wrote.
    wait_for(
        lambda: (
            "Task finished with status[FAILED]"
            in client.get(f"{BASE}/task/{task_id}/log").get_data(as_text=True)
        ),
        30,
        describe=lambda: (
            processes.logs()
            + client.get(f"{BASE}/task/{task_id}/log").get_data(as_text=True)
        ),
    )
    assert _used(client, "wikipedia") == []
    assert _files(tmp_path / "segments") == []
    assert (
        db.run(lambda s: s.scalar(select(func.count()).select_from(PendingSegment)))
        == 0
    )


def test_spec_the_engine_cannot_run_fails_with_a_clear_message(
    client: FlaskClient, processes: Processes, db: Database, tmp_path: Path
) -> None:
    # The typed model refuses such a spec at submit (Druid without the hdfs
    # extension does too); a row stored before it existed still fails cleanly.
    spec = _wiki_spec("index_parallel", tmp_path)
    spec["spec"]["ioConfig"]["inputSource"] = {"type": "hdfs", "paths": "/x"}
    assert client.post(f"{BASE}/task", json=spec).status_code == 400
    spec["id"] = task_id = "stored_before_the_typed_model"
    with db.transaction(write=True) as session:
        make_task(
            session,
            task_id=task_id,
            type="index_parallel",
            group_id=task_id,
            datasource="wikipedia",
            payload=json.dumps(spec),
        )
    processes.worker(1)

    final = _finished(client, task_id)

    message = "Cannot run the ingestion spec: unknown inputSource type [hdfs]"
    assert (final["status"], final["errorMsg"]) == ("FAILED", message)
    assert _report(client, task_id)["payload"]["errorMsg"] == message


def test_kill_removes_files_of_deep_storage_given_as_a_uri(
    client: FlaskClient, processes: Processes, tmp_path: Path
) -> None:
    _write_rows(tmp_path / "input", "wiki.json", WIKI_ROWS[:1])
    remote = tmp_path / "remote"
    processes.worker(1, OVERLORD_DEEP_STORAGE_DIR=f"file://{remote}")
    spec = _wiki_spec("index", tmp_path / "input")
    first = submit(client, spec)
    assert _finished(client, first)["status"] == "SUCCESS", processes.logs()
    [old] = _used(client, "wikipedia")
    assert old["loadSpec"]["path"].startswith(f"file://{remote}/wikipedia/")
    second = submit(client, spec)
    assert _finished(client, second)["status"] == "SUCCESS", processes.logs()
    [new] = _used(client, "wikipedia")

    kill = submit(
        client,
        {
            "type": "kill",
            "dataSource": "wikipedia",
            "interval": "2015-09-12/2015-09-13",
        },
    )
    assert _finished(client, kill)["status"] == "SUCCESS", processes.logs()

    assert _files(remote) == [new["loadSpec"]["path"].removeprefix(f"file://{remote}/")]
