"""``overlord serve`` as a real process tree on every backend: granian's HTTP
workers and the embedded task worker, answering over TCP, refusing an unmigrated
store, stopping on SIGTERM (draining a response in flight) and dying with a
SIGKILLed leader."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from alembic.config import Config
from alembic.script import ScriptDirectory

from overlord.cli import MIGRATIONS_DIR
from overlord.db import Database
from overlord.server import HTTP_DRAIN_SECONDS
from overlord.states import RunnerState, TaskState
from tests.databases import DatabaseFactory
from tests.factories import make_tasks
from tests.processes import (
    ServeProcess,
    children,
    descendants,
    group_members,
    is_running,
    serve_process,
    wait_until,
)

BASE = "/druid/indexer/v1"
HTTP_WORKERS = 2
SERVE_ARGS = ("--workers", "0", "--http-workers", str(HTTP_WORKERS))
# Two granian HTTP workers plus serve's one embedded task worker.
CHILDREN = HTTP_WORKERS + 1
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServeProcess]:
    with serve_process(database_url, tmp_path, *SERVE_ARGS) as process:
        process.wait_healthy()
        yield process


def _all_children(server: ServeProcess) -> set[int]:
    """serve's descendants once all its children exist: the embedded worker first,
    then granian's HTTP workers, forked after granian set its signal handlers."""
    assert wait_until(
        lambda: len(children(server.pid)) >= CHILDREN, 15, interval=0.005
    ), f"serve started {children(server.pid)}\n{server.output()}"
    assert len(children(server.pid)) == CHILDREN, children(server.pid)
    return descendants(server.pid)


def test_serve_migrated_database_answers_submit_and_status(
    server: ServeProcess,
) -> None:
    submit = requests.post(
        f"{server.base_url}{BASE}/task", json={"type": "noop"}, timeout=10
    )

    assert submit.status_code == 200
    assert submit.headers["Content-Type"] == "application/json"
    task_id = submit.json()["task"]
    match = re.fullmatch(rf"noop_({ISO})_{UUID4}", task_id)
    assert match is not None, task_id
    assert submit.json() == {"task": task_id}

    def status() -> dict[str, Any]:
        response = requests.get(
            f"{server.base_url}{BASE}/task/{task_id}/status", timeout=10
        )
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    # The embedded worker's scheduler makes the lock-free noop ready (PENDING);
    # with no task slot (--workers 0) nothing claims it.
    assert wait_until(
        lambda: status()["status"]["runnerStatusCode"] == "PENDING", 15, 0.1
    ), status()
    assert status() == {
        "task": task_id,
        "status": {
            "id": task_id,
            "groupId": task_id,
            "type": "noop",
            "createdTime": match.group(1),
            "queueInsertionTime": "1970-01-01T00:00:00.000Z",
            "statusCode": "RUNNING",
            "status": "RUNNING",
            "runnerStatusCode": "PENDING",
            "duration": -1,
            "location": {"host": None, "port": -1, "tlsPort": -1},
            "dataSource": "none",
            "errorMsg": None,
        },
    }


def test_serve_empty_database_exits_1_with_one_line_hint(
    database_factory: DatabaseFactory, tmp_path: Path
) -> None:
    url = database_factory.empty()

    with serve_process(url, tmp_path, *SERVE_ARGS) as process:
        assert process.popen.wait(timeout=30) == 1
        assert (tmp_path / "serve.stderr").read_text() == (
            f"error: the database schema is at empty, not {_head()}; "
            "run `overlord db upgrade` first\n"
        )
        assert (tmp_path / "serve.stdout").read_text() == ""
        assert not group_members(process.pid)


@pytest.fixture(params=["starting", "started"])
def serve_tree(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[tuple[ServeProcess, set[int]]]:
    """serve and its descendants, either as soon as every child exists (a signal
    then finds HTTP workers just forked, still starting) or once /status/health
    answers."""
    with serve_process(database_url, tmp_path, *SERVE_ARGS) as process:
        if request.param == "started":
            process.wait_healthy()
        yield process, _all_children(process)


def test_serve_sigterm_exits_0_and_leaves_no_children(
    serve_tree: tuple[ServeProcess, set[int]],
) -> None:
    server, started = serve_tree

    server.signal(signal.SIGTERM)

    # granian catches SIGTERM and stops its workers (one still starting dies at
    # once, the others drain, for HTTP_DRAIN_SECONDS at most); serve then stops
    # the embedded worker and returns. It takes ~1.3 s here; the bound is serve's
    # own drain limit plus start-up slack, since a CI run with three suites on two
    # cores once took more than 15 s (the output then says where it stood).
    try:
        code = server.popen.wait(timeout=HTTP_DRAIN_SECONDS + 15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"serve still runs after SIGTERM:\n{server.output()}")
    assert code == 0, server.output()
    assert not [pid for pid in started if is_running(pid)]
    assert not group_members(server.pid)
    assert "Granian shutdown completed" in (server.logs / "serve.stdout").read_text()


def test_serve_sigkill_children_die_with_it(
    serve_tree: tuple[ServeProcess, set[int]],
) -> None:
    server, started = serve_tree

    server.signal(signal.SIGKILL)

    assert server.popen.wait(timeout=5) == -signal.SIGKILL
    # Nobody stops them: PR_SET_PDEATHSIG sends each child SIGTERM (the embedded
    # worker, in a process group of its own, drains and exits).
    assert wait_until(lambda: not group_members(server.pid), 10), [
        pid for pid in group_members(server.pid)
    ]
    assert wait_until(lambda: not [p for p in started if is_running(p)], 10), [
        pid for pid in started if is_running(pid)
    ]


def _tcp_send_buffer_max() -> int:
    """The most a TCP send buffer grows to (autotuning's ceiling), in bytes."""
    return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])


def test_serve_sigterm_during_streamed_list_drains_response(
    server: ServeProcess, db: Database
) -> None:
    # Every listed task carries a 1024-character errorMsg, so the list is larger
    # than anything the kernel can hold for it (server send buffer at its
    # autotuned ceiling, plus a receive buffer pinned small): when SIGTERM
    # arrives, megabytes of it can only still be inside the HTTP worker.
    limit = _tcp_send_buffer_max() + 2 * 1024 * 1024
    count = limit // 1024 + 1
    with db.transaction() as session:
        tasks = make_tasks(
            session,
            (
                {
                    "status": TaskState.FAILED,
                    "runner_status": RunnerState.NONE,
                    "active": False,
                    "error_msg": "x" * 1024,
                    "duration_ms": 1,
                }
                for _ in range(count)
            ),
        )
    expected_ids = {task.task_id for task in tasks}
    client = socket.socket()
    connection = http.client.HTTPConnection("127.0.0.1", server.port)
    try:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.settimeout(30)
        client.connect(("127.0.0.1", server.port))
        connection.sock = client
        connection.request("GET", f"{BASE}/tasks")
        response = connection.getresponse()
        assert response.status == 200
        assert response.read(1) == b"["

        server.signal(signal.SIGTERM)

        def refuses_connections() -> bool:
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            except ConnectionRefusedError:
                return True
            return False

        assert wait_until(refuses_connections, 5)
        # The unread response keeps its worker, and so serve, alive.
        assert server.popen.poll() is None
        body = b"[" + response.read()
    finally:
        connection.close()
        client.close()

    listed = json.loads(body)
    assert len(body) > limit
    assert len(listed) == count
    assert {entry["id"] for entry in listed} == expected_ids
    assert server.popen.wait(timeout=15) == 0
    assert not group_members(server.pid)
