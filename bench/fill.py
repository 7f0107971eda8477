"""Bulk-fill the ``tasks`` table with complete noop tasks, in one INSERT … SELECT
per call (a recursive CTE on SQLite, generate_series on PostgreSQL, the SEQUENCE
engine on MariaDB): a million rows in seconds, not in a million ORM flushes.

Rows look like what tests/factories.py ``make_complete_task`` writes: type noop,
datasource wiki, SUCCESS / runner NONE, inactive, duration 1234, location unknown,
priority 50, a small payload. ``created_at`` is spread evenly over the last
``spread`` (23 h by default), so every row stays inside the 24 h window that
``GET /tasks?state=complete`` lists without ``createdTimeInterval``.
"""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

COLUMNS = (
    "task_id, type, group_id, datasource, created_at, queue_inserted_at, status, "
    "runner_status, duration_ms, error_msg, location_host, location_port, "
    "location_tls_port, payload, priority, active, shutdown_requested_at, "
    "parent_task_id, request_headers, worker_id, lease_expires_at, started_at, "
    "finished_at"
)


_SQLITE = f"""
WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < :count)
INSERT INTO tasks ({COLUMNS})
SELECT {{values}} FROM (
  SELECT :first + i AS n,
         strftime('%Y-%m-%d %H:%M:%S', (:base_us + i * :step_us) / 1000000, 'unixepoch')
         || printf('.%06d', (:base_us + i * :step_us) % 1000000) AS c
  FROM seq
)
"""  # noqa: S608 - fixed text; every value is a bound parameter

_POSTGRESQL = f"""
INSERT INTO tasks ({COLUMNS})
SELECT {{values}} FROM (
  SELECT :first + i AS n,
         CAST(:base AS timestamp) + i * CAST(:step_us AS bigint) * interval '1 microsecond' AS c
  FROM generate_series(0, :count - 1) AS i
) AS s
"""  # noqa: S608 - fixed text; every value is a bound parameter

_MARIADB = f"""
INSERT INTO tasks ({COLUMNS})
SELECT {{values}} FROM (
  SELECT :first + seq AS n,
         TIMESTAMPADD(MICROSECOND, seq * :step_us, CAST(:base AS DATETIME(6))) AS c
  FROM seq_0_to_{{last}}
) AS s
"""  # noqa: S608 - fixed text; every value is a bound parameter


def _statement(dialect: str, count: int) -> str:
    if dialect == "sqlite":
        concat = "{} || CAST({} AS TEXT)"
        three = "{} || CAST({} AS TEXT) || {}"
        template, false = _SQLITE, "0"
    elif dialect == "postgresql":
        concat = "{} || CAST({} AS TEXT)"
        three = "{} || CAST({} AS TEXT) || {}"
        template, false = _POSTGRESQL, "false"
    else:
        concat = "CONCAT({}, {})"
        three = "CONCAT({}, {}, {})"
        template, false = _MARIADB, "0"
    task_id = concat.format("'bench_'", "n")
    payload = three.format(
        """'{"type":"noop","id":"bench_'""", "n", """'","dataSource":"wiki"}'"""
    )
    values = (
        f"{task_id}, 'noop', {task_id}, 'wiki', c, NULL, 'SUCCESS', 'NONE', 1234, "
        f"NULL, NULL, -1, -1, {payload}, 50, {false}, NULL, NULL, NULL, NULL, NULL, "
        "c, c"
    )
    return template.format(values=values, last=count - 1)


def fill_complete_tasks(
    database_url: str,
    first: int,
    count: int,
    *,
    now: dt.datetime | None = None,
    spread: dt.timedelta = dt.timedelta(hours=23),
) -> float:
    """Insert ``count`` complete tasks numbered from ``first`` (ids ``bench_<n>``);
    returns the seconds it took (statistics refreshed included)."""
    if count <= 0:
        return 0.0
    now = now or dt.datetime.now(dt.UTC)
    started = time.monotonic()
    step_us = int(spread.total_seconds() * 1_000_000) // count
    base = (now - spread).replace(tzinfo=None)
    base_us = int((now - spread).timestamp() * 1_000_000)
    engine = create_engine(make_url(database_url))
    dialect = engine.dialect.name
    try:
        with engine.begin() as connection:
            connection.execute(
                text(_statement(dialect, count)),
                {
                    "first": first,
                    "count": count,
                    "step_us": step_us,
                    "base_us": base_us,
                    "base": base.isoformat(sep=" "),
                },
            )
        with engine.connect() as connection:
            if dialect == "postgresql":
                # What autovacuum's analyze would do soon after such a load.
                connection.execute(text("ANALYZE tasks"))
            elif dialect != "sqlite":
                connection.execute(text("ANALYZE TABLE tasks"))
            connection.commit()
    finally:
        engine.dispose()
    return time.monotonic() - started
