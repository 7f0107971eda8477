"""``fileturn.FileTurn``: SQLite writers of several processes queue on one flock."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from overlord.fileturn import FileTurn

# Holds the turn until a line arrives on stdin; writes the marker file just
# before it lets go.
HOLDER = textwrap.dedent(
    """
    import pathlib, sys
    from overlord.fileturn import FileTurn

    turn = FileTurn(sys.argv[1])
    with turn.turn(10) as got:
        assert got
        print("held", flush=True)
        sys.stdin.readline()
        pathlib.Path(sys.argv[2]).write_text("released")
    """
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, Path]]:
    database = tmp_path / "overlord.db"
    marker = tmp_path / "released"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(database), str(marker)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    yield process, database, marker
    if process.poll() is None:
        process.kill()
    process.wait(10)
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            pipe.close()


def test_a_writer_waits_for_another_process_turn(
    holder: tuple[subprocess.Popen[str], Path, Path],
) -> None:
    process, database, marker = holder
    seen: list[tuple[bool, bool]] = []
    waiting = threading.Event()

    def write() -> None:
        waiting.set()
        turn = FileTurn(str(database))
        with turn.turn(30) as got:
            seen.append((got, marker.exists()))
        turn.close()

    writer = threading.Thread(target=write)
    writer.start()
    assert waiting.wait(10)
    assert process.stdin is not None
    process.stdin.write("\n")
    process.stdin.flush()
    writer.join(30)
    assert process.wait(10) == 0

    # It got the turn, and only after the other process had let go.
    assert seen == [(True, True)]


def test_the_wait_is_bounded_by_the_timeout(
    holder: tuple[subprocess.Popen[str], Path, Path],
) -> None:
    _process, database, _marker = holder
    turn = FileTurn(str(database))

    began = time.monotonic()
    with turn.turn(0.2) as got:
        waited = time.monotonic() - began
    assert got is False
    assert waited >= 0.2
    turn.close()


def test_the_turn_is_reentrant_and_released_once(tmp_path: Path) -> None:
    database = str(tmp_path / "overlord.db")
    turn, other = FileTurn(database), FileTurn(database)

    with turn.turn(1) as outer:
        with turn.turn(1) as inner:
            assert (outer, inner) == (True, True)
        with other.turn(0.05) as got:
            assert got is False  # still held by the outer turn
    with other.turn(1) as got:
        assert got is True
    turn.close()
    other.close()
