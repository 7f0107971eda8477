"""Engines, sessions and transactions, set up per dialect; deadlock and busy retries;
the one retry/backoff helper; wakers that tell a waiting worker another connection
committed.

Every transaction is explicit: ``Database.transaction()`` at the edge (a request, a
worker step), ``Database.run()`` when the whole step may be retried. Functions that
receive a ``Session`` never commit. Imports only ``config``, ``errors``, SQLAlchemy
and (lazily, for LISTEN) the psycopg driver.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import select
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from overlord.config import Settings
from overlord.dbgroup import GroupWriter
from overlord.errors import DatabaseBusy
from overlord.fileturn import FileTurn

log = logging.getLogger(__name__)
T = TypeVar("T")

# MariaDB: 1213 deadlock, 1205 lock wait timeout. PostgreSQL: serialization failure,
# deadlock, lock timeout. SQLite reports its busy timeout as "database is locked".
_MYSQL_RETRY_CODES = {1205, 1213}
_PG_RETRY_STATES = {"40001", "40P01", "55P03"}


def make_engine(settings: Settings, **engine_options: Any) -> Engine:
    """Create the engine for ``settings.database_url`` with each dialect's set-up."""
    url = make_url(settings.database_url)
    backend = url.get_backend_name()
    options: dict[str, Any] = {}
    if backend == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {
            "timeout": settings.db_busy_timeout.total_seconds(),
            "check_same_thread": False,
        }
    else:
        # A host that never answers fails after db_connect_timeout, not after the
        # OS's TCP timeout (about two minutes); a connect_timeout in the URL wins.
        if "connect_timeout" not in url.query:
            options["connect_args"] = {
                "connect_timeout": max(
                    2, int(settings.db_connect_timeout.total_seconds())
                )
            }
        options["pool_size"] = settings.db_pool_size
        options["max_overflow"] = settings.db_pool_size
        options["pool_recycle"] = int(settings.db_pool_recycle.total_seconds())
    if backend in ("mysql", "mariadb"):
        # REPEATABLE READ's gap locks deadlock concurrent claims and inserts.
        options["isolation_level"] = "READ COMMITTED"
        options["connect_args"] = {
            **options.get("connect_args", {}),
            "charset": "utf8mb4",
            "init_command": "SET time_zone = '+00:00'",
        }
    pymysql = backend in ("mysql", "mariadb") and url.get_driver_name() == "pymysql"
    if pymysql:
        options["pool_reset_on_return"] = None  # _rollback_open_transactions
    options.update(engine_options)
    engine = create_engine(url, **options)
    if backend == "sqlite":
        _setup_sqlite(engine, settings)
    else:
        _ping_idle_connections(engine)
    if pymysql and options["pool_reset_on_return"] is None:
        _rollback_open_transactions(engine)
    return engine


# MySQL's SERVER_STATUS_IN_TRANS flag, in the status of every OK/EOF packet.
_SERVER_STATUS_IN_TRANS = 1


def _rollback_open_transactions(engine: Engine) -> None:
    """The pool's reset on check-in, only where a transaction is open: pymysql
    sends ROLLBACK whenever asked, a round trip per request even after a COMMIT
    (psycopg and pysqlite skip it themselves). The server says in each reply's
    status whether a transaction is open, and pymysql keeps the last one.
    MariaDB round trips per POST /task: 4 → 3 (strace)."""

    @event.listens_for(engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, state: Any) -> None:
        if state.terminate_only:
            return
        status = getattr(dbapi_connection, "server_status", None)
        if status is None or status & _SERVER_STATUS_IN_TRANS:
            dbapi_connection.rollback()


