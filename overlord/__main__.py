"""``python -m overlord`` runs the command-line interface."""

from __future__ import annotations

from overlord.cli import main

main()
