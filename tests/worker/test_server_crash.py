"""SIGKILL of a serving process mid-burst loses no acknowledged task."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import requests
from flask.testing import FlaskClient

from tests.processes import free_port, group_members
from tests.worker.conftest import Processes, status, wait_for


def test_sigkill_serve_mid_submit_burst_keeps_every_acknowledged_task(
    client: FlaskClient, processes: Processes, tmp_path: Path
) -> None:
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "overlord",
            "serve",
            "--port",
            str(port),
            "--workers",
            "0",
            "--http-workers",
            "2",
        ],
        env=processes.env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    processes.started.append(serve)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return requests.get(f"{base}/status/health", timeout=1).text == "true"
        except requests.ConnectionError:
            return False

    wait_for(healthy, 30, interval=0.1)
    acknowledged: list[str] = []
    stop = threading.Event()

    def submitter() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    response = session.post(
                        f"{base}/druid/indexer/v1/task",
                        data='{"type":"noop","dataSource":"crash","runTime":1}',
                        headers={"Content-Type": "application/json"},
                        timeout=5,
                    )
                except requests.RequestException:
                    return
                if response.status_code == 200:
                    acknowledged.append(response.json()["task"])

    threads = [threading.Thread(target=submitter) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(acknowledged) >= 20, 30, interval=0.01)
    os.kill(serve.pid, signal.SIGKILL)
    serve.wait(10)
    # Its HTTP workers and embedded worker die with it (PR_SET_PDEATHSIG).
    wait_for(lambda: not group_members(serve.pid), 10, describe=processes.logs)
    stop.set()
    for thread in threads:
        thread.join(10)

    assert len(acknowledged) >= 20
    for task_id in acknowledged:
        assert status(client, task_id)["statusCode"] in ("RUNNING", "SUCCESS")
    processes.worker(2)
    for task_id in acknowledged:
        wait_for(
            lambda task_id=task_id: status(client, task_id)["statusCode"] == "SUCCESS",
            120,
            describe=lambda task_id=task_id: (
                f"{len(acknowledged)} acknowledged; {task_id}: "
                f"{status(client, task_id)}\n{processes.logs()}"
            ),
        )
