"""Alembic environment: the URL comes from overlord's settings, never from a file here.

SQLite runs in batch mode; PostgreSQL takes an advisory lock (two servers upgrading at
once run one after the other) and bounded lock/statement timeouts; MariaDB's server
defaults are not compared (false drift there).
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import text

from overlord.config import load_settings
from overlord.db import make_engine
from overlord.store.models import Base

config = context.config
target_metadata = Base.metadata
# 0x6f766c64 = "ovld": one advisory lock id for every overlord migration run.
_PG_MIGRATION_LOCK = 0x6F766C64


def _database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option(
        "sqlalchemy.url"
    )
    return url or load_settings(os.environ).database_url


def run_migrations_offline() -> None:
    url = _database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    settings = load_settings(os.environ, database_url=_database_url())
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            _run_with(connection)
    finally:
        engine.dispose()


def _run_with(connection: object) -> None:
    dialect = connection.dialect.name  # type: ignore[attr-defined]
    if dialect == "postgresql":
        connection.execute(text("SET lock_timeout = '10s'"))  # type: ignore[attr-defined]
        connection.execute(text("SET statement_timeout = '300s'"))  # type: ignore[attr-defined]
        connection.execute(  # type: ignore[attr-defined]
            text("SELECT pg_advisory_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
        )
        connection.commit()  # type: ignore[attr-defined]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=dialect == "sqlite",
        transaction_per_migration=True,
        compare_type=True,
        compare_server_default=dialect not in ("mysql", "mariadb"),
    )
    try:
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if dialect == "postgresql":
            connection.execute(  # type: ignore[attr-defined]
                text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
            connection.commit()  # type: ignore[attr-defined]


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
