"""Fresh databases for tests, on SQLite, PostgreSQL and MariaDB.

One mechanism everywhere: a schema migrated once per run with ``alembic upgrade
head`` (never ``create_all``), then a fresh database per test: an SQLite file copy,
a PostgreSQL ``CREATE DATABASE … TEMPLATE``, or on MariaDB (no template clone) a
pooled migrated database whose tables are truncated between tests.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

BACKENDS = ("sqlite", "postgresql", "mariadb")
PG_ADMIN_URL = os.environ.get(
    "OVERLORD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MARIADB_ADMIN_URL = os.environ.get(
    "OVERLORD_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/mysql"
)
PREFIX = "ovt"


def migrate(url: str) -> None:
    """``overlord db upgrade`` in a subprocess, exactly as an operator runs it."""
    subprocess.run(
        [sys.executable, "-m", "overlord", "db", "upgrade", "--database-url", url],
        check=True,
        capture_output=True,
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DatabaseFactory:
    """Hands out fresh, migrated databases of one backend."""

    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend = backend
        self.workdir = workdir
        self.counter = itertools.count()
        self.tag = f"{PREFIX}_{os.getpid()}"
        self.created: list[str] = []
        self.free: list[str] = []
        self.admin: Engine | None = None
        self.template: str = ""

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        if self.backend == "sqlite":
            self.template = str(self.workdir / "template.sqlite3")
            migrate(f"sqlite:///{self.template}")
            with sqlite3.connect(self.template) as connection:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return
        admin_url = PG_ADMIN_URL if self.backend == "postgresql" else MARIADB_ADMIN_URL
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self._drop_stale()
        if self.backend == "postgresql":
            self.template = f"{self.tag}_tpl"
            self._create(self.template)
            migrate(self.url(self.template))

    def stop(self) -> None:
        if self.admin is None:
            return
        for name in [*self.created, self.template]:
            if name:
                self._drop(name)
        self.admin.dispose()

    # -- per test ------------------------------------------------------------
    @contextmanager
    def fresh(self, tmp_path: Path) -> Iterator[str]:
        if self.backend == "sqlite":
            target = tmp_path / "overlord.sqlite3"
            shutil.copyfile(self.template, target)
            yield f"sqlite:///{target}"
            return
        if self.backend == "postgresql":
            name = f"{self.tag}_{next(self.counter)}"
            assert self.admin is not None
            with self.admin.connect() as connection:
                connection.execute(
                    text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
                )
            try:
                yield self.url(name)
            finally:
                self._drop(name)
            return
        name = self.free.pop() if self.free else self._new_mariadb()
        try:
            yield self.url(name)
        finally:
            self._reset_mariadb(name)
            self.free.append(name)

    def empty(self) -> str:
        """A new database with no tables at all (migration tests)."""
        if self.backend == "sqlite":
            path = self.workdir / f"empty_{next(self.counter)}.sqlite3"
            return f"sqlite:///{path}"
        name = f"{self.tag}_e{next(self.counter)}"
        self._create(name)
        self.created.append(name)
        return self.url(name)

    # -- helpers -------------------------------------------------------------
    def url(self, name: str) -> str:
        base = PG_ADMIN_URL if self.backend == "postgresql" else MARIADB_ADMIN_URL
        return base.rsplit("/", 1)[0] + "/" + name

    def _create(self, name: str) -> None:
        assert self.admin is not None
        with self.admin.connect() as connection:
            if self.backend == "postgresql":
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            else:
                connection.execute(
                    text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
                )

    def _drop(self, name: str) -> None:
        assert self.admin is not None
        with self.admin.connect() as connection:
            if self.backend == "postgresql":
                connection.execute(
                    text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                )
            else:
                connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))

    def _drop_stale(self) -> None:
        """Drop databases left by earlier runs whose process is gone."""
        assert self.admin is not None
        with self.admin.connect() as connection:
            if self.backend == "postgresql":
                names = connection.execute(
                    text("SELECT datname FROM pg_database WHERE datname LIKE 'ovt\\_%'")
                ).scalars()
            else:
                names = connection.execute(
                    text("SHOW DATABASES LIKE 'ovt\\_%'")
                ).scalars()
            stale = []
            for name in names:
                match = re.match(rf"{PREFIX}_(\d+)_", name)
                if match and not _pid_alive(int(match.group(1))):
                    stale.append(name)
        for name in stale:
            self._drop(name)

    def _new_mariadb(self) -> str:
        name = f"{self.tag}_{next(self.counter)}"
        self._create(name)
        self.created.append(name)
        migrate(self.url(name))
        return name

    def _reset_mariadb(self, name: str) -> None:
        engine = create_engine(self.url(name))
        try:
            with engine.begin() as connection:
                tables = (
                    connection.execute(
                        text(
                            "SELECT table_name FROM information_schema.tables "
                            "WHERE table_schema = :schema AND table_name NOT IN ('alembic_version', 'cluster')"
                        ),
                        {"schema": name},
                    )
                    .scalars()
                    .all()
                )
                connection.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
                for table in tables:
                    # TRUNCATE also resets AUTO_INCREMENT, as a fresh database would.
                    connection.execute(text(f"TRUNCATE TABLE `{table}`"))
                connection.execute(text("SET FOREIGN_KEY_CHECKS = 1"))
        finally:
            engine.dispose()
