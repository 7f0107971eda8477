"""Tests only: make ``overlord serve`` pause at a named start-up step.

A Ctrl-C may come at any moment of serve's start-up; the tests send theirs while
serve (or one of its HTTP workers) pauses at each step in turn. The variable is not
an ``OVERLORD_*`` setting, so serve neither warns about it nor drops it from the
environment its HTTP workers inherit. Unset (always, outside tests) a step costs
one environment lookup.
"""

from __future__ import annotations

import os
import time

PAUSE_VARIABLE = "TEST_OVERLORD_SERVE_PAUSE_AT"
PAUSE_SECONDS = 2.0


def startup_step(name: str) -> None:
    """Pause at this start-up step when the test variable names it, after saying
    so on stderr; a signal handled meanwhile does not shorten the pause."""
    if os.environ.get(PAUSE_VARIABLE) != name:
        return
    os.write(2, f"overlord serve: paused at {name} (pid {os.getpid()})\n".encode())
    deadline = time.monotonic() + PAUSE_SECONDS
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(left)
