"""GET /task/{id}/status under concurrent polling (reads coalesced per process,
``overlord.dbread``): the same bodies as lone reads, and never a status older than
a change committed before the read was asked, on any server."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from overlord.app import create_app
from overlord.config import Settings
from overlord.db import Database
from tests.factories import make_complete_task, make_task

BASE = "/druid/indexer/v1"
THREADS = 8
WAIT = 60.0


@pytest.fixture
def other_server(settings: Settings) -> Iterator[Flask]:
    """A second server on the same database (its own process's pool)."""
    database = Database(settings)
    application = create_app(settings, database=database)
    application.testing = True
    yield application
    database.dispose()


def poll_all(app: Flask, paths: list[str]) -> dict[int, tuple[int, bytes]]:
    """GET each path from THREADS threads at once; (status, body) by index."""
    results: dict[int, tuple[int, bytes]] = {}
    barrier = threading.Barrier(THREADS)

    def poller(offset: int) -> None:
        client = app.test_client()
        barrier.wait(WAIT)
        for index in range(offset, len(paths), THREADS):
            response = client.get(paths[index])
            results[index] = (response.status_code, response.get_data())

    threads = [threading.Thread(target=poller, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    return results


def test_concurrent_polls_answer_what_lone_reads_answer(
    app: Flask, client: FlaskClient, db: Database
) -> None:
    with db.transaction(write=True) as session:
        for n in range(12):
            make_task(session, task_id=f"running-{n}")
            make_complete_task(session, task_id=f"done-{n}", error_msg=f"boom {n} ✓")
    ids = [f"{kind}-{n}" for kind in ("running", "done") for n in range(12)]
    paths = [f"{BASE}/task/{task_id}/status" for task_id in [*ids, "absent"]] * 4
    lone = {}
    for path in set(paths):
        response = client.get(path)
        lone[path] = (response.status_code, response.get_data())
    assert lone[f"{BASE}/task/absent/status"][0] == 404

    polled = poll_all(app, paths)

    assert polled == {index: lone[path] for index, path in enumerate(paths)}


def test_a_status_read_after_a_shutdowns_200_shows_failed_on_every_server(
    app: Flask, client: FlaskClient, db: Database, other_server: Flask
) -> None:
    with db.transaction(write=True) as session:
        make_task(session, task_id="polled")
        make_task(session, task_id="neighbour")
    path = f"{BASE}/task/polled/status"
    stop = threading.Event()
    errors: list[BaseException] = []

    def keep_polling(server: Flask) -> None:
        # Other pollers keep queries in flight, so the reads below coalesce.
        poller = server.test_client()
        while not stop.is_set():
            for polled in ("polled", "neighbour"):
                try:
                    response = poller.get(f"{BASE}/task/{polled}/status")
                    assert response.status_code == 200
                except BaseException as error:  # reported by the test
                    errors.append(error)
                    return

    servers = [app, other_server]
    pollers = [
        threading.Thread(target=keep_polling, args=(server,))
        for server in servers
        for _ in range(3)
    ]
    for thread in pollers:
        thread.start()
    try:
        for server in servers:
            body = server.test_client().get(path).json
            assert body["status"]["status"] == "RUNNING"
        shutdown = client.post(f"{BASE}/task/polled/shutdown")
        assert shutdown.status_code == 200
        for server in servers:
            for _ in range(5):
                body = server.test_client().get(path).json
                assert body["status"]["status"] == "FAILED"
                assert body["status"]["errorMsg"] == "Shutdown request from user"
    finally:
        stop.set()
        for thread in pollers:
            thread.join(WAIT)
    assert errors == []
