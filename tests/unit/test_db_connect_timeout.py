"""A database host that accepts the TCP connection and never answers fails after
``db_connect_timeout`` with one line, not after the OS's TCP timeout (minutes)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import overlord_env

OVERLORD = str(Path(sys.executable).parent / "overlord")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose kernel completes the handshake (backlog) but whose server never
    accepts nor says a word: a hung database host."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


def test_silent_postgresql_host_fails_after_the_connect_timeout(
    silent_port: int, tmp_path: Path
) -> None:
    # (pymysql bounds only the TCP connect by its connect_timeout; a MariaDB host
    # that accepts and never greets is not bounded by this setting.)
    url = f"postgresql+psycopg://user:secret@127.0.0.1:{silent_port}/overlord"
    started = time.monotonic()
    result = subprocess.run(
        [OVERLORD, "db", "current"],
        env=overlord_env(
            {"OVERLORD_DATABASE_URL": url, "OVERLORD_DB_CONNECT_TIMEOUT": "PT2S"}
        ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started

    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: database_url postgresql+psycopg://user:<masked>@127.0.0.1:"
        f"{silent_port}/overlord: cannot use the database: connection timeout "
        "expired\n"
    )
    assert "secret" not in result.stderr
    # The bound is the 2 s timeout (libpq may try twice: IPv4 and a retry), with
    # the project's 3x slack, plus the command's start-up.
    assert elapsed < 2 * 2 * 3 + 5, elapsed
