"""``python -m overlord`` runs the command-line interface."""

from __future__ import annotations

import sys

if sys.argv[1:2] == ["worker"]:
    # Before the second of imports that follows: a stop signal then must drain the
    # worker, not kill it (see overlord.worker.signals).
    from overlord.worker.signals import defer_stop_signals

    defer_stop_signals()

from overlord.cli import main

main()
