"""Entry point of a task's own process (started by the worker through a forkserver).

SIGTERM sets the task's stop signal (``TaskContext.should_stop()``); the worker
kills the process if it ignores it. The final status write is the child's own
compare-and-set; the worker writes FAILED only if the child died without one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TypeVar

from overlord.config import Settings
from overlord.db import Database, is_unavailable, retry
from overlord.jsondepth import allow_max_nesting_depth
from overlord.logs import configure as configure_logging
from overlord.processes import die_with_parent
from overlord.services import actions
from overlord.services.execution import (
    ExecutionContext,
    finish_task,
    load_task,
    run_task_code,
)
from overlord.timeutil import utcnow
from overlord.worker.signals import resume_stop_signals

log = logging.getLogger(__name__)
T = TypeVar("T")

# Exit codes the worker reads.
EXIT_FINISHED = 0
EXIT_TASK_GONE = 3


def _patiently(step: Callable[[], T], deadline: float) -> T:
    """Run a step, retrying with backoff while the store is unreachable, until the
    deadline; then the error stands (the worker fails the task)."""
    return retry(
        step,
        retryable=is_unavailable,
        delay=0.2,
        max_delay=5.0,
        deadline=deadline,
        what="task store write",
    )


def _prepare(settings: Settings) -> threading.Event:
    die_with_parent(signal.SIGKILL)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Started with both blocked (the forkserver's mask): a SIGTERM the process group
    # got meanwhile is delivered now and stops the task.
    resume_stop_signals()
    configure_logging(settings.log_level, settings.log_format)
    allow_max_nesting_depth()  # the task's payload may nest 1000 deep
    return stop


def run_child(
    settings: Settings, task_id: str, worker_id: str, started: dt.datetime
) -> None:
    """Run one task to its end in a freshly started process, then exit."""
    stop = _prepare(settings)
    database = Database(settings)
    _run_task(settings, database, stop, task_id, worker_id, started)


def run_spare(settings: Settings, assignments: Connection) -> None:
    """A warm task process: connected to the store before any task is assigned, so
    a claimed task starts in milliseconds. Runs the one task it is sent, then
    exits like any task process; exits quietly if told nothing (None) or on EOF."""
    stop = _prepare(settings)
    database = Database(settings)
    with contextlib.suppress(Exception):  # an unreachable store: connect later
        database.ping()
    while not stop.is_set():
        if not assignments.poll(0.2):
            continue
        try:
            message = assignments.recv()
        except EOFError:
            break
        if message is None:
            break
        task_id, worker_id, started = message
        _run_task(settings, database, stop, task_id, worker_id, started)
    database.dispose()
    sys.exit(EXIT_FINISHED)


def _run_task(
    settings: Settings,
    database: Database,
    stop: threading.Event,
    task_id: str,
    worker_id: str,
    started: dt.datetime,
) -> None:
    deadline = time.monotonic() + settings.task_lease.total_seconds()
    try:
        loaded = _patiently(
            lambda: database.run(lambda session: load_task(session, task_id)),
            deadline,
        )
        if loaded is None:
            sys.exit(EXIT_TASK_GONE)
        type_name, payload = loaded
        context = ExecutionContext(
            database,
            task_id,
            payload,
            stop,
            log_limit=settings.task_log_max_size,
            deep_storage=settings.deep_storage_dir,
            perform_action=actions.perform_action,
        )
        result = run_task_code(context, type_name)
        context.log(f"Task finished with status[{result.status.value}]")
        # The final writes wait out a database outage (up to a lease): the worker
        # keeps renewing the lease meanwhile, so the task is not declared lost.
        deadline = time.monotonic() + settings.task_lease.total_seconds()
        _patiently(lambda: context.flush_logs(force=True), deadline)
        _patiently(
            lambda: database.run(
                lambda session: finish_task(
                    session,
                    task_id=task_id,
                    worker_id=worker_id,
                    result=result,
                    started=started,
                    now=utcnow(),
                ),
                write=True,
            ),
            deadline,
        )
    finally:
        database.dispose()
    sys.exit(EXIT_FINISHED)
