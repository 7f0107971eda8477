"""A worker that stalls past two leases (SIGSTOP, a frozen VM) and then resumes.

While it is stopped, another process's duties fail its tasks as lost (Druid's
lost-worker rule) and remove its row. Once resumed it must re-register, leave the
tasks it lost FAILED, and go on claiming.
"""

from __future__ import annotations

import os
import signal
import socket
from typing import Any

from flask.testing import FlaskClient

from overlord import __version__
from tests.worker.conftest import BASE, Processes, status, submit, wait_for

LEASE = {"OVERLORD_TASK_LEASE": "PT2S"}
LOST_WORKER = (
    "The worker that this task was assigned disappeared and did not report cleanup "
    "within timeout[PT2S]. See overlord and middleManager/indexer logs for more "
    "details."
)


def _workers(client: FlaskClient) -> list[dict[str, Any]]:
    body = client.get(f"{BASE}/workers").json
    assert isinstance(body, list)
    return body


def _ip(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host


def test_worker_stalled_past_two_leases_re_registers_and_keeps_claiming(
    client: FlaskClient, processes: Processes
) -> None:
    victim = processes.worker(1, "--no-duties", **LEASE)
    processes.worker(0, **LEASE)  # duties only: lease expiry, silent-worker removal
    lost = submit(client, {"type": "noop", "runTime": 60000})
    wait_for(
        lambda: status(client, lost)["runnerStatusCode"] == "RUNNING",
        30,
        describe=processes.logs,
    )

    # The worker, its task process and its helpers stall together.
    os.killpg(victim.pid, signal.SIGSTOP)
    try:
        failed = wait_for(
            lambda: (s := status(client, lost))["statusCode"] == "FAILED" and s, 15
        )
        wait_for(lambda: _workers(client) == [], 15)
    finally:
        os.killpg(victim.pid, signal.SIGCONT)

    listed = wait_for(lambda: _workers(client), 15, describe=processes.logs)
    host = socket.gethostname()
    assert listed == [
        {
            "worker": {
                "scheme": "http",
                "host": host,
                "ip": _ip(host),
                "capacity": 1,
                "version": __version__,
                "category": "_default_worker_category",
            },
            "currCapacityUsed": 0,
            "currParallelIndexCapacityUsed": 0,
            "currCapacityUsedByTaskType": {},
            "availabilityGroups": [],
            "runningTasks": [],
            "lastCompletedTaskTime": listed[0]["lastCompletedTaskTime"],
            "blacklistedUntil": None,
        }
    ]
    fresh = submit(client, {"type": "noop", "runTime": 1})
    wait_for(
        lambda: status(client, fresh)["statusCode"] == "SUCCESS",
        30,
        describe=processes.logs,
    )
    # The task it lost stays FAILED as the duty left it: its late end changed nothing.
    assert (failed["errorMsg"], status(client, lost)) == (LOST_WORKER, failed)
    assert victim.poll() is None
    assert "Traceback" not in processes.logs()
