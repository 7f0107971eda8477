"""The client commands (``overlord submit|tasks|status|log|shutdown|shutdown-all|
pending-segments delete``) against a real ``overlord serve``, run as a user runs
them: a separate process, output and exit code checked."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.processes import (
    ServeProcess,
    free_port,
    overlord_env,
    run_overlord,
    serve_process,
    wait_for,
)

API = "/druid/indexer/v1"


def _spec(tmp_path: Path, name: str, document: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def _status(server: ServeProcess, task_id: str) -> dict[str, object]:
    response = requests.get(f"{server.base_url}{API}/task/{task_id}/status", timeout=10)
    assert response.status_code == 200, response.text
    status: dict[str, object] = response.json()["status"]
    return status


def _cli(server: ServeProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return run_overlord(*args, "--url", server.base_url)


def _popen_cli(server: ServeProcess, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "overlord", *args, "--url", server.base_url],
        env=overlord_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _running(server: ServeProcess, task_id: str) -> bool:
    return _status(server, task_id)["status"] == "RUNNING"


def test_submit_wait_then_tasks_status_log_and_shutdowns(
    database_url: str, tmp_path: Path
) -> None:
    quick = _spec(tmp_path, "quick.json", {"type": "noop", "dataSource": "wiki"})
    long = _spec(
        tmp_path, "long.json", {"type": "noop", "dataSource": "wiki", "runTime": 60000}
    )
    with serve_process(database_url, tmp_path, "--workers", "2") as server:
        server.wait_healthy()

        done = _cli(server, "submit", quick, "--wait")
        assert done.returncode == 0, done.stderr
        task_id = done.stdout.strip()
        assert task_id.startswith("noop_")
        assert done.stdout == f"{task_id}\n"
        assert done.stderr.splitlines()[-1] == f"{task_id}: SUCCESS"
        assert f"{task_id}: RUNNING" in done.stderr or f"{task_id}: SUCCESS (" in (
            done.stderr
        )

        status = _cli(server, "status", task_id, "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout) == _status(server, task_id)
        plain = _cli(server, "status", task_id)
        assert plain.returncode == 0
        lines = dict(
            (*line.split(None, 1), "")[:2] for line in plain.stdout.splitlines()
        )
        assert lines["id"] == task_id
        assert lines["status"] == "SUCCESS"
        assert lines["dataSource"] == "wiki"
        assert lines["errorMsg"] == ""

        listed = _cli(server, "tasks", "--json")
        assert listed.returncode == 0, listed.stderr
        api_list = requests.get(f"{server.base_url}{API}/tasks", timeout=10).json()
        assert json.loads(listed.stdout) == api_list
        table = _cli(server, "tasks", "--state", "complete", "--datasource", "wiki")
        assert table.returncode == 0, table.stderr
        header, row = table.stdout.splitlines()
        assert header.split() == [
            "ID",
            "TYPE",
            "DATASOURCE",
            "STATUS",
            "RUNNER",
            "CREATED",
            "DURATION",
        ]
        assert row.split()[:5] == [task_id, "noop", "wiki", "SUCCESS", "NONE"]

        log = _cli(server, "log", task_id)
        assert log.returncode == 0, log.stderr
        api_log = requests.get(f"{server.base_url}{API}/task/{task_id}/log", timeout=10)
        assert log.stdout == api_log.text
        assert log.stdout  # a finished noop has a log

        # A waiting submit follows a task that another command shuts down.
        waiting = _popen_cli(server, "submit", long, "--wait")
        assert waiting.stdout is not None
        long_id = waiting.stdout.readline().strip()
        wait_for(lambda: _running(server, long_id), 60)
        stopped = _cli(server, "shutdown", long_id)
        assert stopped.returncode == 0, stopped.stderr
        assert json.loads(stopped.stdout) == {"task": long_id}
        _, err = waiting.communicate(timeout=60)
        assert waiting.returncode == 1, err
        assert err.splitlines()[-1] == f"{long_id}: FAILED: Shutdown request from user"

        followed = _cli(server, "log", long_id, "--follow")
        assert followed.returncode == 0, followed.stderr
        assert (
            followed.stdout
            == requests.get(
                f"{server.base_url}{API}/task/{long_id}/log", timeout=10
            ).text
        )

        # shutdown-all: Druid's 200 body, then its empty 404 as one clear line.
        third = _cli(server, "submit", long)
        third_id = third.stdout.strip()
        everything = _cli(server, "shutdown-all", "wiki")
        assert everything.returncode == 0, everything.stderr
        assert json.loads(everything.stdout) == {"dataSource": "wiki"}
        assert _status(server, third_id)["status"] == "FAILED"
        nothing = _cli(server, "shutdown-all", "wiki")
        assert nothing.returncode == 1
        assert (
            nothing.stderr == "Error: HTTP 404: no active task of datasource [wiki]\n"
        )

        pending = _cli(
            server, "pending-segments", "delete", "wiki", "--interval", "2000/2001"
        )
        assert pending.returncode == 0, pending.stderr
        assert json.loads(pending.stdout) == {"numDeleted": 0}

        unknown = _cli(server, "status", "no_such_task")
        assert unknown.returncode == 1
        assert unknown.stderr.startswith("Error: HTTP 404: ")
        assert len(unknown.stderr.splitlines()) == 1


def test_ctrl_c_during_wait_offers_to_shut_the_task_down(
    database_url: str, tmp_path: Path
) -> None:
    long = _spec(
        tmp_path, "long.json", {"type": "noop", "dataSource": "wiki", "runTime": 60000}
    )
    with serve_process(database_url, tmp_path, "--workers", "1") as server:
        server.wait_healthy()
        waiting = _popen_cli(server, "submit", long, "--wait")
        assert waiting.stdout is not None
        task_id = waiting.stdout.readline().strip()
        wait_for(lambda: _running(server, task_id), 60)

        waiting.send_signal(signal.SIGINT)
        _, err = waiting.communicate("y\n", timeout=60)

        assert waiting.returncode == 130, err
        # The answer read from a pipe is not echoed: the next line follows the prompt.
        assert err.endswith(
            f"Shut down task {task_id}? [y/N]: {task_id}: shutdown requested\n"
        ), err
        status = wait_for(
            lambda: (s := _status(server, task_id))["status"] == "FAILED" and s, 30
        )
        assert status["errorMsg"] == "Shutdown request from user"


def test_mistakes_are_one_line_and_exit_1(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"http://127.0.0.1:{port}"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")

    unreachable = run_overlord("tasks", "--url", url)
    not_json = run_overlord("submit", str(bad), "--url", url)

    assert unreachable.returncode == 1
    assert unreachable.stderr == (
        f"Error: cannot reach overlord at {url}: Connection refused\n"
    )
    assert not_json.returncode == 1
    assert not_json.stderr.startswith(f"Error: {bad} is not JSON: ")
    assert len(not_json.stderr.splitlines()) == 1
