"""Real worker processes against the test's database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.processes import wait_for

__all__ = ["BASE", "FAST", "Processes", "status", "submit", "wait_for"]

BASE = "/druid/indexer/v1"
FAST = {
    "OVERLORD_POLL_INTERVAL": "PT0.05S",
    "OVERLORD_TASK_SHUTDOWN_GRACE": "PT1S",
    "OVERLORD_WORKER_SHUTDOWN_GRACE": "PT2S",
}


class Processes:
    """Starts ``overlord worker`` / ``overlord serve`` processes; kills them all at
    the end of the test (each in its own process group, children included)."""

    def __init__(self, database_url: str, tmp_path: Path) -> None:
        self.database_url = database_url
        self.tmp_path = tmp_path
        self.started: list[subprocess.Popen[bytes]] = []

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OVERLORD_")}
        env.update(FAST)
        env["OVERLORD_DATABASE_URL"] = self.database_url
        env["OVERLORD_DEEP_STORAGE_DIR"] = str(self.tmp_path / "segments")
        env.update(extra)
        return env

    def worker(
        self, capacity: int = 2, *args: str, **env: str
    ) -> subprocess.Popen[bytes]:
        log = open(self.tmp_path / f"worker-{len(self.started)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "overlord",
                "worker",
                "--capacity",
                str(capacity),
                *args,
            ],
            env=self.env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.started.append(process)
        return process

    def logs(self) -> str:
        """The tail of every process log of this test, for failure messages."""
        parts = []
        for path in sorted(self.tmp_path.glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()[-40:]
            parts.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    def kill_all(self) -> None:
        # Kill each process group even when its leader already exited: a child
        # that outlived it (the bug this would otherwise hide) goes too.
        for process in self.started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.fixture
def processes(database_url: str, tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(database_url, tmp_path)
    try:
        yield procs
    finally:
        procs.kill_all()


def submit(client: FlaskClient, spec: dict[str, Any]) -> str:
    response = client.post(f"{BASE}/task", json=spec)
    assert response.status_code == 200, response.get_data(as_text=True)
    return str(response.json["task"])


def status(client: FlaskClient, task_id: str) -> dict[str, Any]:
    body = client.get(f"{BASE}/task/{task_id}/status").json
    assert body is not None
    return dict(body["status"])
