"""Fixtures: the backend under test, a fresh migrated database per test, the app."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from overlord.app import create_app
from overlord.config import Settings
from overlord.db import Database
from tests.databases import BACKENDS, DatabaseFactory


def pytest_configure(config: pytest.Config) -> None:
    # scripts/pytest-all.sh runs the three backends as background jobs of a
    # non-interactive shell, which start with SIGINT ignored (POSIX), and an ignored
    # signal stays ignored across exec: every `overlord serve` the tests start would
    # ignore the Ctrl-C the interrupt tests send. Take Python's own handler back, so
    # children start with SIGINT at its default, as from a terminal.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=BACKENDS,
        default=os.environ.get("OVERLORD_TEST_BACKEND", "sqlite"),
        help="database backend for every test (make test runs all three)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"overlord backend: {config.getoption('--backend')}"


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--backend"))


@pytest.fixture(scope="session")
def database_factory(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(backend, tmp_path_factory.mktemp("databases"))
    factory.start()
    try:
        yield factory
    finally:
        factory.stop()


@pytest.fixture
def database_url(database_factory: DatabaseFactory, tmp_path: Path) -> Iterator[str]:
    with database_factory.fresh(tmp_path) as url:
        yield url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        db_pool_size=2,
        deep_storage_dir=str(tmp_path / "segments"),
    )


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings)
    yield database
    database.dispose()


@pytest.fixture
def app(settings: Settings, db: Database) -> Flask:
    application = create_app(settings, database=db)
    application.testing = True
    return application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
