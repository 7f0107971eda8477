"""The Alembic migrations on every backend, through the ``overlord db`` commands as an
operator runs them: upgrade from an empty database, ``db check`` clean (and failing
on drift), exactly one head, and upgrade → downgrade base → upgrade."""

from __future__ import annotations

import subprocess

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

from overlord.cli import MIGRATIONS_DIR
from tests.databases import DatabaseFactory
from tests.processes import run_overlord


def _script() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config)


def _head() -> str:
    head = _script().get_current_head()
    assert head is not None
    return head


def _db(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return run_overlord("db", *args, "--database-url", url)


def _ok(*args: str, url: str) -> str:
    """Run ``overlord db ARGS``, require exit code 0, return its stdout."""
    result = _db(*args, url=url)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _tables(url: str) -> set[str]:
    engine: Engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture
def empty_url(database_factory: DatabaseFactory) -> str:
    return database_factory.empty()


@pytest.fixture(scope="module")
def upgraded_url(database_factory: DatabaseFactory) -> str:
    """One database upgraded from empty by ``overlord db upgrade``, shared by the
    tests that only read it."""
    url = database_factory.empty()
    _ok("upgrade", url=url)
    return url


def test_migration_scripts_history_has_exactly_one_head() -> None:
    assert len(_script().get_heads()) == 1


def test_db_current_empty_database_says_empty(empty_url: str) -> None:
    assert _ok("current", url=empty_url) == f"current: empty\nhead: {_head()}\n"


def test_db_upgrade_empty_database_reaches_head(upgraded_url: str) -> None:
    assert _ok("current", url=upgraded_url) == (
        f"current: {_head()}\nhead: {_head()}\n"
    )
    assert {"alembic_version", "tasks"} <= _tables(upgraded_url)


def test_db_check_upgraded_database_passes(upgraded_url: str) -> None:
    result = _db("check", url=upgraded_url)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_db_check_database_with_extra_table_fails(empty_url: str) -> None:
    _ok("upgrade", url=empty_url)
    engine = create_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE zz_drift (id INTEGER PRIMARY KEY)"))
    finally:
        engine.dispose()

    result = _db("check", url=empty_url)

    assert result.returncode == 1
    assert result.stderr.startswith("Error: New upgrade operations detected: ")
    assert "zz_drift" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param((), id="empty"),
        pytest.param((("upgrade",), ("downgrade", "-1")), id="behind-head"),
    ],
)
def test_db_check_database_not_at_head_fails_in_one_line(
    empty_url: str, steps: tuple[tuple[str, ...], ...]
) -> None:
    for step in steps:
        _ok(*step, url=empty_url)

    result = _db("check", url=empty_url)

    assert result.returncode == 1
    assert result.stderr == "Error: Target database is not up to date.\n"


def test_db_upgrade_unknown_revision_fails_in_one_line(empty_url: str) -> None:
    result = _db("upgrade", "nosuchrev", url=empty_url)

    assert result.returncode == 1
    assert result.stderr == "Error: Can't locate revision identified by 'nosuchrev'\n"


def test_db_upgrade_downgrade_base_upgrade_leaves_checked_schema(
    empty_url: str,
) -> None:
    _ok("upgrade", url=empty_url)
    migrated = _tables(empty_url)

    _ok("downgrade", "base", url=empty_url)

    assert _ok("current", url=empty_url) == f"current: empty\nhead: {_head()}\n"
    # Every table the migrations made is gone; Alembic keeps its own, empty.
    assert _tables(empty_url) == {"alembic_version"}

    _ok("upgrade", url=empty_url)

    assert _tables(empty_url) == migrated
    assert _ok("current", url=empty_url) == f"current: {_head()}\nhead: {_head()}\n"
    assert _db("check", url=empty_url).returncode == 0


def test_db_downgrade_each_revision_undoes_its_upgrade(empty_url: str) -> None:
    """The stairway: every step's downgrade undoes exactly its upgrade."""
    revisions = [script.revision for script in _script().walk_revisions()]
    revisions.reverse()  # base first
    previous_tables = _tables(empty_url)
    for revision in revisions:
        _ok("upgrade", revision, url=empty_url)
        upgraded = _tables(empty_url)
        _ok("downgrade", "-1", url=empty_url)
        assert _tables(empty_url) == previous_tables | {"alembic_version"}, revision
        _ok("upgrade", revision, url=empty_url)
        assert _tables(empty_url) == upgraded, revision
        previous_tables = upgraded
