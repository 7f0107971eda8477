"""``index_parallel`` with ``maxNumConcurrentSubTasks`` > 1: a supervisor whose
``single_phase_sub_task``\\ s are real tasks claimed by real workers, on every
backend."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from flask.testing import FlaskClient
from sqlalchemy import func, select

from overlord.db import Database
from overlord.services.execution import RUN_FAILED
from overlord.store.models import PendingSegment, PushedSegmentsReport
from tests.processes import descendants
from tests.worker.conftest import BASE, Processes, submit, wait_for
from tests.worker.test_index_ingest import (
    DAY1,
    DAY2,
    WIKI_ROWS,
    _expected,
    _files,
    _finished,
    _HeldBackServer,
    _report,
    _stats,
    _used,
    _wiki_spec,
    _write_rows,
)

SUB_TASK = "single_phase_sub_task"


def _parallel_spec(base_dir: Path, **kw: Any) -> dict[str, Any]:
    spec = _wiki_spec("index_parallel", base_dir, **kw)
    spec["spec"]["tuningConfig"]["maxNumConcurrentSubTasks"] = 2
    return spec


def _sub_tasks(client: FlaskClient) -> list[dict[str, Any]]:
    """Every sub-task ``GET /tasks`` lists, oldest first."""
    response = client.get(f"{BASE}/tasks?type={SUB_TASK}")
    assert response.status_code == 200
    return sorted(response.json, key=lambda t: t["createdTime"])  # type: ignore[arg-type]


def _payload(client: FlaskClient, task_id: str) -> dict[str, Any]:
    response = client.get(f"{BASE}/task/{task_id}")
    assert response.status_code == 200
    return dict(response.json["payload"])  # type: ignore[index]


def _pending(db: Database) -> int:
    return int(
        db.run(lambda s: s.scalar(select(func.count()).select_from(PendingSegment)))
    )


def test_three_files_run_as_sub_tasks_and_publish_at_once(
    client: FlaskClient, processes: Processes, tmp_path: Path, db: Database
) -> None:
    data = [
        _write_rows(tmp_path / "input", "a.json", WIKI_ROWS[0:2]),
        _write_rows(tmp_path / "input", "b.json", WIKI_ROWS[2:4]),
        _write_rows(tmp_path / "input", "c.json", WIKI_ROWS[4:5]),
    ]
    # The supervisor takes one slot, its two concurrent sub-tasks the others.
    processes.worker(3)
    supervisor = submit(client, _parallel_spec(tmp_path / "input"))

    final = _finished(client, supervisor)

    assert (final["status"], final["errorMsg"]) == ("SUCCESS", None), processes.logs()
    subs = _sub_tasks(client)
    assert [(t["type"], t["status"], t["groupId"], t["dataSource"]) for t in subs] == [
        (SUB_TASK, "SUCCESS", supervisor, "wikipedia")
    ] * 3
    inputs = tmp_path / "input"
    payloads = [_payload(client, t["id"]) for t in subs]
    assert sorted(
        p["spec"]["ioConfig"]["inputSource"]["files"][0] for p in payloads
    ) == [str(inputs / name) for name in ("a.json", "b.json", "c.json")]
    for payload in payloads:
        assert payload["id"].startswith(f"{SUB_TASK}_wikipedia_")
        assert payload["supervisorTaskId"] == supervisor
        assert payload["groupId"] == supervisor
        assert payload["numAttempts"] == 0
        assert payload["subtaskSpecId"].startswith(f"{supervisor}_")
        assert payload["spec"]["ioConfig"]["inputSource"]["type"] == "local"
    assert sorted(p["subtaskSpecId"] for p in payloads) == [
        f"{supervisor}_{n}" for n in range(3)
    ]

    # a.json and b.json: two rows of day 1 each; c.json: the row of day 2. Each
    # sub-task pushes its own partition of the chunk it meets, numbered across them.
    storage = tmp_path / "segments"
    segments = _used(client, "wikipedia")
    assert segments == [_expected(s, storage) for s in segments]
    assert [(s["interval"], s["shardSpec"]["partitions"]) for s in segments] == [
        (DAY1, 2),
        (DAY1, 2),
        (DAY2, 1),
    ]
    assert [s["shardSpec"]["partitionNum"] for s in segments] == [0, 1, 0]
    assert len({s["version"] for s in segments[:2]}) == 1
    assert _files(storage) == sorted(
        str(Path(s["loadSpec"]["path"]).relative_to(storage)) for s in segments
    )
    assert _pending(db) == 0
    assert _report(client, supervisor) == {
        "type": "ingestionStatsAndErrors",
        "taskId": supervisor,
        "payload": {
            "ingestionState": "COMPLETED",
            "unparseableEvents": {"buildSegments": []},
            "rowStats": {
                "totals": {
                    "buildSegments": _stats(
                        processed=5, processedBytes=sum(len(d) for d in data)
                    )
                }
            },
            "errorMsg": None,
            "segmentAvailabilityConfirmed": False,
            "segmentAvailabilityWaitTimeMs": 0,
            "recordsProcessed": None,
            "segmentsPublished": 3,
        },
    }
    # Each sub-task reports its own rows, as Druid's SinglePhaseSubTask does.
    [first] = [p for p in payloads if p["spec"]["ioConfig"]["inputSource"]["files"]
               == [str(inputs / "a.json")]]  # fmt: skip
    assert _report(client, first["id"]) == {
        "type": "ingestionStatsAndErrors",
        "taskId": first["id"],
        "payload": {
            "ingestionState": "COMPLETED",
            "unparseableEvents": {"buildSegments": []},
            "rowStats": {
                "buildSegments": _stats(processed=2, processedBytes=len(data[0]))
            },
            "errorMsg": None,
            "segmentAvailabilityConfirmed": False,
            "segmentAvailabilityWaitTimeMs": 0,
            "recordsProcessed": None,
        },
    }


def test_appending_sub_tasks_allocate_as_the_supervisor(
    client: FlaskClient, processes: Processes, tmp_path: Path, db: Database
) -> None:
    """appendToExisting: each sub-task asks ``segmentAllocate`` through a
    ``surrogateAction`` of its supervisor, so new partitions join the existing
    version under the supervisor's lock."""
    _write_rows(tmp_path / "first", "wiki.json", WIKI_ROWS[0:1])
    processes.worker(3)
    first = submit(client, _wiki_spec("index", tmp_path / "first"))
    assert _finished(client, first)["status"] == "SUCCESS", processes.logs()
    [old] = _used(client, "wikipedia")
    _write_rows(tmp_path / "input", "a.json", WIKI_ROWS[1:2])
    _write_rows(tmp_path / "input", "b.json", WIKI_ROWS[2:3])

    supervisor = submit(client, _parallel_spec(tmp_path / "input", append=True))

    assert _finished(client, supervisor)["status"] == "SUCCESS", processes.logs()
    assert [t["status"] for t in _sub_tasks(client)] == ["SUCCESS"] * 2
    segments = _used(client, "wikipedia")
    assert segments[0] == old
    storage = tmp_path / "segments"
    assert segments[1:] == [_expected(s, storage) for s in segments[1:]]
    assert [
        (s["interval"], s["version"], s["shardSpec"]["partitionNum"]) for s in segments
    ] == [(DAY1, old["version"], n) for n in range(3)]
    assert _pending(db) == 0


