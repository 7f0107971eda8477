"""Worker lifecycle and task types: SIGTERM drain, readiness, kill, /workers."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import select

from overlord.db import Database
from overlord.store.models import Segment
from overlord.timeutil import parse_interval, utcnow
from tests.worker.conftest import BASE, Processes, status, submit, wait_for

WORKER_STOPPED = (
    "The worker running this task was stopped before the task finished. "
    "See overlord and worker logs for more details."
)


def test_sigterm_lets_short_tasks_finish_and_gives_up_long_ones(
    client: FlaskClient, processes: Processes
) -> None:
    worker = processes.worker(2, OVERLORD_WORKER_SHUTDOWN_GRACE="PT2S")
    short = submit(client, {"type": "noop", "runTime": 1500})
    long = submit(client, {"type": "noop", "runTime": 60000})
    wait_for(
        lambda: all(
            status(client, t)["runnerStatusCode"] == "RUNNING" for t in (short, long)
        ),
        30,
    )
    queued = submit(client, {"type": "noop", "runTime": 1})

    worker.send_signal(signal.SIGTERM)
    worker.wait(15)

    assert worker.returncode == 0
    assert status(client, short)["statusCode"] == "SUCCESS"
    gave_up = status(client, long)
    assert (gave_up["statusCode"], gave_up["errorMsg"]) == ("FAILED", WORKER_STOPPED)
    # A draining worker claims nothing new.
    assert status(client, queued)["runnerStatusCode"] in ("WAITING", "PENDING")
    assert client.get(f"{BASE}/workers").json == []


def test_is_ready_no_keeps_a_task_waiting_and_exception_fails_it(
    client: FlaskClient, processes: Processes
) -> None:
    processes.worker(1)
    never = submit(client, {"type": "noop", "isReadyResult": "NO"})
    broken = submit(client, {"type": "noop", "isReadyResult": "EXCEPTION"})
    fine = submit(client, {"type": "noop", "runTime": 1})

    wait_for(lambda: status(client, fine)["statusCode"] == "SUCCESS", 30)
    failed = wait_for(
        lambda: (s := status(client, broken))["statusCode"] == "FAILED" and s, 10
    )

    assert failed["errorMsg"] == (
        "Encountered error[Not ready. Never will be ready. Go away!] while waiting for "
        "task to be ready. See Overlord logs for more details."
    )
    assert (
        status(client, never)["statusCode"],
        status(client, never)["runnerStatusCode"],
    ) == (
        "RUNNING",
        "WAITING",
    )


def test_kill_task_removes_unused_segments_and_their_files(
    client: FlaskClient, processes: Processes, db: Database, tmp_path: Path
) -> None:
    storage = tmp_path / "segments"
    now = utcnow()

    def segment(day: int, *, used: bool) -> Segment:
        interval = parse_interval(f"2024-01-0{day}/2024-01-0{day + 1}")
        relative = f"wiki/{day}/0/index.zip"
        (storage / relative).parent.mkdir(parents=True, exist_ok=True)
        (storage / relative).write_bytes(b"segment")
        segment_id = f"wiki_{interval}_v1".replace("/", "_")
        payload = {
            "dataSource": "wiki",
            "interval": str(interval),
            "version": "v1",
            "loadSpec": {"type": "local", "path": relative},
            "shardSpec": {"type": "numbered", "partitionNum": 0, "partitions": 1},
            "identifier": segment_id,
        }
        return Segment(
            id=segment_id,
            dataSource="wiki",
            created_date=now,
            start=interval.start,
            end=interval.end,
            partitioned=True,
            version="v1",
            used=used,
            payload=json.dumps(payload),
            used_status_last_updated=now,
            upgraded_from_segment_id=None,
        )

    with db.transaction() as session:
        session.add_all(
            [segment(1, used=False), segment(2, used=False), segment(3, used=True)]
        )
    processes.worker(1)

    kill = submit(
        client,
        {
            "type": "kill",
            "dataSource": "wiki",
            "interval": "2024-01-01/2024-01-05",
            "batchSize": 1,
        },
    )

    wait_for(lambda: status(client, kill)["statusCode"] == "SUCCESS", 30)
    with db.transaction() as session:
        remaining = session.scalars(select(Segment.id)).all()
    assert remaining == ["wiki_2024-01-03T00:00:00.000Z_2024-01-04T00:00:00.000Z_v1"]
    assert not (storage / "wiki/1").exists()
    assert not (storage / "wiki/2").exists()
    assert (storage / "wiki/3/0/index.zip").exists()
    assert client.get(f"{BASE}/task/{kill}/reports").json["killUnusedSegments"][
        "payload"
    ] == {
        "numSegmentsKilled": 2,
        "numBatchesProcessed": 2,
        "numSegmentsMarkedAsUnused": 0,
    }


def test_workers_endpoint_lists_live_workers_and_their_tasks(
    client: FlaskClient, processes: Processes
) -> None:
    processes.worker(2, "--port", "8091")
    task_id = submit(client, {"type": "noop", "runTime": 60000})
    wait_for(lambda: status(client, task_id)["runnerStatusCode"] == "RUNNING", 30)

    workers = client.get(f"{BASE}/workers").json

    assert len(workers) == 1
    info = workers[0]
    assert list(info) == [
        "worker",
        "currCapacityUsed",
        "currParallelIndexCapacityUsed",
        "currCapacityUsedByTaskType",
        "availabilityGroups",
        "runningTasks",
        "lastCompletedTaskTime",
        "blacklistedUntil",
    ]
    assert info["worker"]["host"].endswith(":8091")
    assert info["worker"]["capacity"] == 2
    assert (info["currCapacityUsed"], info["runningTasks"]) == (1, [task_id])
    assert info["currCapacityUsedByTaskType"] == {"noop": 1}
    location = status(client, task_id)["location"]
    assert (location["port"], location["tlsPort"]) == (8091, -1)
    time.sleep(0)  # the worker is killed by the fixture


def test_total_worker_capacity_counts_live_slots_and_running_tasks(
    client: FlaskClient, processes: Processes
) -> None:
    processes.worker(2)
    processes.worker(3)
    wait_for(lambda: len(client.get(f"{BASE}/workers").json) == 2, 30)
    task_id = submit(client, {"type": "noop", "runTime": 60000})
    wait_for(lambda: status(client, task_id)["runnerStatusCode"] == "RUNNING", 30)

    response = client.get(f"{BASE}/totalWorkerCapacity")

    assert response.json == {
        "currentClusterCapacity": 5,
        "maximumCapacityWithAutoScale": 5,
        "usedClusterCapacity": 1,
    }


def test_task_that_ignores_its_stop_signal_is_killed_after_the_grace(
    client: FlaskClient, processes: Processes, db: Database
) -> None:
    processes.worker(1, OVERLORD_TASK_SHUTDOWN_GRACE="PT1S")
    task_id = submit(client, {"type": "noop", "runTime": 60000})
    wait_for(lambda: status(client, task_id)["runnerStatusCode"] == "RUNNING", 30)
    pid = wait_for(lambda: _task_process(processes, task_id), 10)
    os.kill(pid, signal.SIGSTOP)  # a stopped process cannot act on SIGTERM

    client.post(f"{BASE}/task/{task_id}/shutdown")

    wait_for(lambda: not _alive(pid), 6)  # 1 s grace, 3x slack and the poll
    final = status(client, task_id)
    assert (final["statusCode"], final["errorMsg"]) == (
        "FAILED",
        "Shutdown request from user",
    )
    assert "Task finished" not in client.get(f"{BASE}/task/{task_id}/log").get_data(
        as_text=True
    )


def _task_process(processes: Processes, task_id: str) -> int | None:
    """The pid of the process running the task, as its worker logs it."""
    found = re.search(
        rf"task {re.escape(task_id)} started in process (\d+)", processes.logs()
    )
    return int(found.group(1)) if found else None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"
