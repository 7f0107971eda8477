"""A worker: N task slots fed by claims on the shared store.

Loop: wait for work (LISTEN/NOTIFY on PostgreSQL, a short poll elsewhere) → promote
ready tasks → claim into free slots → start each task in its own process → renew
leases and watch for shutdowns → reap finished processes. Every step is its own
short transaction; none is open while a task runs. A database outage makes the
loop back off and retry; it never fails tasks for it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import multiprocessing
import os
import select
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing import resource_tracker
from typing import Any

from sqlalchemy.exc import DBAPIError

from overlord import __version__, metrics
from overlord.config import Settings
from overlord.db import Database, Waker, database_now, is_unavailable, retry
from overlord.errors import DatabaseBusy
from overlord.jsondepth import allow_max_nesting_depth
from overlord.logs import TaskLog
from overlord.services import duties, scheduler
from overlord.services import metrics as metrics_service
from overlord.services.execution import (
    RUN_FAILED,
    ReportedEnd,
    finish_reported_tasks,
    finish_task,
)
from overlord.states import TaskState
from overlord.store import execution as execution_store
from overlord.store.execution import ClaimedTask
from overlord.store.models import Worker as WorkerRow
from overlord.tasktypes.base import TaskResult
from overlord.timeutil import utcnow
from overlord.worker.child import Outcome, run_task_process
from overlord.worker.signals import resume_stop_signals, stop_signals_deferred

log = logging.getLogger(__name__)

WORKER_STOPPED = (
    "The worker running this task was stopped before the task finished. "
    "See overlord and worker logs for more details."
)
SHUTDOWN_POLL_SECONDS = 0.25
MAX_SPARES = 4
FORKSERVER_PRELOAD = [
    "overlord.worker.child",
    "overlord.tasktypes",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "sqlalchemy.dialects.postgresql.psycopg",
    "sqlalchemy.dialects.mysql.pymysql",
    # The drivers themselves, which the dialects import only at create_engine:
    # 0.14 s of a PostgreSQL task process's start-up was psycopg's import.
    "psycopg",
    "pymysql",
    # Last: freezes the heap all the above built (see the module).
    "overlord.worker.forkserver_heap",
]


@dataclass
class Slot:
    task: ClaimedTask
    process: Any
    started: Any
    channel: Any  # the worker's end of the task process's pipe
    log: TaskLog  # lines about the task: its id and its submit's X-Opaque-Id
    stop_sent_at: float | None = None
    outcome: Outcome | None = None
    channel_open: bool = True

    @property
    def task_id(self) -> str:
        return self.task.task_id


@dataclass(frozen=True)
class Step:
    """What one finish-and-claim transaction did: its time (the worker's clock, as
    the ends it wrote), the tasks it found without a result, the final status of
    each task it ended, the tasks it claimed and the claim's database time."""

    now: dt.datetime
    lost: list[str]
    ended: dict[str, TaskState]
    claimed: list[ClaimedTask]
    started: dt.datetime | None
    # The ended tasks whose own reported result was written.
    reported: list[str] = field(default_factory=list)


@dataclass
class Timers:
    last: dict[str, float] = field(default_factory=dict)

    def due(self, name: str, every: float) -> bool:
        now = time.monotonic()
        if now - self.last.get(name, 0.0) >= every:
            self.last[name] = now
            return True
        return False


def _start_process(process: Any) -> None:
    """Start a task or spare process, and with the first the forkserver, with the
    stop signals blocked (see overlord.worker.signals)."""
    # multiprocessing's resource tracker, started with the forkserver, unblocks
    # SIGTERM and SIGINT after its own start instead of restoring the mask: start
    # it first, so that the forkserver starts with them blocked.
    resource_tracker.ensure_running()
    with stop_signals_deferred():
        process.start()