def test_one_slot_runs_the_splits_in_the_supervisor(
    client: FlaskClient, processes: Processes, tmp_path: Path
) -> None:
    """With a single task slot no sub-task could ever run beside its supervisor
    (Druid would wait forever): the supervisor ingests the splits itself."""
    _write_rows(tmp_path / "input", "a.json", WIKI_ROWS[0:2])
    _write_rows(tmp_path / "input", "b.json", WIKI_ROWS[2:5])
    processes.worker(1)
    supervisor = submit(client, _parallel_spec(tmp_path / "input"))

    assert _finished(client, supervisor)["status"] == "SUCCESS", processes.logs()
    assert _sub_tasks(client) == []
    assert [s["interval"] for s in _used(client, "wikipedia")] == [DAY1, DAY2]


def test_failing_sub_task_fails_the_supervisor_and_publishes_nothing(
    client: FlaskClient, processes: Processes, tmp_path: Path, db: Database
) -> None:
    _write_rows(tmp_path / "input", "a.json", WIKI_ROWS[0:2])
    (tmp_path / "input" / "b.json").write_text("{not json\n{neither\n")
    _write_rows(tmp_path / "input", "c.json", WIKI_ROWS[4:5])
    processes.worker(3)
    spec = _parallel_spec(tmp_path / "input", tuning={"maxParseExceptions": 1})
    supervisor = submit(client, spec)

    final = _finished(client, supervisor)

    assert (final["status"], final["errorMsg"]) == (
        "FAILED",
        "Failed in phase[segment generation]. See task logs for details.",
    ), processes.logs()
    subs = {t["id"]: t for t in _sub_tasks(client)}
    # b.json's spec was tried maxRetry (default 3) times, as Druid's TaskMonitor
    # does (numTries < maxRetry), each a new task with numAttempts one more.
    bad_file = str(tmp_path / "input" / "b.json")
    tries = [
        (p["numAttempts"], subs[p["id"]]["status"], subs[p["id"]]["errorMsg"])
        for p in (_payload(client, t) for t in subs)
        if p["spec"]["ioConfig"]["inputSource"]["files"] == [bad_file]
    ]
    assert tries == [
        (n, "FAILED", "Max parse exceptions[1] exceeded") for n in range(3)
    ]
    assert all(t["status"] in ("SUCCESS", "FAILED") for t in subs.values())
    assert _used(client, "wikipedia") == []
    wait_for(lambda: _files(tmp_path / "segments") == [], 30)
    assert _pending(db) == 0
    log = client.get(f"{BASE}/task/{supervisor}/log").get_data(as_text=True)
    last = next(
        t
        for t in subs
        if _payload(client, t)["numAttempts"] == 2
        and _payload(client, t)["spec"]["ioConfig"]["inputSource"]["files"]
        == [bad_file]
    )
    assert f"Failed because of the failed sub task[{last}]" in log


