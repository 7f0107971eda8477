"""A worker that stalls past two leases (SIGSTOP, a frozen VM) and then resumes.

While it is stopped, another process's duties fail its tasks as lost (Druid's
lost-worker rule) and remove its row. Once resumed it must re-register, leave the
tasks it lost FAILED, and go on claiming.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from overlord import __version__
from overlord.store.models import Task, Worker
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


def _log(client: FlaskClient, task_id: str) -> str:
    response = client.get(f"{BASE}/task/{task_id}/log")
    return response.get_data(as_text=True) if response.status_code == 200 else ""


def _store_is_free(database_url: str, backend: str) -> bool:
    """No stopped process holds a lock the duties need: SQLite's write lock, or the
    task and worker rows elsewhere."""
    if backend == "sqlite":
        path = make_url(database_url).database
        assert path is not None
        connection = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
        except sqlite3.OperationalError:
            return False
        finally:
            connection.close()
        return True
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection, connection.begin():
            connection.execute(select(Task.id).with_for_update(nowait=True)).all()
            connection.execute(select(Worker.id).with_for_update(nowait=True)).all()
    except DBAPIError:
        return False
    finally:
        engine.dispose()
    return True


def _stall(pgid: int, database_url: str, backend: str) -> None:
    """SIGSTOP the process group at a moment it holds no lock: frozen inside a
    transaction it would hold up every writer of those rows (all writers on
    SQLite), which is not the fault under test. Retried until such a moment."""

    def stopped_outside_a_transaction() -> bool:
        os.killpg(pgid, signal.SIGSTOP)
        if _store_is_free(database_url, backend):
            return True
        os.killpg(pgid, signal.SIGCONT)
        return False

    wait_for(stopped_outside_a_transaction, 10, interval=0.01)


def test_worker_stalled_past_two_leases_re_registers_and_keeps_claiming(
    client: FlaskClient, processes: Processes, database_url: str, backend: str
) -> None:
    victim = processes.worker(1, "--no-duties", **LEASE)
    processes.worker(0, **LEASE)  # duties only: lease expiry, silent-worker removal
    lost = submit(client, {"type": "noop", "runTime": 60000})
    wait_for(
        lambda: status(client, lost)["runnerStatusCode"] == "RUNNING",
        30,
        describe=processes.logs,
    )

    wait_for(lambda: "Running noop task" in _log(client, lost), 30)

    # The worker, its task process and its helpers stall together.
    _stall(victim.pid, database_url, backend)
    try:
        failed = wait_for(
            lambda: (s := status(client, lost))["statusCode"] == "FAILED" and s,
            15,
            describe=processes.logs,
        )
        wait_for(lambda: _workers(client) == [], 15, describe=processes.logs)
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