class Worker:
    """One worker process with ``capacity`` task slots (0: duties only)."""

    def __init__(
        self,
        settings: Settings,
        capacity: int,
        *,
        run_duties: bool = True,
        port: int = -1,
        task_count_metrics: bool = False,
    ) -> None:
        allow_max_nesting_depth()  # the scheduler decodes payloads nesting 1000 deep
        self.settings = settings
        self.capacity = capacity
        self.run_duties = run_duties
        self.task_count_metrics = task_count_metrics
        self.database = Database(settings)
        self.host = socket.gethostname()
        self.port = port
        self.worker_id = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.slots: dict[str, Slot] = {}
        # Slots whose process ended, until their final status is committed (in the
        # transaction that claims their next tasks): still RUNNING in the store.
        self.finishing: dict[str, Slot] = {}
        self.draining = threading.Event()
        self.stopped = threading.Event()
        self.timers = Timers()
        # Druid's monitors emit first one period after start (fixed rate).
        self.timers.last["task_counts"] = time.monotonic()
        self._waker: Waker | None = None
        self._spares: list[tuple[Any, Any]] = []
        # Processes of tasks that sent their result, until they exit; with the
        # time their result came.
        self._exiting: list[tuple[Any, float]] = []
        self._spare_deaths = False
        self._context = multiprocessing.get_context("forkserver")
        # Task processes fork from a server that already imported what they need,
        # database drivers included: a task starts in milliseconds, not 0.5 s.
        self._context.set_forkserver_preload(FORKSERVER_PRELOAD)

    # -- lifecycle ------------------------------------------------------------
    def install_signal_handlers(self, *, interrupt: bool = True) -> None:
        """SIGTERM and SIGINT (Ctrl-C reaches the whole group) drain the worker; one
        held since start-up (``signals.defer_stop_signals``) is delivered now.

        ``interrupt=False`` (serve's embedded worker) ignores SIGINT instead, a
        held one included: a terminal's Ctrl-C reaches serve's whole process
        group, and serve drains this worker itself (SIGTERM) once it has set its
        own stop; a worker draining on its own before that would exit 0 and be
        restarted by serve's watcher in the middle of the stop."""
        signal.signal(signal.SIGTERM, lambda *_: self.draining.set())
        if interrupt:
            signal.signal(signal.SIGINT, lambda *_: self.draining.set())
        else:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        resume_stop_signals()

    def run(self) -> None:
        log.info("worker %s starting with %d slot(s)", self.worker_id, self.capacity)
        drain_started: float | None = None
        # Whatever happens from here, _close removes the row in its last
        # transaction: a stopped worker leaves /workers at once.
        try:
            # Spares first: a worker is listed (/workers) once it can start tasks
            # at once, not while its forkserver still imports (a second or more
            # on a loaded machine, which a burst submitted meanwhile waited out).
            self._prepare_spares()
            if self.capacity > 0:
                self._retry_until_draining(
                    lambda: self.database.run(self._register, write=True)
                )
            while True:
                if self.draining.is_set():
                    self._drop_spares()
                    if drain_started is None:
                        drain_started = time.monotonic()
                        log.info(
                            "worker %s draining %d task(s)",
                            self.worker_id,
                            len(self.slots),
                        )
                    if not self.slots and not self.finishing:
                        break
                    if (
                        time.monotonic() - drain_started
                        > self.settings.worker_shutdown_grace.total_seconds()
                    ):
                        self._give_up_tasks()
                        break
                self._step()
                self._wait()
        finally:
            self._close()

    def _step(self) -> None:
        """One step; while the store is unreachable it backs off and retries (from
        0.5 s, doubling up to 5 s), never failing tasks for the outage. Once
        draining, it stops retrying: the drain decides what comes next."""
        with contextlib.suppress(DBAPIError, DatabaseBusy):
            retry(
                self._step_once,
                retryable=is_unavailable,
                delay=0.5,
                max_delay=5.0,
                stop=self.draining,
                what="worker step",
            )

    def _step_once(self) -> None:
        self._reap()
        claim = not self.draining.is_set() and len(self.slots) < self.capacity
        if claim or self.finishing:
            self._finish_and_claim(claim=claim)
        elif self.run_duties and self.timers.due("promote", 1.0):
            self.database.run(
                lambda session: scheduler.promote_waiting_tasks(session, utcnow()),
                write=True,
            )
        if self.timers.due("lease", self.settings.task_lease.total_seconds() / 3):
            self.database.run(self._renew, write=True)
        if self.slots and self.timers.due("shutdowns", SHUTDOWN_POLL_SECONDS):
            self._watch_shutdowns()
        self._enforce_kill_deadlines()
        if self.run_duties:
            self._duties()
        if self.task_count_metrics and self.timers.due(
            "task_counts", self.settings.metrics_emission_period.total_seconds()
        ):
            self._emit_task_counts()
        self._prepare_spares()

    # -- work -----------------------------------------------------------------
    def _register(self, session: Any) -> None:
        """Write this worker's row. Only a worker with task slots has one:
        ``/workers`` lists task slots (Druid's ImmutableWorkerInfo), and a
        duties-only process (capacity 0) offers none."""
        now = database_now(session)
        execution_store.register_worker(
            session,
            WorkerRow(
                id=self.worker_id,
                host=self.host,
                port=self.port,
                capacity=self.capacity,
                version=__version__,
                category="_default_worker_category",
                enabled=True,
                started_at=now,
                last_heartbeat_at=now,
                last_completed_task_at=None,
            ),
        )

    def _finish_and_claim(self, *, claim: bool) -> None:
        """One transaction: the final statuses of the tasks whose processes ended
        (``finishing``), then, if ``claim``, promotion of ready tasks and one claim
        per free slot. A slot is reused only once its task's end is committed.

        Noop burst, 4 slots, SQLite: a promotion, one claim per task, an empty
        claim per step and each process's own final write (cold, 176 ms of held
        write lock on average) before; now one transaction per step. Same burst,
        same submits, loaded machine: 7.7-8.4 → 11.7-16.5 tasks/s from first start
        to last finish (SQLite), 3.7 → 8.6 (PostgreSQL)."""
        finishing = dict(self.finishing)
        free = self.capacity - len(self.slots) if claim else 0
        skip_locked = self.database.supports_skip_locked()

        def step(session: Any) -> Step:
            now = utcnow()
            lost: list[str] = []
            ended: dict[str, TaskState] = {}
            reports = [
                ReportedEnd(
                    task_id, slot.outcome.result, slot.outcome.log, slot.started
                )
                for task_id, slot in finishing.items()
                if slot.outcome is not None
            ]
            reported = finish_reported_tasks(
                session, reports, worker_id=self.worker_id, now=now
            )
            won_reported = set(reported)
            for end in reports:
                # A compare-and-set that lost met a task a shutdown, the lease
                # duty or a stopping worker had already ended: FAILED, all three.
                won = end.task_id in won_reported
                ended[end.task_id] = end.result.status if won else TaskState.FAILED
            for task_id, slot in finishing.items():
                if slot.outcome is not None:
                    continue
                # After a crash or a kill this compare-and-set makes the task
                # FAILED (a status a shutdown already wrote is kept).
                if finish_task(
                    session,
                    task_id=task_id,
                    worker_id=self.worker_id,
                    result=TaskResult(TaskState.FAILED, RUN_FAILED),
                    started=slot.started,
                    now=now,
                    touch_worker=False,
                ):
                    lost.append(task_id)
                ended[task_id] = TaskState.FAILED
            completed = bool(reported or lost)
            if completed:
                execution_store.touch_worker_completion(session, self.worker_id, now)
            if free <= 0:
                return Step(now, lost, ended, [], None, reported)
            scheduler.promote_waiting_tasks(session, now)
            db_now = database_now(session)
            claimed = scheduler.claim_tasks(
                session,
                limit=free,
                worker_id=self.worker_id,
                host=self.host,
                port=self.port,
                db_now=db_now,
                lease=self.settings.task_lease,
                skip_locked=skip_locked,
                tls=self.settings.tls_enabled,
            )
            return Step(now, lost, ended, claimed, db_now, reported)

        done = self.database.run(step, write=True)
        for task_id, slot in finishing.items():
            del self.finishing[task_id]
            if task_id in done.lost:
                slot.log.warning("task %s ended without its final status", task_id)
            elif task_id in done.reported and slot.outcome is not None:
                slot.log.info(
                    "task %s ended with status %s",
                    task_id,
                    slot.outcome.result.status.value,
                )
            else:
                # A shutdown or the lease duty ended it first; that status stays.
                slot.log.info(
                    "task %s process ended; the task was already final", task_id
                )
            self._record(
                metrics_service.record_task_end,
                slot.task.type,
                slot.task.datasource,
                done.ended[task_id],
                (done.now - slot.started).total_seconds(),
            )
        for task in done.claimed:
            self._start(task, done.started)

    def _start(self, task: ClaimedTask, started: Any) -> None:
        process, channel = self._take_spare() or self._new_process()
        channel.send(
            (
                task.task_id,
                self.worker_id,
                started,
                task.type,
                task.payload,
                task.opaque_id,
            )
        )
        task_log = TaskLog(log, task.task_id, task.opaque_id)
        self.slots[task.task_id] = Slot(task, process, started, channel, task_log)
        task_log.info("task %s started in process %s", task.task_id, process.pid)
        self._record(
            metrics_service.record_task_start,
            task.type,
            task.datasource,
            task.ready_at,
            started,
        )

    def _new_process(self) -> tuple[Any, Any]:
        """A task process (``child.run_task_process``) waiting for its task on the
        other end of the returned pipe."""
        channel, theirs = self._context.Pipe()
        process = self._context.Process(
            target=run_task_process,
            args=(self.settings, theirs),
            name="overlord-task",
        )
        _start_process(process)
        theirs.close()
        return process, channel

    def _take_spare(self) -> tuple[Any, Any] | None:
        while self._spares:
            process, writer = self._spares.pop(0)
            if process.is_alive():
                self._spare_deaths = False
                return process, writer
            self._spare_deaths = True
            writer.close()
            process.join(0)
        return None

    def _prepare_spares(self) -> None:
        """Keep warm task processes ready (connected to the store), one per slot up
        to MAX_SPARES, busy slots included, so a task claimed for a slot that just
        freed skips process start-up and the driver's first connect. (One per free
        slot only, as before, left a busy worker none: every task after the first
        few started cold.)"""
        if self.draining.is_set():
            return
        alive = [spare for spare in self._spares if spare[0].is_alive()]
        if len(alive) < len(self._spares):
            self._spare_deaths = True
        self._spares = alive
        wanted = min(self.capacity, MAX_SPARES)
        if len(self._spares) >= wanted:
            return
        if self._spare_deaths and not self.timers.due("spare", 1.0):
            return  # spares that keep dying must not respawn in a tight loop
        while len(self._spares) < wanted:
            if self._spares and self._task_news():
                # A task sent its result or ended while this waited on the
                # forkserver: that comes first; the next step tops up the rest.
                return
            self._spares.append(self._new_process())

    def _task_news(self) -> bool:
        """Whether a task process sent something or exited (no waiting)."""
        try:
            ready, _, _ = select.select(self._watched(), [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(ready)

    def _drop_spares(self) -> None:
        spares, self._spares = self._spares, []
        for _process, channel in spares:
            with contextlib.suppress(OSError, ValueError):
                channel.send(None)
                channel.close()
        for process, _ in spares:
            process.join(2)
            if process.is_alive():
                process.kill()
                process.join(2)

    def _renew(self, session: Any) -> None:
        db_now = database_now(session)
        execution_store.renew_leases(
            session,
            self.worker_id,
            [*self.slots, *self.finishing],
            db_now + self.settings.task_lease,
        )
        if self.capacity > 0 and not execution_store.heartbeat_worker(
            session, self.worker_id, db_now
        ):
            # The row is gone while this worker lives: it stalled (SIGSTOP, a frozen
            # VM) past two leases and a duty took it for dead, failing the tasks
            # whose lease ran out (Druid's lost-worker rule; _watch_shutdowns stops
            # their processes). Register again in this same transaction: a second
            # write transaction opened here would wait on this one's lock (SQLite's
            # single writer) until both fail, and the leases would never be renewed.
            log.warning(
                "worker %s was removed while alive: registering again", self.worker_id
            )
            self._register(session)

    def _watch_shutdowns(self) -> None:
        stopped = self.database.run(
            lambda session: execution_store.stopped_task_ids(
                session, self.worker_id, list(self.slots)
            )
        )
        for task_id in stopped:
            self._signal_stop(task_id)

    def _signal_stop(self, task_id: str) -> None:
        slot = self.slots.get(task_id)
        if slot is None or slot.stop_sent_at is not None:
            return
        slot.stop_sent_at = time.monotonic()
        slot.log.info("task %s is no longer active: stopping its process", task_id)
        with contextlib.suppress(ProcessLookupError, AttributeError):
            slot.process.terminate()

    def _enforce_kill_deadlines(self) -> None:
        grace = self.settings.task_shutdown_grace.total_seconds()
        for slot in self.slots.values():
            if (
                slot.stop_sent_at is not None
                and time.monotonic() - slot.stop_sent_at > grace
            ) and slot.process.is_alive():
                slot.log.warning(
                    "task %s ignored its stop signal: killing it", slot.task_id
                )
                slot.process.kill()

    def _reap(self) -> None:
        """Read the results task processes sent; move the slots of tasks that sent
        their result, or whose process ended, to ``finishing`` (their final status
        goes in the next transaction).

        A process that sent its result only exits after it: its slot does not wait
        for that (``_exiting`` joins it later). Waiting made every task's end
        wait on the process's exit, the forkserver's reaping of it and a second
        wake-up of this loop; noop burst, 100 tasks, 4 slots, loaded machine:
        claim to end was 150-200 ms a task (see the commit for the rate)."""
        self._join_exited()
        for task_id, slot in list(self.slots.items()):
            self._receive(slot)
            if slot.outcome is not None:
                self._exiting.append((slot.process, time.monotonic()))
            elif slot.process.is_alive():
                continue
            else:
                slot.process.join(0)
                self._receive(slot)
            slot.channel.close()
            del self.slots[task_id]
            if slot.outcome is None:
                slot.log.warning(
                    "task %s process exited with %s", task_id, slot.process.exitcode
                )
            self.finishing[task_id] = slot

    def _join_exited(self, wait: float = 0.0) -> None:
        """Join the processes of tasks that sent their result; kill one still
        alive a task shutdown grace after it (a thread of the task's code that
        never ends keeps a process from exiting)."""
        grace = self.settings.task_shutdown_grace.total_seconds()
        deadline = time.monotonic() + wait
        exiting, self._exiting = self._exiting, []
        for process, since in exiting:
            process.join(max(0.0, deadline - time.monotonic()))
            if not process.is_alive():
                continue
            if time.monotonic() - since > grace:
                log.warning("task process %s did not exit: killing it", process.pid)
                process.kill()
            self._exiting.append((process, since))

    def _receive(self, slot: Slot) -> None:
        if slot.outcome is not None or not slot.channel_open:
            return
        try:
            if slot.channel.poll(0):
                slot.outcome = slot.channel.recv()
        except (EOFError, OSError):
            slot.channel_open = False  # it exited without a result

    def _record(self, record: Any, *args: Any) -> None:
        """Metrics of a task start or end, from what the worker claimed and
        committed (no read of the task's row): only where a scrape can see them
        (serve's multiprocess directory); never a reason for the loop to fail."""
        if not metrics.multiprocess():
            return
        try:
            record(*args)
        except Exception as error:  # a metric is not worth a failed step
            log.debug("task metrics not recorded: %s", error)

    def _emit_task_counts(self) -> None:
        """One emission period of Druid's task and slot counts (serve's embedded
        worker only); a missed period is not worth a failed step."""
        try:
            self.database.run(metrics_service.emit_task_counts)
        except Exception as error:
            log.debug("task count metrics not emitted: %s", error)

    def _give_up_tasks(self) -> None:
        """Grace is over: make the tasks FAILED first (so their own late finish
        cannot overwrite it), then stop and, if need be, kill their processes. The
        results of tasks that did finish are committed first."""
        self._reap()
        if self.finishing:
            self._finish_and_claim(claim=False)
        task_ids = list(self.slots)
        self.database.run(
            lambda session: scheduler.give_up_tasks(
                session,
                task_ids,
                worker_id=self.worker_id,
                message=WORKER_STOPPED,
                now=utcnow(),
            ),
            write=True,
        )
        for slot in self.slots.values():
            slot.log.warning("task %s given up: the worker is stopping", slot.task_id)
            with contextlib.suppress(ProcessLookupError):
                slot.process.terminate()
        deadline = time.monotonic() + self.settings.task_shutdown_grace.total_seconds()
        for slot in self.slots.values():
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(5)
        self.slots.clear()

    def _duties(self) -> None:
        if self.timers.due("leases", 1.0):
            self.database.run(
                lambda session: scheduler.fail_expired_leases(
                    session,
                    db_now=database_now(session),
                    lease=self.settings.task_lease,
                ),
                write=True,
            )
            metrics.duty_ran("leases")
        period = self.settings.pending_segments_cleanup_period.total_seconds()
        if period > 0 and self.timers.due("pending_segments", period):
            removed = self.database.run(
                lambda session: duties.kill_stale_pending_segments(
                    session,
                    now=utcnow(),
                    buffer=self.settings.pending_segments_cleanup_buffer,
                ),
                write=True,
            )
            metrics.duty_ran("pending_segments", sum(removed.values()))
        if self.timers.due("workers", self.settings.task_lease.total_seconds()):
            self.database.run(
                lambda session: execution_store.remove_silent_workers(
                    session, database_now(session) - 2 * self.settings.task_lease
                ),
                write=True,
            )

    # -- waiting --------------------------------------------------------------
    def _wait(self) -> None:
        """Sleep until a poll interval passes, a task process exits (its sentinel
        becomes readable) or the store tells of another connection's commit
        (NOTIFY on PostgreSQL, ``PRAGMA data_version`` on SQLite)."""
        timeout = self.settings.poll_interval.total_seconds()
        if self.draining.is_set():
            timeout = min(timeout, 0.1)
        if self._waker is None:
            self._waker = self.database.waker(
                channel=execution_store.NOTIFY_CHANNEL, interrupt=self.draining
            )
        self._waker.wait(timeout, self._watched())

    def _watched(self) -> list[int]:
        """What wakes the loop: each task process's exit (its sentinel) and its
        result (its pipe)."""
        watched = [slot.process.sentinel for slot in self.slots.values()]
        watched += [
            slot.channel.fileno()
            for slot in self.slots.values()
            if slot.outcome is None and slot.channel_open
        ]
        return watched

    def _retry_until_draining(self, step: Any) -> None:
        """Back off (0.5 s, doubling up to 5 s) while the store is unreachable;
        give up quietly once draining."""
        with contextlib.suppress(DBAPIError, DatabaseBusy):
            retry(
                step,
                retryable=is_unavailable,
                delay=0.5,
                max_delay=5.0,
                stop=self.draining,
                what="worker registration",
            )

    def _close(self) -> None:
        self._drop_spares()
        self._join_exited(wait=self.settings.task_shutdown_grace.total_seconds())
        for process, _ in self._exiting:
            process.kill()
            process.join(5)
        self._exiting = []
        if self._waker is not None:
            self._waker.close()
        with contextlib.suppress(DBAPIError, DatabaseBusy):
            self.database.run(
                lambda session: execution_store.remove_worker(session, self.worker_id),
                write=True,
            )
        self.database.dispose()
        self.stopped.set()
        log.info("worker %s stopped", self.worker_id)
