"""A writer queue shared by the processes writing one SQLite file.

SQLite lets one writer in at a time; the others wait in its busy handler, which
sleeps 1, 2, 5 … 100 ms between tries, so a writer of another process may sleep
long after the file was free: that sleep is the p99 of POST /task on ``serve``'s
two HTTP processes. Here writers queue on an ``flock`` of ``<db path>-writer``
before BEGIN IMMEDIATE instead, and the kernel wakes the next one the moment
the lock is released (after COMMIT).

Imports nothing from overlord.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator


class FileTurn:
    """The writer turn of one database file among processes.

    One per process and file; the threads of a process must already take turns
    (``Database._sqlite_write_turn``'s lock), so the turn is held by one thread of
    this process at a time, possibly re-entered by it.
    """

    def __init__(self, database_path: str) -> None:
        self.path = f"{database_path}-writer"
        self._fd: int | None = None
        self._pid = os.getpid()
        self._depth = 0
        self._guard = threading.Lock()
        # A helper thread still blocked in flock for a wait that timed out: no
        # second one is started on the same descriptor until it has finished
        # (it would be granted the lock with it, and then drop it).
        self._abandoned: threading.Thread | None = None
        self._close_later = False

    @contextlib.contextmanager
    def turn(self, timeout: float) -> Iterator[bool]:
        """Hold the file's writer turn; yields False (and holds nothing) when it
        could not be had within ``timeout`` seconds or the lock file cannot be
        used: the caller's BEGIN IMMEDIATE then queues in SQLite's busy handler,
        bounded by SQLite's own busy timeout."""
        if self._depth:
            self._depth += 1
            try:
                yield True
            finally:
                self._depth -= 1
            return
        taken = self._acquire(timeout)
        if not taken:
            yield False
            return
        self._depth = 1
        try:
            yield True
        finally:
            self._depth = 0
            self._release()

    def _open(self) -> int:
        if self._fd is not None and self._pid != os.getpid():
            # A forked child shares the parent's open file description, and with
            # it the parent's lock: it needs a description of its own.
            self._fd = None
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._pid = os.getpid()
        return self._fd

    def _acquire(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if self._abandoned is not None:
            # It lets go as soon as it is granted the lock.
            self._abandoned.join(timeout)
            if self._abandoned.is_alive():
                return False
            self._abandoned = None
        try:
            fd = self._open()
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        except OSError:
            return False
        # Another process writes. flock has no timeout: a helper thread blocks in
        # it while this one waits at most ``timeout``; if that passes first, the
        # helper releases the lock as soon as it gets it.
        got = threading.Event()
        abandoned = False

        def wait_for_lock() -> None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:
                with self._guard:
                    if self._close_later:
                        os.close(fd)
                return
            with self._guard:
                if abandoned:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    if self._close_later:
                        os.close(fd)
                    return
                got.set()

        helper = threading.Thread(
            target=wait_for_lock, name="sqlite-file-turn", daemon=True
        )
        helper.start()
        if got.wait(max(0.0, deadline - time.monotonic())):
            return True
        with self._guard:
            if got.is_set():
                return True
            abandoned = True
        self._abandoned = helper
        return False

    def _release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._guard:
            if self._abandoned is not None and self._abandoned.is_alive():
                # Its helper still waits on the descriptor: it closes it.
                self._close_later = True
                self._fd = None
                return
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
