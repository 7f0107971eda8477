"""A worker stopped cleanly (SIGTERM, or Ctrl-C's SIGINT, sent to its whole process
group as a terminal or a service manager does) exits 0 without a traceback or
click's ``Aborted!``, and its row is gone from ``/workers`` when it has exited,
whenever the signal comes: during start-up, while it registers and starts its
spare task processes, or after it ran tasks."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.worker.conftest import BASE, Processes, status, submit, wait_for

SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


def _handles_stop_signals(pid: int) -> bool:
    """The process has started running overlord's code: it holds SIGTERM blocked
    (deferred until it can drain) or has its handler. Before that, Python is still
    starting and nothing of the worker runs yet: no signal can be handled there."""
    fields = dict(
        line.split(":\t", 1)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith(("SigBlk", "SigCgt"))
    )
    return bool((int(fields["SigBlk"], 16) | int(fields["SigCgt"], 16)) & SIGTERM_BIT)


def _at_start(client: FlaskClient, worker: subprocess.Popen[bytes]) -> None:
    wait_for(lambda: _handles_stop_signals(worker.pid), 10, interval=0.001)


def _while_importing(client: FlaskClient, worker: subprocess.Popen[bytes]) -> None:
    # Its imports have reached SQLAlchemy's compiled modules: a second before the
    # worker could install handlers of its own.
    wait_for(
        lambda: "/sqlalchemy/" in Path(f"/proc/{worker.pid}/maps").read_text(),
        10,
        interval=0.001,
    )


def _while_registering(client: FlaskClient, worker: subprocess.Popen[bytes]) -> None:
    # The row appears just before the worker starts its forkserver and spares.
    wait_for(lambda: client.get(f"{BASE}/workers").json, 30, interval=0.01)


def _after_running(client: FlaskClient, worker: subprocess.Popen[bytes]) -> None:
    task_id = submit(client, {"type": "noop", "runTime": 1})
    wait_for(lambda: status(client, task_id)["statusCode"] == "SUCCESS", 30)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
@pytest.mark.parametrize(
    "moment",
    [
        pytest.param(_at_start, id="at-start"),
        pytest.param(_while_importing, id="importing"),
        pytest.param(_while_registering, id="registering"),
        pytest.param(_after_running, id="after-running"),
    ],
)
def test_worker_stopped_by_a_group_signal_exits_0_and_leaves_no_row(
    client: FlaskClient,
    processes: Processes,
    moment: Callable[[FlaskClient, subprocess.Popen[bytes]], None],
    sig: signal.Signals,
) -> None:
    worker = processes.worker(2)
    moment(client, worker)

    os.killpg(worker.pid, sig)
    worker.wait(30)

    logs = processes.logs()
    assert worker.returncode == 0, logs
    assert "Traceback" not in logs
    assert "Aborted!" not in logs
    assert client.get(f"{BASE}/workers").json == []
