"""The store as the commands see it: a database that does not exist is one line
naming the setting (no traceback, exit 1) for serve, worker and db; serve and
worker say which store they use (password masked, SQLite as an absolute path)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from overlord.cli import store_text
from overlord.config import DEFAULT_DATABASE_URL, Settings, mask_url_password
from tests.processes import overlord_env, serve_process, wait_until

OVERLORD = str(Path(sys.executable).parent / "overlord")


def _missing_database(
    backend: str, database_url: str, tmp_path: Path
) -> tuple[str, str]:
    """(URL of a database that does not exist, the driver's reason for it)."""
    if backend == "sqlite":
        # A directory that cannot be made: its parent is a file.
        (tmp_path / "plain-file").write_text("")
        return (
            f"sqlite:///{tmp_path}/plain-file/store.sqlite3",
            f"File exists: {tmp_path}/plain-file",
        )
    url = make_url(database_url).set(database="overlord_no_such_db")
    text = url.render_as_string(hide_password=False)
    if backend == "postgresql":
        return text, (
            f'connection failed: connection to server at "{url.host}", port '
            f'{url.port or 5432} failed: FATAL:  database "overlord_no_such_db" '
            "does not exist"
        )
    return text, "Unknown database 'overlord_no_such_db'"


@pytest.mark.parametrize(
    "args",
    [["serve"], ["worker"], ["db", "upgrade"], ["db", "current"], ["db", "check"]],
    ids=["serve", "worker", "db-upgrade", "db-current", "db-check"],
)
def test_command_missing_database_one_line_exit_1(
    backend: str, database_url: str, tmp_path: Path, args: list[str]
) -> None:
    url, reason = _missing_database(backend, database_url, tmp_path)

    result = subprocess.run(
        [OVERLORD, *args],
        env=overlord_env({"OVERLORD_DATABASE_URL": url}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f"Error: database_url {mask_url_password(url)}: cannot use the database: "
        f"{reason}\n",
    )


def _store_line(path: Path, command: str) -> str | None:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(f"overlord {command}: store "):
            return line
    return None


def test_serve_prints_store_sqlite_default_as_absolute_path(tmp_path: Path) -> None:
    # The default URL is relative (sqlite:///var/overlord.sqlite3): the line shows
    # the file serve actually opens, under its working directory.
    with serve_process(DEFAULT_DATABASE_URL, tmp_path, "--workers", "0") as process:
        process.wait_healthy(timeout=60)
        line = _store_line(tmp_path / "serve.stderr", "serve")

    assert line == f"overlord serve: store sqlite:///{tmp_path}/var/overlord.sqlite3"
    assert (tmp_path / "var" / "overlord.sqlite3").is_file()


def test_serve_and_worker_print_store_password_masked(
    database_url: str, tmp_path: Path
) -> None:
    expected = mask_url_password(database_url)
    if make_url(database_url).get_backend_name() == "sqlite":
        expected = f"sqlite:///{Path(make_url(database_url).database or '').resolve()}"
    with serve_process(database_url, tmp_path, "--workers", "0") as process:
        process.wait_healthy()
        assert _store_line(tmp_path / "serve.stderr", "serve") == (
            f"overlord serve: store {expected}"
        )

    log = tmp_path / "worker.stderr"
    with open(log, "wb") as stderr:
        worker = subprocess.Popen(
            [OVERLORD, "worker", "--capacity", "0"],
            env=overlord_env({"OVERLORD_DATABASE_URL": database_url}),
            cwd=tmp_path,
            stderr=stderr,
        )
    try:
        assert wait_until(lambda: _store_line(log, "worker") is not None, 30), (
            log.read_text()
        )
        assert _store_line(log, "worker") == f"overlord worker: store {expected}"
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)


def test_store_text_masks_password_and_resolves_sqlite() -> None:
    settings = Settings(database_url="mysql+pymysql://root:s3cret@db:3306/overlord")

    assert store_text(settings) == "mysql+pymysql://root:<masked>@db:3306/overlord"
    assert store_text(Settings(database_url="sqlite:///:memory:")) == (
        "sqlite:///:memory:"
    )
    relative = Settings(database_url="sqlite:///var/x.sqlite3")
    assert store_text(relative) == f"sqlite:///{Path.cwd()}/var/x.sqlite3"
