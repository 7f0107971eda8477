"""serve's embedded worker: one supervised ``overlord worker`` child process."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

from overlord.config import Settings


class EmbeddedWorker:
    """serve's one supervised child: the task slots (``--workers``) and the periodic
    duties, whatever the HTTP concurrency. Restarted if it dies; stopped (drained)
    when serve stops; dies with a SIGKILLed serve (PR_SET_PDEATHSIG)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
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
            ]
        )

    def start(self) -> None:
        self.process = self._spawn()
        self.watcher.start()

    def _watch(self) -> None:
        while not self.stopping.wait(1.0):
            if self.process is not None and self.process.poll() is not None:
                logging.getLogger(__name__).error(
                    "embedded worker exited with %s; restarting",
                    self.process.returncode,
                )
                self.process = self._spawn()

    def stop(self) -> None:
        self.stopping.set()
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        grace = self.settings.worker_shutdown_grace + self.settings.task_shutdown_grace
        try:
            self.process.wait(grace.total_seconds() + 5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
