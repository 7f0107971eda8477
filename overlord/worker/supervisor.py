"""serve's embedded worker: one supervised ``overlord worker`` child process."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from overlord.config import Settings
from overlord.startup_probe import startup_step


class EmbeddedWorker:
    """serve's one supervised child: the task slots (``--workers``) and the periodic
    duties, whatever the HTTP concurrency. Restarted if it dies, until a stop began;
    stopped (drained) when serve stops; dies with a SIGKILLed serve (PR_SET_PDEATHSIG).

    It starts with SIGINT blocked, a signal mask it keeps across exec, and once
    its handlers exist it ignores SIGINT (``--die-with-parent``), so that a
    terminal's Ctrl-C (SIGINT to serve's whole process group) reaches serve alone,
    which then drains it with SIGTERM: a SIGINT reaching the worker itself would
    kill it while it still starts (a KeyboardInterrupt before its handlers exist),
    or drain it to exit 0 before serve's stop began, and let the watcher respawn
    it in the middle of the stop (seen once in CI at the ``http-spawn`` step). It stays in serve's process group, so that whoever
    kills that group (an operator, a test, a service manager) kills it too: a
    worker that outlives serve while its database is gone would retry forever.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        # Held while the watcher decides to respawn and while a stop begins: once
        # begin_stop() returns, no new worker is ever started. Reentrant: a signal
        # handler may call begin_stop() while the main thread is inside it.
        self._lock = threading.RLock()
        self.watcher = threading.Thread(target=self._watch, daemon=True)

    def _spawn(self) -> None:
        # The signal mask is per thread and inherited through fork and exec:
        # block SIGINT in this thread only while it starts the child. The child is
        # recorded before SIGINT is unblocked: a Ctrl-C held meanwhile raises
        # KeyboardInterrupt as soon as it is, and a child started but not yet
        # recorded would be neither drained nor killed by stop().
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self.process = self._popen()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def _popen(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "overlord",
                "worker",
                "--capacity",
                str(self.settings.workers),
                "--port",
                str(self.settings.port),
                "--die-with-parent",
                # Druid's task count metrics are the leader's alone (TaskMaster
                # gives followers none); here serve's: a standalone worker's would
                # multiply them.
                "--task-count-metrics",
            ]
        )

    def start(self) -> None:
        self._spawn()
        startup_step("watcher")
        self.watcher.start()

    def _watch(self) -> None:
        while not self.stopping.wait(1.0):
            with self._lock:
                if self.stopping.is_set():
                    return
                if self.process is not None and self.process.poll() is not None:
                    logging.getLogger(__name__).error(
                        "embedded worker exited with %s; restarting",
                        self.process.returncode,
                    )
                    self._spawn()

    def begin_stop(self) -> None:
        """Never respawn again, and ask the worker to drain (SIGTERM). Returns at
        once; safe to call from serve's signal handler and more than once."""
        with self._lock:
            first = not self.stopping.is_set()
            self.stopping.set()
            if first and self.process is not None and self.process.poll() is None:
                self.process.terminate()

    def stop(self) -> None:
        """begin_stop(), then wait for the drain; kill the worker when it
        outlasts the graces."""
        self.begin_stop()
        if self.process is None:
            return
        grace = self.settings.worker_shutdown_grace + self.settings.task_shutdown_grace
        try:
            self.process.wait(grace.total_seconds() + 5)
        except subprocess.TimeoutExpired:
            self.kill()
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL the worker and every process under it, now: its multiprocessing
        forkserver would outlive a worker killed alone, and keep its task
        processes alive. Takes no lock: serve's handler of a second Ctrl-C calls
        it."""
        self.stopping.set()
        process = self.process
        if process is None or process.returncode is not None:
            return
        # Stop the worker first so that it forks no more, then its descendants.
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGSTOP)
        for pid in [process.pid, *_descendants(process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _descendants(pid: int) -> list[int]:
    """Children, grandchildren, … of ``pid`` (Linux /proc; none elsewhere)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for listing in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                children = [int(child) for child in listing.read_text().split()]
            except OSError:
                continue  # the thread or process ended while we looked
            for child in children:
                if child not in found:
                    found.append(child)
                    pending.append(child)
    return found