def _uri_spec(tmp_path: Path, uris: list[str]) -> dict[str, Any]:
    spec = _parallel_spec(tmp_path)
    spec["spec"]["ioConfig"]["inputSource"] = {"type": "http", "uris": uris}
    return spec


def test_sub_tasks_are_children_in_tasks_and_supervisor_shutdown_stops_them(
    client: FlaskClient, processes: Processes, tmp_path: Path, db: Database
) -> None:
    body = "".join(json.dumps(row) + "\n" for row in WIKI_ROWS).encode()
    with _HeldBackServer(body) as server:
        processes.worker(3, OVERLORD_TASK_SHUTDOWN_GRACE="PT30S")
        supervisor = submit(client, _uri_spec(tmp_path, [server.uri, server.uri]))
        subs = wait_for(
            lambda: (
                len(s := _sub_tasks(client)) == 2
                and all(t["runnerStatusCode"] == "RUNNING" for t in s)
                and s
            ),
            60,
            describe=processes.logs,
        )
        node = next(iter(client.get("/_nodes").json["nodes"]))  # type: ignore[index]
        forest = client.get("/_tasks?detailed&group_by=parents&actions=*druid*").json
        [(key, parent)] = forest["tasks"].items()  # type: ignore[index]
        assert parent["action"] == "indices:data/write/druid/index_parallel"
        assert parent["description"] == (
            f"task[{supervisor}], type[index_parallel], dataSource[wikipedia]"
        )
        assert key == f"{node}:{parent['id']}"
        assert [
            (
                child["action"],
                child["parent_task_id"],
                child["status"]["id"],
                child["status"]["groupId"],
            )
            for child in parent["children"]
        ] == [
            (f"indices:data/write/druid/{SUB_TASK}", key, t["id"], supervisor)
            for t in subs
        ]
        by_parent = client.get(f"/_tasks?parent_task_id={key}").json
        assert (
            sorted(
                task["action"]
                for task in by_parent["nodes"][node]["tasks"].values()  # type: ignore[index]
            )
            == [f"indices:data/write/druid/{SUB_TASK}"] * 2
        )

        assert client.post(f"{BASE}/task/{supervisor}/shutdown").status_code == 200
        # Final at once: the sub-tasks ended with their supervisor.
        assert [(t["status"], t["errorMsg"]) for t in _sub_tasks(client)] == [
            ("FAILED", "Shutdown request from user")
        ] * 2
        server.release.set()
        final = _finished(client, supervisor)

    assert (final["status"], final["errorMsg"]) == (
        "FAILED",
        "Shutdown request from user",
    )
    for task_id in [supervisor, *(t["id"] for t in subs)]:
        wait_for(
            lambda task_id=task_id: (
                "Task finished with status[FAILED]"
                in client.get(f"{BASE}/task/{task_id}/log").get_data(as_text=True)
            ),
            30,
            describe=processes.logs,
        )
    assert _used(client, "wikipedia") == []
    assert _files(tmp_path / "segments") == []
    assert _pending(db) == 0
    assert (
        db.run(
            lambda s: s.scalar(select(func.count()).select_from(PushedSegmentsReport))
        )
        == 0
    )


