"""Process hygiene shared by servers and workers (stdlib only)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to signal this process when its parent dies, so that no HTTP,
    worker or task process outlives a SIGKILLed parent."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig)
    except OSError:
        return
    if os.getppid() == 1:  # the parent is already gone
        os.kill(os.getpid(), sig)
