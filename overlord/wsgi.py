"""WSGI entry point for the production server's worker processes.

``create()`` is a factory the server calls once per worker process, after fork or
spawn: settings come from the environment ``overlord serve`` prepared.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from flask import Flask

from overlord.app import create_app

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies, so that no HTTP or
    task process outlives a SIGKILLed ``overlord serve``."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        return
    if os.getppid() == 1:  # the parent is already gone
        os.kill(os.getpid(), signal.SIGTERM)


def create() -> Flask:
    die_with_parent()
    return create_app()