def test_sub_task_without_a_running_supervisor_fails_and_writes_nothing(
    client: FlaskClient, processes: Processes, tmp_path: Path, db: Database
) -> None:
    _write_rows(tmp_path / "input", "a.json", WIKI_ROWS[0:2])
    spec = _parallel_spec(tmp_path / "input")
    processes.worker(1)
    task_id = submit(
        client,
        {
            "type": SUB_TASK,
            "supervisorTaskId": "no_such_supervisor",
            "subtaskSpecId": "no_such_supervisor_0",
            "numAttempts": 0,
            "spec": spec["spec"],
        },
    )

    final = _finished(client, task_id)

    assert (final["status"], final["errorMsg"]) == (
        "FAILED",
        "Can't find surrogate task[no_such_supervisor]",
    ), processes.logs()
    assert _used(client, "wikipedia") == []
    assert _files(tmp_path / "segments") == []
    assert _pending(db) == 0


class _FirstTryHeldServer:
    """A loopback HTTP server of one body per path. The first request for a path in
    ``hold`` gets all but the body's last byte and then waits (until the test's
    ``release``); every later request gets the whole body at once. It records the
    client port of each held request, to find the process that made it."""

    def __init__(self, bodies: dict[str, bytes], hold: set[str]) -> None:
        self.held: dict[str, int] = {}
        self.requests: list[str] = []
        self.release = threading.Event()
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = bodies[self.path]
                with outer.lock:
                    first = self.path in hold and self.path not in outer.held
                    if first:
                        outer.held[self.path] = self.client_address[1]
                    outer.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if first:
                        self.wfile.write(body[:-1])
                        self.wfile.flush()
                        outer.release.wait(60)
                        body = body[-1:]
                    self.wfile.write(body)
                except OSError:
                    return  # the client was killed meanwhile

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def uri(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def __enter__(self) -> _FirstTryHeldServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _socket_inodes(local_port: int) -> set[str]:
    """Inodes of the loopback TCP sockets bound to ``local_port`` (/proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == local_port:
            found.add(fields[9])
    return found


def _process_with_socket(roots: list[int], local_port: int) -> int | None:
    """The descendant of ``roots`` holding the socket of ``local_port``: the task
    process that made the request."""
    inodes = _socket_inodes(local_port)
    for root in roots:
        for pid in descendants(root):
            try:
                links = [os.readlink(f) for f in Path(f"/proc/{pid}/fd").iterdir()]
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
            if any(
                link[len("socket:[") : -1] in inodes
                for link in links
                if link.startswith("socket:[")
            ):
                return pid
    return None


def _kill_held_sub_task(
    server: _FirstTryHeldServer, path: str, workers: list[subprocess.Popen[bytes]]
) -> None:
    """SIGKILL the task process whose request for ``path`` the server holds."""
    wait_for(lambda: path in server.held, 60, describe=lambda: str(server.requests))
    pid = wait_for(
        lambda: _process_with_socket([w.pid for w in workers], server.held[path]),
        30,
        describe=lambda: f"no process has the socket of port {server.held[path]}",
    )
    os.kill(pid, signal.SIGKILL)


def _retry_spec(
    server: _FirstTryHeldServer, tmp_path: Path, **tuning: Any
) -> dict[str, Any]:
    spec = _uri_spec(tmp_path, [server.uri("/a.json"), server.uri("/b.json")])
    spec["spec"]["tuningConfig"].update(tuning)
    return spec


def _bodies() -> dict[str, bytes]:
    return {
        "/a.json": "".join(json.dumps(r) + "\n" for r in WIKI_ROWS[0:3]).encode(),
        "/b.json": "".join(json.dumps(r) + "\n" for r in WIKI_ROWS[3:5]).encode(),
    }


def test_killed_sub_task_is_retried_and_the_supervisor_succeeds(
    client: FlaskClient, processes: Processes, tmp_path: Path, db: Database
) -> None:
    """Druid's TaskMonitor: a failed sub-task is submitted again, as a new task of
    the same spec with ``numAttempts`` one more, and the supervisor goes on."""
    bodies = _bodies()
    with _FirstTryHeldServer(bodies, hold={"/a.json"}) as server:
        worker = processes.worker(3)
        supervisor = submit(client, _retry_spec(server, tmp_path))
        _kill_held_sub_task(server, "/a.json", [worker])

        final = _finished(client, supervisor)

        assert (final["status"], final["errorMsg"]) == ("SUCCESS", None), (
            processes.logs()
        )
        assert sorted(server.requests) == ["/a.json", "/a.json", "/b.json"]

    attempts = [(t, _payload(client, t["id"])) for t in _sub_tasks(client)]
    by_uri = {
        uri: [
            (p["subtaskSpecId"], p["numAttempts"], t["status"], t["errorMsg"])
            for t, p in attempts
            if p["spec"]["ioConfig"]["inputSource"]["uris"] == [server.uri(uri)]
        ]
        for uri in ("/a.json", "/b.json")
    }
    spec_a = by_uri["/a.json"][0][0]
    assert by_uri["/a.json"] == [
        (spec_a, 0, "FAILED", RUN_FAILED),
        (spec_a, 1, "SUCCESS", None),
    ]
    assert [a[1:] for a in by_uri["/b.json"]] == [(0, "SUCCESS", None)]
    segments = _used(client, "wikipedia")
    assert [(s["interval"], s["shardSpec"]["partitionNum"]) for s in segments] == [
        (DAY1, 0),
        (DAY1, 1),
        (DAY2, 0),
    ]
    # Exact rows: a.json's three of day 1 once (not twice), b.json's one of each day.
    rows = sorted(
        (s["interval"], pq.ParquetFile(s["loadSpec"]["path"]).metadata.num_rows)
        for s in segments
    )
    assert rows == [(DAY1, 1), (DAY1, 3), (DAY2, 1)]
    assert _files(tmp_path / "segments") == sorted(
        str(Path(s["loadSpec"]["path"]).relative_to(tmp_path / "segments"))
        for s in segments
    )
    report = _report(client, supervisor)["payload"]
    assert report["rowStats"] == {
        "totals": {
            "buildSegments": _stats(
                processed=5, processedBytes=sum(len(b) for b in bodies.values())
            )
        }
    }
    assert report["segmentsPublished"] == 3
    assert _pending(db) == 0
    log = client.get(f"{BASE}/task/{supervisor}/log").get_data(as_text=True)
    assert f"We still have more chances[1/3] to process the spec[{spec_a}]." in log


def test_max_retry_zero_fails_the_supervisor_at_the_first_failure(
    client: FlaskClient, processes: Processes, tmp_path: Path, db: Database
) -> None:
    with _FirstTryHeldServer(_bodies(), hold={"/a.json"}) as server:
        worker = processes.worker(3)
        supervisor = submit(client, _retry_spec(server, tmp_path, maxRetry=0))
        _kill_held_sub_task(server, "/a.json", [worker])

        final = _finished(client, supervisor)

        assert (final["status"], final["errorMsg"]) == (
            "FAILED",
            "Failed in phase[segment generation]. See task logs for details.",
        ), processes.logs()
        assert server.requests.count("/a.json") == 1

    subs = _sub_tasks(client)
    assert len(subs) == 2
    [killed] = [
        t
        for t in subs
        if _payload(client, t["id"])["spec"]["ioConfig"]["inputSource"]["uris"]
        == [server.uri("/a.json")]
    ]
    assert (killed["status"], killed["errorMsg"]) == ("FAILED", RUN_FAILED)
    assert _used(client, "wikipedia") == []
    wait_for(lambda: _files(tmp_path / "segments") == [], 30)
    assert _pending(db) == 0
    log = client.get(f"{BASE}/task/{supervisor}/log").get_data(as_text=True)
    assert f"Failed because of the failed sub task[{killed['id']}]" in log


def _live_totals(client: FlaskClient, task_id: str) -> dict[str, Any] | None:
    """``rowStats.totals.buildSegments`` of a running task's live report."""
    response = client.get(f"{BASE}/task/{task_id}/reports")
    if response.status_code != 200 or not response.json:
        return None
    payload = response.json["ingestionStatsAndErrors"]["payload"]  # type: ignore[index]
    totals = payload["rowStats"].get("totals") or {}
    return totals.get("buildSegments")  # type: ignore[no-any-return]


def test_supervisor_live_report_counts_running_sub_tasks_rows(
    client: FlaskClient, processes: Processes, tmp_path: Path
) -> None:
    """ParallelIndexSupervisorTask's live report adds its running sub-tasks' live
    row stats to the finished ones'. Each sub-task reads 64 KiB blocks and is held
    before its input's last byte: it has processed rows and is still running."""
    rows = [{**WIKI_ROWS[n % 3], "page": f"Page {n}", "added": n} for n in range(2000)]
    bodies = {
        path: "".join(json.dumps(row) + "\n" for row in part).encode()
        for path, part in (("/a.json", rows[:1000]), ("/b.json", rows[1000:]))
    }
    with _FirstTryHeldServer(bodies, hold=set(bodies)) as server:
        processes.worker(3)
        spec = _retry_spec(server, tmp_path, maxBytesInMemory=100_000)
        supervisor = submit(client, spec)
        wait_for(lambda: len(server.held) == 2, 60, describe=processes.logs)

        def running_sum() -> dict[str, int] | None:
            subs = _sub_tasks(client)
            figures = [_live_totals(client, t["id"]) for t in subs]
            if len(subs) != 2 or None in figures:
                return None
            total = {key: sum(f[key] for f in figures) for key in figures[0]}  # type: ignore[index]
            return total if total["processed"] > 0 else None

        def live_equals_the_sub_tasks() -> bool:
            expected = running_sum()
            return expected is not None and _live_totals(client, supervisor) == expected

        wait_for(live_equals_the_sub_tasks, 60, describe=processes.logs)
        assert client.get(f"{BASE}/task/{supervisor}/reports").json[  # type: ignore[index]
            "ingestionStatsAndErrors"
        ]["payload"]["unparseableEvents"] == {"buildSegments": []}
        server.release.set()
        final = _finished(client, supervisor)

    assert (final["status"], final["errorMsg"]) == ("SUCCESS", None), processes.logs()
    assert _report(client, supervisor)["payload"]["rowStats"] == {
        "totals": {
            "buildSegments": _stats(
                processed=2000, processedBytes=sum(len(b) for b in bodies.values())
            )
        }
    }
