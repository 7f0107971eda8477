"""Entry point of a task's own process (started by the worker through a forkserver).

SIGTERM sets the task's stop signal (``TaskContext.should_stop()``); the worker
kills the process if it ignores it. The process sends its result and the log lines
it has not written yet to the worker over its pipe, then exits; the worker commits
them (a compare-and-set) in the transaction that claims the slot's next task, or
FAILED if the process died without a result.

Why the worker: a task process is new, so every statement it runs is compiled
for the first time (SQLAlchemy's caches are per process), and its final
transaction held SQLite's write lock 176 ms on average (noop burst, 4 slots, a
loaded 2-core machine) while the warm worker's took 32 ms for a whole claim.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TypeVar

from overlord.config import Settings
from overlord.db import Database, is_unavailable, retry
from overlord.jsondepth import allow_max_nesting_depth
from overlord.logs import bind_task
from overlord.logs import configure as configure_logging
from overlord.processes import die_with_parent
from overlord.services import actions
from overlord.services.execution import ExecutionContext, run_task_code
from overlord.tasktypes.base import TaskResult
from overlord.worker.signals import resume_stop_signals

log = logging.getLogger(__name__)
T = TypeVar("T")

# The exit code of a task process that sent its result; any exit without a result
# makes the worker fail the task.
EXIT_FINISHED = 0
# Log lines up to this size travel with the result; more are written here first.
RESULT_LOG_BYTES = 64 * 1024

# What the worker sends a task process: task id, worker id, claim time (the
# database's), type name, payload (JSON text) and the submit's X-Opaque-Id, as
# the claim read them.
Assignment = tuple[str, str, dt.datetime, str, str, str | None]


@dataclass(frozen=True)
class Outcome:
    """What a task process sends back: its result and its unwritten log lines."""

    result: TaskResult
    log: bytes


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


def run_task_process(settings: Settings, channel: Connection) -> None:
    """A task process: started ahead of need (a spare), it runs the one task it is
    sent, sends back its Outcome and exits; it exits quietly if told nothing
    (None), on EOF, or when stopped before a task came."""
    stop = _prepare(settings)
    while not stop.is_set():
        if not channel.poll(0.2):
            continue
        try:
            message = channel.recv()
        except EOFError:
            break
        if message is None:
            break
        outcome = _run_task(settings, stop, message)
        if outcome is not None:
            channel.send(outcome)
        break
    sys.exit(EXIT_FINISHED)


def _run_task(
    settings: Settings, stop: threading.Event, assignment: Assignment
) -> Outcome | None:
    """Run the task; None if its code called sys.exit (no result: the worker fails
    it, as for a crash). The store is opened only if the task uses it."""
    task_id, _worker_id, _started, type_name, payload, opaque_id = assignment
    # Every line this process logs is about this task.
    bind_task(task_id, opaque_id)
    context = ExecutionContext(
        lambda: Database(settings),
        task_id,
        json.loads(payload),
        stop,
        log_limit=settings.task_log_max_size,
        deep_storage=settings.deep_storage_dir,
        perform_action=actions.perform_action,
    )
    try:
        return _run_in(settings, context, type_name)
    finally:
        context.close()


def _run_in(
    settings: Settings, context: ExecutionContext, type_name: str
) -> Outcome | None:
    try:
        result = run_task_code(context, type_name)
    except SystemExit:
        return None
    context.log(f"Task finished with status[{result.status.value}]")
    if context.unwritten_log_size() > RESULT_LOG_BYTES:
        # Write most of the log here, waiting out a database outage up to a
        # lease (the worker renews it meanwhile); the pipe carries the rest.
        deadline = time.monotonic() + settings.task_lease.total_seconds()
        _patiently(lambda: context.flush_logs(force=True), deadline)
    return Outcome(result, context.take_unwritten_log())
