"""The _tasks façade of a real ``overlord serve`` (granian, embedded worker) as
opensearch-py and OpenSearch's own REST YAML tests see it, on every backend."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, RequestError, TransportError

from tests.databases import DatabaseFactory
from tests.opensearch_spec import REST_TESTS, assert_valid, require_shared
from tests.opensearch_yaml import Runner, Skipped, YamlTest, load_tests
from tests.processes import free_port, wait_for

BASE = "/druid/indexer/v1"
# One HTTP process with two threads and two wait slots: the cap test below is
# deterministic, and Druid polls keep the two threads granian adds for waits.
SERVER_ENV = {
    "OVERLORD_POLL_INTERVAL": "PT0.05S",
    "OVERLORD_TASK_SHUTDOWN_GRACE": "PT1S",
    "OVERLORD_WORKER_SHUTDOWN_GRACE": "PT1S",
    "OVERLORD_HTTP_THREADS": "2",
    "OVERLORD_OPENSEARCH_MAX_WAITS": "2",
}


class Server:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.client = OpenSearch(base_url, timeout=60)

    def submit(self, spec: dict[str, Any], opaque_id: str | None = None) -> str:
        headers = {"X-Opaque-Id": opaque_id} if opaque_id else {}
        response = requests.post(
            f"{self.base_url}{BASE}/task", json=spec, headers=headers, timeout=10
        )
        assert response.status_code == 200, response.text
        return str(response.json()["task"])

    def druid_status(self, task_id: str) -> dict[str, Any]:
        response = requests.get(
            f"{self.base_url}{BASE}/task/{task_id}/status", timeout=10
        )
        return dict(response.json()["status"])

    def shutdown(self, task_id: str) -> None:
        response = requests.post(
            f"{self.base_url}{BASE}/task/{task_id}/shutdown", timeout=10
        )
        assert response.status_code == 200, response.text

    def os_id(self, task_id: str) -> str:
        """The façade id of a Druid task, found through the list."""
        listing = self.client.tasks.list(detailed=True, group_by="none")
        for task in listing["tasks"]:
            if task.get("status", {}).get("id") == task_id:
                return f"{task['node']}:{task['id']}"
        raise AssertionError(f"{task_id} not listed")


@pytest.fixture(scope="module")
def server(
    database_factory: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    require_shared()
    workdir = tmp_path_factory.mktemp("opensearch-serve")
    with database_factory.fresh(workdir) as url:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OVERLORD_")}
        env.update(SERVER_ENV)
        env["OVERLORD_DATABASE_URL"] = url
        env["OVERLORD_DEEP_STORAGE_DIR"] = str(workdir / "segments")
        log = open(workdir / "serve.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "overlord",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "4",
                "--http-workers",
                "1",
            ],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, (workdir / "serve.log").read_text()
                try:
                    if requests.get(f"{base}/status/health", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, (workdir / "serve.log").read_text()
                time.sleep(0.1)
            yield Server(base)
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


# ------------------------------------------------------------------ REST YAML tests


def _yaml_tests() -> list[YamlTest]:
    require_shared()
    files = [
        REST_TESTS / "tasks.list" / "10_basic.yml",
        REST_TESTS / "variant-d4764b6e" / "tasks.list" / "10_basic.yml",
        REST_TESTS / "cat.tasks" / "10_basic.yml",
    ]
    return [test for path in files for test in load_tests(path)]


# ES's tasks.get test (saved beside these) starts with cluster.state, which is not
# served; its one tasks.get step is test_get_foreign_node_id_is_404… below.
YAML_TESTS = _yaml_tests()


@pytest.mark.parametrize("test", YAML_TESTS, ids=[t.id for t in YAML_TESTS])
def test_rest_yaml_suite_passes(server: Server, test: YamlTest) -> None:
    # A Druid task beside the list request (the tests pick the first task).
    druid_id = server.submit({"type": "noop", "runTime": 60000}, opaque_id="yaml")
    runner = Runner(server.client)
    skipped: Skipped | None = None
    try:
        runner.run(test)
    except Skipped as reason:
        skipped = reason
    finally:
        server.shutdown(druid_id)
    if skipped is not None:
        # Only the older variant's 3.0 gate may skip: we answer as 2.19.
        assert "3.0.0" in str(skipped)
        assert test.file.parent.parent.name == "variant-d4764b6e"


def test_yaml_suites_cover_every_tasks_list_and_cat_test() -> None:
    names = {t.id for t in YAML_TESTS}
    assert {
        "tasks.list/10_basic.yml::tasks_list test",
        "tasks.list/10_basic.yml::tasks_list test detailed",
        "tasks.list/10_basic.yml::tasks_list headers",
        "tasks.list/10_basic.yml::tasks_list detailed (with thread info)",
        "cat.tasks/10_basic.yml::Test cat tasks output",
        "cat.tasks/10_basic.yml::Test cat tasks output with X-Opaque-Id",
    } <= names


# ------------------------------------------------------------------- opensearch-py


def test_client_info_reports_opensearch_2x(server: Server) -> None:
    info = server.client.info()
    assert_valid(info, "_core", "info@200")
    assert info["version"]["distribution"] == "opensearch"
    assert info["version"]["number"] == "2.19.0"
    nodes = server.client.nodes.info()
    assert_valid(nodes, "nodes", "nodes.info@200")
    assert list(nodes["nodes"]) == [info["cluster_uuid"]]


def test_client_lists_gets_and_cancels_druid_submitted_task(server: Server) -> None:
    druid_id = server.submit(
        {"type": "noop", "id": "os_client_cancel", "runTime": 60000}, opaque_id="ops"
    )
    task_id = server.os_id(druid_id)
    node, number = task_id.split(":")

    listing = server.client.tasks.list(actions="indices:data/write/druid/*")
    assert_valid(listing, "tasks", "tasks.list@200")
    listed = listing["nodes"][node]["tasks"][task_id]
    assert listed["headers"] == {"X-Opaque-Id": "ops"}
    assert listed["cancellable"] is True
    assert listed["cancelled"] is False

    got = server.client.tasks.get(task_id=task_id)
    assert_valid(got, "tasks", "tasks.get@200")
    assert got["completed"] is False
    assert got["task"]["status"]["id"] == druid_id
    assert got["task"]["status"]["statusCode"] == "RUNNING"

    cancelled = server.client.tasks.cancel(task_id=task_id)
    assert_valid(cancelled, "tasks", "tasks.cancel@200")
    entry = cancelled["nodes"][node]["tasks"][task_id]
    assert entry["cancelled"] is True
    assert entry["id"] == int(number)
    assert isinstance(entry["cancellation_time_millis"], int)

    status = server.druid_status(druid_id)
    assert (status["statusCode"], status["errorMsg"]) == (
        "FAILED",
        "Shutdown request from user",
    )
    after = server.client.tasks.get(task_id=task_id)
    assert after["completed"] is True
    assert after["error"] == {
        "type": "task_cancelled_exception",
        "reason": "Shutdown request from user",
    }


def test_druid_shutdown_shows_cancelled_in_tasks(server: Server) -> None:
    druid_id = server.submit(
        {"type": "noop", "id": "os_druid_shutdown", "runTime": 60000}
    )
    task_id = server.os_id(druid_id)
    server.shutdown(druid_id)
    got = server.client.tasks.get(task_id=task_id)
    assert_valid(got, "tasks", "tasks.get@200")
    assert got["completed"] is True
    assert got["task"]["cancelled"] is True
    assert (
        got["task"]["cancellation_time_millis"] >= got["task"]["start_time_in_millis"]
    )
    assert got["task"]["status"]["errorMsg"] == "Shutdown request from user"
    # Finished tasks are no longer listed.
    listed = server.client.tasks.list(group_by="none", detailed=True)["tasks"]
    assert druid_id not in [t.get("status", {}).get("id") for t in listed]


def test_client_cat_tasks_is_the_text_table(server: Server) -> None:
    druid_id = server.submit(
        {"type": "noop", "id": "os_cat", "runTime": 60000}, "catter"
    )
    text = server.client.cat.tasks(v=True, h="action,x_opaque_id", s="action")
    lines = text.splitlines()
    assert lines[0].split() == ["action", "x_opaque_id"]
    assert ["indices:data/write/druid/noop", "catter"] in [
        line.split() for line in lines
    ]
    rows = server.client.cat.tasks(format="json", detailed=True)
    assert_valid(rows, "cat", "cat.tasks@200")
    assert any(f"task[{druid_id}]" in (row["description"] or "") for row in rows)
    server.shutdown(druid_id)


def test_get_foreign_node_id_is_404_and_cancel_is_node_failure(server: Server) -> None:
    with pytest.raises(NotFoundError) as caught:
        server.client.tasks.get(task_id="foo:1")
    assert caught.value.info["error"]["reason"] == (
        "task [foo:1] belongs to the node [foo] which isn't part of the cluster "
        "and there is no record of the task"
    )
    result = server.client.tasks.cancel(task_id="foo:1")
    assert result == {
        "node_failures": [
            {
                "type": "failed_node_exception",
                "reason": "Failed node [foo]",
                "node_id": "foo",
                "caused_by": {
                    "type": "no_such_node_exception",
                    "reason": "No such node [foo]",
                    "node_id": "foo",
                },
            }
        ],
        "nodes": {},
    }
    with pytest.raises(RequestError) as bad:
        server.client.tasks.get(task_id="index_parallel_wiki_2024-01-01T00:00:00.000Z")
    assert bad.value.error == "illegal_argument_exception"


def test_get_wait_returns_when_the_worker_completes_the_task(server: Server) -> None:
    druid_id = server.submit({"type": "noop", "id": "os_wait_done", "runTime": 500})
    task_id = server.os_id(druid_id)
    started = time.monotonic()
    got = server.client.tasks.get(task_id=task_id, wait_for_completion=True)
    elapsed = time.monotonic() - started
    assert_valid(got, "tasks", "tasks.get@200")
    assert got["completed"] is True
    assert got["task"]["status"]["statusCode"] == "SUCCESS"
    assert got["response"]["druid_status"]["id"] == druid_id
    assert server.druid_status(druid_id)["statusCode"] == "SUCCESS"
    # It returned on completion, well before the 30 s default.
    assert elapsed < 10


def test_get_wait_times_out_with_opensearch_timeout_error(server: Server) -> None:
    druid_id = server.submit(
        {"type": "noop", "id": "os_wait_timeout", "runTime": 60000}
    )
    task_id = server.os_id(druid_id)
    started = time.monotonic()
    response = requests.get(
        f"{server.base_url}/_tasks/{task_id}",
        params={"wait_for_completion": "true", "timeout": "300ms"},
        timeout=10,
    )
    assert 0.3 <= time.monotonic() - started < 5
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "timeout_exception"
    assert error["reason"].startswith(
        f"Timed out waiting for completion of [Task{{id={task_id.split(':')[1]}, "
        "type='transport', action='indices:data/write/druid/noop'"
    )
    server.shutdown(druid_id)


def test_waits_are_capped_and_never_starve_druid_polls(server: Server) -> None:
    druid_id = server.submit({"type": "noop", "id": "os_wait_cap", "runTime": 60000})
    task_id = server.os_id(druid_id)
    url = f"{server.base_url}/_tasks/{task_id}"
    params = {"wait_for_completion": "true", "timeout": "20s"}
    responses: list[requests.Response] = []

    def wait() -> None:
        responses.append(requests.get(url, params=params, timeout=60))

    # Three waits for two slots: whichever comes last is refused at once, while
    # the other two hold their slots until the task completes.
    waiters = [threading.Thread(target=wait) for _ in range(3)]
    for waiter in waiters:
        waiter.start()
    # (A Response is falsy unless 2xx: wait on the status codes.)
    wait_for(lambda: 429 in [r.status_code for r in responses], 20)
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["type"] == "rejected_execution_exception"
    assert len(responses) == 1
    # Druid polls still answer promptly on the server's own threads.
    for _ in range(5):
        started = time.monotonic()
        assert server.druid_status(druid_id)["statusCode"] == "RUNNING"
        assert time.monotonic() - started < 1
    server.shutdown(druid_id)
    for waiter in waiters:
        waiter.join(60)
    # The shutdown completed the task: both waits returned it at once.
    assert sorted(r.status_code for r in responses) == [200, 200, 429]


def test_repeated_opaque_id_lines_are_refused_by_granian_server(server: Server) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(
            b"GET /_tasks HTTP/1.1\r\nHost: x\r\nX-Opaque-Id: a\r\n"
            b"X-Opaque-Id: b\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert body == (
        b'{"error":"multiple values for single-valued header [X-Opaque-Id].",'
        b'"status":400}'
    )


def test_client_errors_are_raised_as_opensearch_py_exceptions(server: Server) -> None:
    with pytest.raises(RequestError) as caught:
        server.client.tasks.list(params={"detail": "true"})
    assert caught.value.info["error"]["reason"] == (
        "request [/_tasks] contains unrecognized parameter: [detail] -> did you "
        "mean [detailed]?"
    )
    with pytest.raises(TransportError):
        server.client.tasks.list(group_by="sideways")
