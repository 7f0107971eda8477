"""WSGI entry point for the production server's worker processes.

``create()`` is a factory the server calls once per worker process, after fork or
spawn: settings come from the environment ``overlord serve`` prepared.
``prepare_worker_forks()`` runs in ``overlord serve`` itself, before the server forks.
"""

from __future__ import annotations

import os
import signal
import threading

from flask import Flask

from overlord.app import create_app
from overlord.processes import die_with_parent
from overlord.startup_probe import startup_step

__all__ = ["create", "die_with_parent"]


# SIGTERM and SIGINT stop granian's main process; SIGTERM also stops a worker.
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
_fork = threading.local()


def _before_fork() -> None:
    # Hold the stop signals across fork(): one that reaches the child before
    # _after_fork_in_child has run would go to the inherited handler and be lost.
    _fork.mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    _fork.parent = os.getpid()


def _after_fork_in_parent() -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, _fork.mask)


def _after_fork_in_child() -> None:
    # A forked worker inherits granian's main-process handlers for SIGTERM and
    # SIGINT, which only flag the main process's loop. Until the worker installs
    # its own graceful handlers, a SIGTERM (a quick stop, or the death signal of a
    # SIGKILLed parent) would be swallowed and the worker would serve on forever,
    # orphaned. A worker still starting has no request to drain: let it die.
    for signum in _STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    die_with_parent()
    if os.getppid() != _fork.parent:  # the parent died before prctl; we were adopted
        os.kill(os.getpid(), signal.SIGTERM)
    # A SIGTERM held since fork() is delivered here, and kills. SIGINT stays
    # blocked for the worker's whole life: a terminal's Ctrl-C reaches every
    # process of serve's group, and granian's worker, given SIGINT and then its
    # parent's SIGTERM, hangs in its shutdown (granian 2.8). serve's main process
    # alone takes Ctrl-C and stops its workers with one SIGTERM each.
    signal.pthread_sigmask(signal.SIG_SETMASK, {*_fork.mask, signal.SIGINT})


def prepare_worker_forks() -> None:
    """Make every process forked from here die on SIGTERM until it installs its own
    handlers, never see SIGINT, and die with its parent."""
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )


def create() -> Flask:
    # SIGKILL, not SIGTERM: granian's worker turns SIGTERM into a graceful stop that
    # can wait on open keep-alive connections, and an orphaned worker would go on
    # serving. A SIGKILLed serve has no requests left to drain.
    die_with_parent(signal.SIGKILL)
    startup_step("http-worker-app")
    app = create_app()
    startup_step("http-worker-serve")
    return app