# A connection back from the pool after this long idle is pinged before use.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    """Pre-ping pooled connections that sat idle (the server may have closed them),
    but not one that was in use a moment ago: SQLAlchemy's ``pool_pre_ping`` pings on
    every checkout, a round trip per request. A failed ping makes the pool replace
    the connection (SQLAlchemy's pessimistic-disconnect recipe)."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_SECONDS:
            return
        try:
            _ping(dbapi_connection)
        except Exception as error:
            raise DisconnectionError(str(error)) from error


def _ping(dbapi_connection: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("SELECT 1")
    cursor.fetchall()
    cursor.close()
    # End the transaction the ping opened: a connection handed out INTRANS
    # could not be switched to autocommit (Database.fetch_one).
    dbapi_connection.rollback()


def _setup_sqlite(engine: Engine, settings: Settings) -> None:
    busy_ms = int(settings.db_busy_timeout.total_seconds() * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN over from pysqlite (SQLAlchemy's documented recipe) so that
        # writers open with BEGIN IMMEDIATE and queue on the busy timeout instead
        # of failing at once when a deferred reader turns into a writer.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # A 200 means committed: FULL syncs the WAL on every commit.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("sqlite_immediate")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def database_now(session: Session) -> dt.datetime:
    """The database server's current time, aware UTC: the one clock for leases.

    Workers on other hosts may have skewed clocks, so lease times are computed from
    this. SQLite is embedded: its clock is this host's.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        value = session.execute(
            text("SELECT clock_timestamp() AT TIME ZONE 'UTC'")
        ).scalar_one()
    elif dialect in ("mysql", "mariadb"):
        value = session.execute(text("SELECT UTC_TIMESTAMP(6)")).scalar_one()
    else:
        return dt.datetime.now(dt.UTC)
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC)


def is_retryable(error: BaseException) -> bool:
    """True for lock waits, deadlocks and dropped connections worth one more try."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if not isinstance(error, OperationalError | DBAPIError):
        return False
    original = getattr(error, "orig", None)
    args = getattr(original, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_RETRY_CODES:
        return True
    if getattr(original, "sqlstate", None) in _PG_RETRY_STATES:
        return True
    message = str(original).lower()
    return "database is locked" in message or "database table is locked" in message


def _is_shared_error(error: BaseException) -> bool:
    """A failed batch's error that is the database's (busy after the retries,
    unreachable, connection lost), not one item's: the group writer gives it to
    every item instead of writing each again alone."""
    if isinstance(error, DatabaseBusy):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if not isinstance(error, OperationalError):
        return False
    code = (getattr(error.orig, "args", None) or (None,))[0]
    # pymysql makes every server error it does not map an OperationalError, one
    # row's bad data included: only its client errors (2000-2999: cannot
    # connect, server gone away) are the database's.
    return not isinstance(code, int) or 2000 <= code < 3000


def is_unavailable(error: BaseException) -> bool:
    """Any driver error, or a transaction that stayed busy: what a worker rides out
    by backing off, never by failing tasks."""
    return isinstance(error, DBAPIError | DatabaseBusy)


def retry(
    step: Callable[[], T],
    *,
    retryable: Callable[[BaseException], bool],
    delay: float,
    max_delay: float,
    jitter: float = 0.2,
    attempts: int | None = None,
    deadline: float | None = None,
    stop: threading.Event | None = None,
    what: str = "step",
) -> T:
    """Run ``step`` until it succeeds, waiting ``delay`` (doubled after each failure
    up to ``max_delay``, each wait scaled by a random factor in 1 ± ``jitter`` so that
    processes retrying together spread out) after an error ``retryable`` accepts.

    It gives up, re-raising the last error, after ``attempts`` attempts, when the
    next wait would end past ``deadline`` (a ``time.monotonic()`` value), or once
    ``stop`` is set (which also cuts a wait short). Other errors go through at once.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return step()
        except Exception as error:
            if not retryable(error):
                raise
            wait = delay * random.uniform(1 - jitter, 1 + jitter)
            if (
                (attempts is not None and attempt >= attempts)
                or (deadline is not None and time.monotonic() + wait > deadline)
                or (stop is not None and stop.is_set())
            ):
                raise
            log.warning(
                "%s failed (%s); attempt %d, retrying in %.2fs",
                what,
                error,
                attempt,
                wait,
            )
            if stop is not None:
                stop.wait(wait)
            else:
                time.sleep(wait)
            delay = min(delay * 2, max_delay)


class Waker(Protocol):
    """Waits until another connection commits (as far as the dialect can tell), a
    watched file descriptor is readable, or the timeout passes."""

    def wait(self, timeout: float, watched: Sequence[int] = ()) -> None: ...

    def close(self) -> None: ...


class _PollWaker:
    """No commit signal (MariaDB): the watched descriptors or the timeout."""

    def wait(self, timeout: float, watched: Sequence[int] = ()) -> None:
        with contextlib.suppress(OSError, ValueError):
            select.select(list(watched), [], [], timeout)

    def close(self) -> None:
        pass


class _NotifyWaker:
    """PostgreSQL: LISTEN on its own autocommit driver connection (a pooled one
    would be returned mid-LISTEN); a NOTIFY makes its socket readable. When the
    connection fails the waker polls and connects again on the next wait."""

    def __init__(self, url: str, channel: str) -> None:
        self.url = url
        self.channel = channel
        self.connection: Any = None

    def _connect(self) -> Any:
        import psycopg

        connection = psycopg.connect(
            make_url(self.url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False),
            autocommit=True,
        )
        connection.execute(f"LISTEN {self.channel}")
        return connection

    def wait(self, timeout: float, watched: Sequence[int] = ()) -> None:
        fds = list(watched)
        try:
            if self.connection is None:
                self.connection = self._connect()
            fds.append(self.connection.fileno())
        except Exception as error:
            log.warning("LISTEN connection failed (%s); polling", error)
            self.close()
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except (OSError, ValueError):
            self.close()
            return
        if self.connection is not None and self.connection.fileno() in ready:
            try:
                for _ in self.connection.notifies(timeout=0):
                    pass
            except Exception as error:
                log.warning("LISTEN connection lost (%s); polling", error)
                self.close()

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.close()
            self.connection = None


# How often the SQLite waker reads PRAGMA data_version.
SQLITE_CHANGE_POLL_SECONDS = 0.01


class _DataVersionWaker:
    """SQLite has no NOTIFY, but ``PRAGMA data_version`` changes whenever another
    connection commits: reading it every 10 ms on a connection of its own costs
    microseconds and starts a submitted task within tens of milliseconds instead
    of a poll interval."""

    def __init__(self, path: str, interrupt: threading.Event | None) -> None:
        self.path = path
        self.interrupt = interrupt or threading.Event()
        self.connection: sqlite3.Connection | None = None

    def wait(self, timeout: float, watched: Sequence[int] = ()) -> None:
        if self.connection is None:
            self.connection = sqlite3.connect(self.path, check_same_thread=False)
        deadline = time.monotonic() + timeout
        try:
            seen = self.connection.execute("PRAGMA data_version").fetchone()[0]
            while time.monotonic() < deadline:
                ready, _, _ = select.select(
                    list(watched), [], [], SQLITE_CHANGE_POLL_SECONDS
                )
                if ready:
                    return
                now = self.connection.execute("PRAGMA data_version").fetchone()[0]
                if now != seen:
                    return
        except sqlite3.Error:
            self.close()
            self.interrupt.wait(timeout)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _first_row(cursor: Any) -> Any:
    return cursor.fetchone()


def _all_rows(cursor: Any) -> Any:
    return cursor.fetchall()


class HeldConnection:
    """Driver reads (``fetch_one``/``fetch_all``, as ``Database``'s) and writes
    (PostgreSQL: one statement, ``execute_alone``; SQLite and MariaDB: a
    transaction, ``write``) on ONE connection of its own, kept between them, in
    autocommit: for a caller that never uses it from two threads at once
    (``overlord.dbread``'s coalescer and the submits' group commit, whose reads
    or batches run one at a time per process).

    The pool's checkout and check-in, and switching autocommit on and off
    around each read, cost more than a SQLite point read (5-6 µs of a 17 µs
    status read, in process); MariaDB's reads also lose their COMMIT round
    trip. The connection comes from an engine of its own (a pool of one), so
    it never takes one from the database's pool. A connection idle for
    ``PING_AFTER_IDLE_SECONDS`` is pinged before it is read from again, as the
    pool pings one; a read that fails drops the connection (the next read takes
    a new one), and ``Database.dispose`` closes it.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self.engine = make_engine(
            database.settings, poolclass=QueuePool, pool_size=1, max_overflow=0
        )
        self._connection: Any = None  # SQLAlchemy's pooled connection proxy
        self._used_at = 0.0

    def fetch_one(
        self, statement: ClauseElement, params: Mapping[str, Any]
    ) -> Sequence[Any] | None:
        sql, args = self.database.driver_sql(statement, params)
        row: Sequence[Any] | None = self._read(sql, args, _first_row)
        return row

    def fetch_all(self, sql: str, args: Any) -> list[Sequence[Any]]:
        rows: list[Sequence[Any]] = self._read(sql, args, _all_rows)
        return rows

    def execute_alone(
        self, statement: ClauseElement, params: Mapping[str, Any]
    ) -> list[Sequence[Any]]:
        """PostgreSQL: ONE prebuilt statement as its own transaction (autocommit,
        committed when this returns), its rows as the driver gives them, retried
        like ``Database.write``; the SQL is compiled once.

        For the group-committed submit (``store.tasks.submit_grouped``): the
        Core connection, its autocommit execution option and its result
        machinery cost about a fifth of a submit's CPU (cProfile, CPU clock,
        3000 noop POSTs in process), the pool's checkout and check-in another
        sixth of what was left."""
        assert self.database.dialect == "postgresql"
        sql, args = self.database.driver_sql(statement, params)
        rows: list[Sequence[Any]] = self._read(sql, args, _all_rows, what="transaction")
        return rows

    def write(self, step: Callable[[Any], T]) -> T:
        """SQLite and MariaDB: ``step(cursor)`` in one transaction on this
        connection, as ``Database.write`` does it (SQLite: BEGIN IMMEDIATE in
        this process's and the file's write turn), committed, rolled back on any
        error, retried like it."""
        database = self.database
        assert database.dialect != "postgresql"
        sqlite = database.dialect == "sqlite"

        def attempt() -> T:
            turn = database._sqlite_write_turn() if sqlite else contextlib.nullcontext()
            with turn:
                return self._once(
                    "BEGIN IMMEDIATE" if sqlite else "BEGIN",
                    (),
                    lambda _cursor: self._in_transaction(step),
                )

        return database._retrying(attempt, what="transaction")

    def _in_transaction(self, step: Callable[[Any], T]) -> T:
        """``step`` on the open transaction (BEGIN just ran), then COMMIT; any
        error rolls back (``_once`` then drops the connection)."""
        driver = self._connection.driver_connection
        cursor = driver.cursor()
        try:
            found = step(cursor)
            cursor.close()
            driver.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                driver.rollback()
            raise
        return found

    def _read(
        self, sql: str, args: Any, fetch: Callable[[Any], T], *, what: str = "read"
    ) -> T:
        return self.database._retrying(lambda: self._once(sql, args, fetch), what=what)

    def _once(self, sql: str, args: Any, fetch: Callable[[Any], T]) -> T:
        """``fetch(cursor)`` once ``sql`` ran; any error drops the connection."""
        database = self.database
        connection = self._connection
        if connection is None or self._idle():
            connection = self._take()
        cursor = None
        try:
            cursor = connection.cursor()
            cursor.execute(sql, args)
            found = fetch(cursor)
            cursor.close()
        except BaseException as error:
            wrapped = (
                database.driver_error(sql, args, error, connection, cursor)
                if isinstance(error, database.dbapi_error)
                else None
            )
            # Never back to the pool: it may be in autocommit, or broken.
            self._connection = None
            connection.invalidate(error)
            if wrapped is None:
                raise
            raise wrapped from error
        self._used_at = time.monotonic()
        return found

    def _idle(self) -> bool:
        return time.monotonic() - self._used_at >= PING_AFTER_IDLE_SECONDS

    def _take(self) -> Any:
        """The held connection, pinged when it sat idle; else a new one from the
        pool (which pings one that sat idle there), switched to autocommit."""
        connection = self._connection
        if connection is not None:
            if self.database.dialect == "sqlite":
                return connection  # embedded: nothing to lose while idle
            try:
                _ping(connection.driver_connection)
                return connection
            except self.database.dbapi_error as error:
                self._connection = None
                connection.invalidate(error)
        connection = self.engine.raw_connection()
        try:
            _autocommit(connection, self.database.dialect)
        except BaseException:
            connection.invalidate()
            raise
        self._connection = connection
        return connection

    def close(self) -> None:
        """Close the connection and its engine."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.invalidate()  # closes it: never back in the pool in autocommit
        self.engine.dispose()


def _autocommit(connection: Any, dialect: str) -> None:
    """Switch a pooled connection's driver connection to autocommit (SQLite's
    already is: ``_setup_sqlite`` took BEGIN over)."""
    driver = connection.driver_connection
    if dialect == "postgresql":
        driver.autocommit = True  # psycopg: local, no round trip
    elif dialect in ("mysql", "mariadb"):
        driver.autocommit(True)  # pymysql: SET autocommit, one round trip


class Database:
    """One engine and session factory per process; the transaction boundary helpers."""

    def __init__(self, settings: Settings, **engine_options: Any) -> None:
        self.settings = settings
        self.engine = make_engine(settings, **engine_options)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.dialect = self.engine.dialect.name
        # SQLite has one writer at a time. Threads of this process that want to
        # write queue here, woken the moment the writer before them commits,
        # instead of in SQLite's busy handler, which sleeps 1, 2, 5 … 100 ms
        # between tries. POST /task at 16 connections on serve's 2 HTTP processes
        # (4 alternating runs): p99 0.9 to 1.7 s → 0.5 to 1.1 s, and 170 to 250
        # → 230 to 320 rps. Other processes still meet the busy handler, one
        # writer each: that is the p99 left.
        self._sqlite_writer = threading.RLock()
        # ... and the writers of all processes on the file queue on its flock
        # (``fileturn``) instead of sleeping in the busy handler. POST /task p99
        # at 16 connections (group commit on, 3 alternating runs, load 8-10):
        # 276, 207, 468 ms → 46, 131, 42 ms; rps unchanged within the noise.
        self._file_turn: FileTurn | None = None
        if self.dialect == "sqlite":
            path = make_url(settings.database_url).database or ""
            if path and path != ":memory:" and not path.startswith("file:"):
                self._file_turn = FileTurn(path)
        self._compiled_statements: dict[ClauseElement, tuple[str, tuple[str, ...]]] = {}
        self._groups: dict[str, GroupWriter[Any, Any]] = {}
        self._groups_lock = threading.Lock()
        self._held_connections: list[HeldConnection] = []
        self.dbapi_error: type[Exception] = self.engine.dialect.loaded_dbapi.Error

    @contextlib.contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any exception.

        ``write=True`` opens SQLite transactions with BEGIN IMMEDIATE, one
        writing thread of this process at a time.
        """
        if write and self.dialect == "sqlite":
            with (
                self._sqlite_write_turn(),
                self.sessions() as session,
                session.begin(),
            ):
                session.connection(execution_options={"sqlite_immediate": True})
                yield session
            return
        with self.sessions() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def _sqlite_write_turn(self) -> Iterator[None]:
        """This process's turn to write to SQLite (see ``_sqlite_writer``)."""
        # Bounded like SQLite's own wait: a writer that waited the whole busy
        # timeout here goes on to BEGIN IMMEDIATE, whose busy handler then
        # decides, so a thread of this process holding a write transaction
        # open never blocks another forever.
        timeout = self.settings.db_busy_timeout.total_seconds()
        queued = self._sqlite_writer.acquire(timeout=timeout)
        try:
            if queued and self._file_turn is not None:
                with self._file_turn.turn(timeout):
                    yield
            else:
                yield
        finally:
            if queued:
                self._sqlite_writer.release()

    def write(
        self, step: Callable[[Connection], T], *, one_statement: bool = False
    ) -> T:
        """Run ``step`` on a pooled Core connection in one write transaction,
        retried like ``run``: no Session, whose bookkeeping costs more CPU than
        the statements of a short write.

        ``one_statement`` promises that on PostgreSQL ``step`` makes ONE statement:
        it then runs in autocommit mode, its own transaction, committed when it
        returns (psycopg sends BEGIN and COMMIT as round trips of their own).
        Elsewhere the step runs between BEGIN (IMMEDIATE on SQLite, one writing
        thread of this process at a time) and COMMIT, as ``transaction``.
        """
        autocommit = one_statement and self.dialect == "postgresql"

        def attempt() -> T:
            turn = (
                self._sqlite_write_turn()
                if self.dialect == "sqlite"
                else contextlib.nullcontext()
            )
            with turn, self.engine.connect() as connection:
                if autocommit:
                    connection = connection.execution_options(
                        isolation_level="AUTOCOMMIT"
                    )
                    return step(connection)
                if self.dialect == "sqlite":
                    connection = connection.execution_options(sqlite_immediate=True)
                with connection.begin():
                    return step(connection)

        return self._retrying(attempt, what="transaction")

    def batch_writer(
        self,
        group: str,
        make_run_batch: Callable[[], Callable[[Sequence[Any]], Sequence[Any]]],
    ) -> GroupWriter[Any, Any]:
        """The ``GroupWriter`` of ``group``, made on first use with the
        ``run_batch`` that ``make_run_batch()`` returns (which writes and commits
        a batch itself, retried or not)."""
        writer = self._groups.get(group)
        if writer is None:
            with self._groups_lock:
                writer = self._groups.get(group)
                if writer is None:
                    writer = GroupWriter(make_run_batch(), shared=_is_shared_error)
                    self._groups[group] = writer
        return writer

    def fetch_one(
        self, statement: ClauseElement, params: Mapping[str, Any]
    ) -> Sequence[Any] | None:
        """The first row of a prebuilt read-only ``statement`` as the driver returns
        it (no SQLAlchemy result processing: SQLite datetimes are text, booleans
        integers), through a pooled DB-API connection without a transaction,
        retried like ``read``; the SQL is compiled once per statement.

        For the hottest read (``GET /task/{id}/status``, Airflow's poll): the Core
        Connection, its execution options and result machinery cost more than
        the query. Per status read in one process (SQLite, 8 threads' worth of
        load beside it): Core 227 µs, this 40 µs.
        """
        sql, args = self.driver_sql(statement, params)
        row: Sequence[Any] | None = self._driver_execute(sql, args, _first_row)
        return row

    def driver_sql(
        self, statement: ClauseElement, params: Mapping[str, Any]
    ) -> tuple[str, Any]:
        """The driver's SQL of ``statement`` (compiled once) and its arguments."""
        sql, names = self._compiled(statement)
        return sql, tuple(params[name] for name in names) if names else params

    def fetch_all(self, sql: str, args: Any) -> list[Sequence[Any]]:
        """Every row of the read-only driver SQL ``sql`` with the driver's ``args``,
        read as ``fetch_one`` reads (the caller compiled both, once): short lists
        and coalesced status reads (``overlord.dbread``)."""
        rows: list[Sequence[Any]] = self._driver_execute(sql, args, _all_rows)
        return rows

    def held_connection(self) -> HeldConnection:
        """A new ``HeldConnection`` on this database, closed by ``dispose``."""
        held = HeldConnection(self)
        self._held_connections.append(held)
        return held

    def driver_error(
        self, sql: str, args: Any, error: Any, connection: Any, cursor: Any
    ) -> DBAPIError:
        """The SQLAlchemy error of a driver ``error`` raised by a driver
        statement, marked as a disconnect when it is one (``is_retryable`` retries those)."""
        invalidated = self.engine.dialect.is_disconnect(
            error, connection.dbapi_connection, cursor
        )
        wrapped = DBAPIError.instance(
            sql,
            args,
            error,
            self.dbapi_error,
            connection_invalidated=invalidated,
        )
        assert isinstance(wrapped, DBAPIError)  # a driver error always makes one
        return wrapped

    def _driver_execute(
        self, sql: str, args: Any, fetch: Callable[[Any], T], *, what: str = "read"
    ) -> T:
        dbapi_error = self.dbapi_error

        def attempt() -> T:
            connection = self.engine.raw_connection()
            driver: Any = connection.driver_connection
            cursor = None
            try:
                if self.dialect == "postgresql":
                    # Autocommit: no BEGIN before the SELECT, no ROLLBACK when the
                    # connection goes back to the pool (psycopg sets it locally).
                    driver.autocommit = True
                cursor = connection.cursor()
                cursor.execute(sql, args)
                found = fetch(cursor)
                cursor.close()
                if self.dialect == "postgresql":
                    driver.autocommit = False
                elif self.dialect != "sqlite":
                    connection.commit()  # MariaDB: end the implicit transaction
                return found
            except dbapi_error as error:
                wrapped = self.driver_error(sql, args, error, connection, cursor)
                if wrapped.connection_invalidated or self.dialect == "postgresql":
                    # A PostgreSQL connection may still be in autocommit: never
                    # hand it back to the pool (errors here are rare).
                    connection.invalidate(error)
                raise wrapped from error
            finally:
                connection.close()

        return self._retrying(attempt, what=what)

    def _compiled(self, statement: ClauseElement) -> tuple[str, tuple[str, ...]]:
        """The driver's SQL text of ``statement`` and, for a positional
        paramstyle, the order of its parameter names."""
        found = self._compiled_statements.get(statement)
        if found is None:
            compiled = cast(SQLCompiler, statement.compile(dialect=self.engine.dialect))
            names = tuple(compiled.positiontup or ()) if compiled.positional else ()
            found = (compiled.string, names)
            self._compiled_statements[statement] = found
        return found

    def run(self, step: Callable[[Session], T], *, write: bool = False) -> T:
        """Run ``step`` in its own transaction, re-running it on deadlock or busy.

        Raises:
            DatabaseBusy: every attempt hit a lock wait, deadlock or lost connection.
        """

        def attempt() -> T:
            with self.transaction(write=write) as session:
                return step(session)

        return self._retrying(attempt, what="transaction")

    def _retrying(self, attempt: Callable[[], T], *, what: str) -> T:
        try:
            return retry(
                attempt,
                retryable=is_retryable,
                delay=0.03,
                max_delay=0.5,
                jitter=0.67,  # 10-50 ms first, then doubling
                attempts=max(1, self.settings.db_retry_attempts),
                what=what,
            )
        except DBAPIError as error:
            if not is_retryable(error):
                raise
            raise DatabaseBusy(
                "The metadata store is busy; retry the request."
            ) from error

    def waker(self, *, channel: str, interrupt: threading.Event | None = None) -> Waker:
        """What a worker waits on between steps: NOTIFY on ``channel`` (PostgreSQL),
        ``PRAGMA data_version`` (SQLite), else only the timeout. ``interrupt``
        cuts the SQLite waker's fallback wait short when its connection fails."""
        if self.dialect == "postgresql":
            return _NotifyWaker(self.settings.database_url, channel)
        if self.dialect == "sqlite":
            path = make_url(self.settings.database_url).database or ":memory:"
            return _DataVersionWaker(path, interrupt)
        return _PollWaker()

    def supports_skip_locked(self) -> bool:
        """PostgreSQL, and MariaDB from 10.6, have ``FOR UPDATE SKIP LOCKED``."""
        if self.dialect == "postgresql":
            return True
        if self.dialect in ("mysql", "mariadb"):
            info = self.engine.dialect.server_version_info or ()
            return bool(getattr(self.engine.dialect, "is_mariadb", False)) and tuple(
                info[:2]
            ) >= (10, 6)
        return False

    def ping(self) -> None:
        with self.transaction() as session:
            session.execute(text("SELECT 1"))

    def dispose(self) -> None:
        for held in self._held_connections:
            held.close()
        self.engine.dispose()
        if self._file_turn is not None:
            self._file_turn.close()
