"""SIGTERM and SIGINT stop a worker cleanly from its first line on (stdlib only).

Until the worker's drain handlers are installed (about a second of imports and
checks), a stop signal would kill it by default (SIGTERM) or raise
KeyboardInterrupt (SIGINT, which click prints as ``Aborted!``), and a row it had
written would linger for two leases. So the process blocks both signals first;
``Worker.install_signal_handlers`` unblocks them, and one that arrived meanwhile
is delivered then and starts the drain.

The processes a worker starts begin with both signals blocked as well (the mask is
inherited), as multiprocessing's resource tracker is started: a SIGTERM or Ctrl-C
sent to the worker's process group reaches the worker, which drains, and must not
kill its forkserver half-started (starting a task then failed with ``EOFError``,
which click also prints as ``Aborted!``). The forkserver keeps them blocked and
exits when the worker does (EOF on the worker's pipe); a task process unblocks
them once its own SIGTERM handler is set (``child``).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def defer_stop_signals() -> None:
    """Hold SIGTERM and SIGINT pending until ``resume_stop_signals``."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def resume_stop_signals() -> None:
    """Deliver any stop signal held since ``defer_stop_signals``, and later ones."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@contextlib.contextmanager
def stop_signals_deferred() -> Iterator[None]:
    """Block the stop signals for the block's duration (processes started in it
    inherit the blocked mask); one that arrives meanwhile is delivered after."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
