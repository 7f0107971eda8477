"""WSGI entry point for the production server's worker processes.

``create()`` is a factory the server calls once per worker process, after fork or
spawn: settings come from the environment ``overlord serve`` prepared.
``prepare_worker_forks()`` runs in ``overlord serve`` itself, before the server forks.
"""

from __future__ import annotations

import os
import signal

from flask import Flask

from overlord.app import create_app
from overlord.processes import die_with_parent

__all__ = ["create", "die_with_parent"]


def _reset_in_forked_child() -> None:
    # A forked worker inherits granian's main-process handlers for SIGTERM and
    # SIGINT, which only flag the main process's loop. Until the worker installs
    # its own graceful handlers, a SIGTERM (a quick stop, or the death signal of a
    # SIGKILLed parent) would be swallowed and the worker would serve on forever,
    # orphaned. A worker still starting has no request to drain: let it die.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    die_with_parent()


def prepare_worker_forks() -> None:
    """Make every process forked from here die on SIGTERM until it installs its own
    handlers, and with its parent."""
    os.register_at_fork(after_in_child=_reset_in_forked_child)


def create() -> Flask:
    die_with_parent()
    return create_app()
