"""A worker that loses the database retries; it never fails tasks for the outage."""

from __future__ import annotations

import sqlite3
import time

from flask.testing import FlaskClient
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from tests.worker.conftest import Processes, status, submit, wait_for

OUTAGE_SECONDS = 3.0
UNKNOWN_THREAD_ID = 1094  # MariaDB: KILL of a connection that has already ended


def _cut_connections(database_url: str, backend: str) -> None:
    """For OUTAGE_SECONDS, drop every other connection to the test database
    (PostgreSQL, MariaDB) or hold SQLite's exclusive lock, so that every statement
    of the worker and its task fails."""
    deadline = time.monotonic() + OUTAGE_SECONDS
    if backend == "sqlite":
        path = make_url(database_url).database
        assert path is not None
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("BEGIN EXCLUSIVE")
        time.sleep(OUTAGE_SECONDS)
        connection.execute("ROLLBACK")
        connection.close()
        return
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            while time.monotonic() < deadline:
                if backend == "postgresql":
                    connection.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() "
                            "AND pid <> pg_backend_pid()"
                        )
                    )
                else:
                    ids = connection.execute(
                        text(
                            "SELECT id FROM information_schema.processlist "
                            "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
                        )
                    ).scalars()
                    for connection_id in list(ids):
                        _kill(connection, int(connection_id))
                time.sleep(0.05)
    finally:
        engine.dispose()


def _kill(connection: Connection, connection_id: int) -> None:
    """KILL one MariaDB connection; one that ended between the processlist read and
    the KILL (error 1094, "Unknown thread id") is already gone, which is the point."""
    try:
        connection.execute(text(f"KILL CONNECTION {connection_id}"))
    except OperationalError as error:
        if getattr(error.orig, "args", (None,))[0] != UNKNOWN_THREAD_ID:
            raise


def test_worker_rides_out_a_database_outage_without_failing_its_task(
    client: FlaskClient, processes: Processes, database_url: str, backend: str
) -> None:
    processes.worker(1, OVERLORD_DB_BUSY_TIMEOUT="PT0.2S")
    task_id = submit(client, {"type": "noop", "runTime": 2000})
    wait_for(lambda: status(client, task_id)["runnerStatusCode"] == "RUNNING", 30)

    _cut_connections(database_url, backend)

    final = wait_for(
        lambda: (s := status(client, task_id))["statusCode"] != "RUNNING" and s,
        40,
        describe=processes.logs,
    )
    assert (final["statusCode"], final["errorMsg"]) == ("SUCCESS", None)
    after = submit(client, {"type": "noop", "runTime": 1})
    wait_for(
        lambda: status(client, after)["statusCode"] == "SUCCESS",
        30,
        describe=processes.logs,
    )
