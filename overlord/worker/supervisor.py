"""serve's embedded worker: one supervised ``overlord worker`` child process."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading

from overlord.config import Settings


class EmbeddedWorker:
    """serve's one supervised child: the task slots (``--workers``) and the periodic
    duties, whatever the HTTP concurrency. Restarted if it dies, until a stop began;
    stopped (drained) when serve stops; dies with a SIGKILLed serve (PR_SET_PDEATHSIG).

    It runs in a process group of its own, so that a terminal's Ctrl-C (SIGINT to
    serve's foreground group) reaches serve alone, which then drains it with
    SIGTERM: a SIGINT reaching the worker itself would kill it while it still
    starts (a KeyboardInterrupt before its handlers exist) and let the watcher
    respawn it in the middle of the stop. Its task processes and multiprocessing
    helpers share that group, so kill() can end them all at once.
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

    def _spawn(self) -> subprocess.Popen[bytes]:
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
            ],
            process_group=0,
        )

    def start(self) -> None:
        self.process = self._spawn()
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
                    self.process = self._spawn()

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
        """SIGKILL the worker's process group now: the worker, its task processes
        and its multiprocessing forkserver (which would outlive a worker killed
        alone, and keep its task processes alive). Takes no lock: serve's handler
        of a second Ctrl-C calls it."""
        self.stopping.set()
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
