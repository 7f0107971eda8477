"""Real ``overlord`` processes for tests: run the CLI, start ``overlord serve`` in its
own process group, find its descendants through /proc, and always clean up.

Linux only (/proc), as the servers these tests exercise.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import requests


def overlord_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without any ``OVERLORD_*`` variable (a developer's
    OVERLORD_CONFIG must not leak into a test), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OVERLORD_")}
    env.update(extra or {})
    return env


def run_overlord(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m overlord ARGS`` to completion, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "overlord", *args],
        env=overlord_env() if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def wait_for(
    predicate: Callable[[], Any],
    timeout: float,
    *,
    interval: float = 0.05,
    describe: Callable[[], str] | None = None,
) -> Any:
    """Poll until ``predicate`` returns a truthy value and return it; fail after
    ``timeout`` s, saying what ``describe`` reports about the state then."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f"\n{describe()}" if describe else ""
            raise AssertionError(f"condition not met within {timeout}s{detail}")
        time.sleep(interval)


def wait_until(
    predicate: Callable[[], bool], timeout: float, interval: float = 0.05
) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` seconds pass (False)."""
    try:
        wait_for(predicate, timeout, interval=interval)
    except AssertionError:
        return False
    return True


def is_running(pid: int) -> bool:
    """The process exists and is not a zombie (a dead child its reaper has not
    collected yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state follows the command name, which is in parentheses and may hold any
    # character: split after the last ")".
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def children(pid: int) -> set[int]:
    """Direct children of ``pid``, whichever of its threads started them."""
    found: set[int] = set()
    try:
        listings = list(Path(f"/proc/{pid}/task").glob("*/children"))
    except (FileNotFoundError, ProcessLookupError):
        return found  # the process ended while we looked
    for listing in listings:
        try:
            found.update(int(child) for child in listing.read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended while we looked
    return found


def group_members(pgid: int) -> set[int]:
    """Running processes of process group ``pgid``: whatever a leader started stays
    in its group unless it made a session of its own."""
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # After the command: state, ppid, pgrp.
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            found.add(int(stat.parent.name))
    return found


def descendants(pid: int) -> set[int]:
    """Children, grandchildren, … of ``pid``."""
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children(pending.pop()) - found:
            found.add(child)
            pending.append(child)
    return found


class ServeProcess:
    """One ``overlord serve`` leader, started in its own process group."""

    def __init__(self, popen: subprocess.Popen[bytes], port: int, logs: Path) -> None:
        self.popen = popen
        self.port = port
        self.logs = logs

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        """Everything serve and its children wrote so far (for failure messages)."""
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')}"
            for path in sorted(self.logs.glob("serve.*"))
        )

    def healthy(self) -> bool:
        try:
            response = requests.get(f"{self.base_url}/status/health", timeout=1)
        except requests.RequestException:
            return False
        return response.status_code == 200 and response.text == "true"

    def wait_healthy(self, timeout: float = 60) -> None:
        """Wait until /status/health answers ``true`` (from one HTTP worker at
        least); fail at once if serve exits."""

        def ready() -> bool:
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"serve exited with {self.popen.returncode}\n{self.output()}"
                )
            return self.healthy()

        assert wait_until(ready, timeout), f"serve never healthy\n{self.output()}"

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def kill_group(self) -> None:
        """SIGKILL whatever is left of the process group and reap the leader."""
        with suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)


@contextmanager
def serve_process(
    database_url: str,
    workdir: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
) -> Iterator[ServeProcess]:
    """Start ``overlord serve`` on a free port (cwd ``workdir``, so relative paths
    such as ``var/segments`` land there); SIGKILL its whole group on the way out."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "overlord",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *args,
    ]
    environment = overlord_env(
        {
            "OVERLORD_DATABASE_URL": database_url,
            "OVERLORD_DEEP_STORAGE_DIR": str(workdir / "segments"),
            **(env or {}),
        }
    )
    with (
        open(workdir / "serve.stdout", "wb") as stdout,
        open(workdir / "serve.stderr", "wb") as stderr,
    ):
        popen = subprocess.Popen(
            command,
            cwd=workdir,
            env=environment,
            stdout=stdout,
            stderr=stderr,
            process_group=0,
        )
    server = ServeProcess(popen, port, workdir)
    try:
        yield server
    finally:
        server.kill_group()
