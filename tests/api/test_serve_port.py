"""``overlord serve`` refuses a port already in use, whoever listens on it: granian
binds with SO_REUSEPORT, and two servers sharing a port answer requests in turn."""

from __future__ import annotations

import socket
from pathlib import Path

import requests

from tests.processes import group_members, serve_process


def test_serve_port_held_by_plain_socket_exits_1_with_one_line(
    database_url: str, tmp_path: Path
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]

        with serve_process(database_url, tmp_path, "--port", str(port)) as process:
            assert process.popen.wait(timeout=30) == 1
            assert (tmp_path / "serve.stderr").read_text() == (
                f"error: cannot listen on 127.0.0.1:{port}: address already in use\n"
            )
            assert (tmp_path / "serve.stdout").read_text() == ""
            assert not group_members(process.pid)


def test_serve_port_of_running_serve_exits_1_and_first_keeps_it(
    database_url: str, tmp_path: Path
) -> None:
    first_dir = tmp_path / "first"
    second_dir = tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    args = ("--workers", "0", "--http-workers", "1")
    with serve_process(database_url, first_dir, *args) as first:
        first.wait_healthy()

        with serve_process(
            database_url, second_dir, *args, "--port", str(first.port)
        ) as second:
            assert second.popen.wait(timeout=30) == 1
            assert (second_dir / "serve.stderr").read_text() == (
                f"error: cannot listen on 127.0.0.1:{first.port}: "
                "address already in use\n"
            )
            assert not group_members(second.pid)

        # The first one still holds the port alone.
        assert first.popen.poll() is None
        response = requests.get(f"{first.base_url}/status/health", timeout=5)
        assert (response.status_code, response.text) == (200, "true")
