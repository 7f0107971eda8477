"""SQL for the ``tasks`` table: inserts, point reads, streamed lists and the
compare-and-set state changes. Functions take a session and never commit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    Connection,
    Row,
    bindparam,
    false,
    func,
    insert,
    select,
    text,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Compiled, Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from overlord import dbread
from overlord.db import Database, HeldConnection
from overlord.dbgroup import MAX_BATCH
from overlord.errors import TaskAlreadyExists
from overlord.states import RunnerState, TaskState
from overlord.store.execution import NOTIFY_CHANNEL
from overlord.store.models import AuditEntry, Task
from overlord.store.types import UTCDateTime

# Rows read by status and list endpoints: never the payload (Druid PR #12404: reading
# payloads for lists is what made Overlords run out of memory).
SUMMARY_COLUMNS = (
    Task.id,
    Task.task_id,
    Task.group_id,
    Task.type,
    Task.created_at,
    Task.queue_inserted_at,
    Task.status,
    Task.runner_status,
    Task.duration_ms,
    Task.location_host,
    Task.location_port,
    Task.location_tls_port,
    Task.datasource,
    Task.error_msg,
    Task.active,
)
LIST_BATCH = 500


class TaskSummary(NamedTuple):
    """One row of ``SUMMARY_COLUMNS`` with the values SQLAlchemy's result
    processing would give (aware UTC datetimes, the state enums, a bool), built
    from what the driver returns."""

    id: int
    task_id: str
    group_id: str | None
    type: str
    created_at: dt.datetime
    queue_inserted_at: dt.datetime | None
    status: TaskState
    runner_status: RunnerState
    duration_ms: int
    location_host: str | None
    location_port: int
    location_tls_port: int
    datasource: str
    error_msg: str | None
    active: bool


def _driver_datetime(value: Any) -> dt.datetime | None:
    """A UTCDateTime column as the driver returns it (SQLite: SQLAlchemy's
    ``YYYY-MM-DD HH:MM:SS.ffffff`` text; the others: a naive datetime)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return cast(dt.datetime, value).replace(tzinfo=dt.UTC)


# A status poll reads the same row again and again until the task changes: the
# row (a tuple of the driver's values) is the key, so a changed row is a miss,
# never a stale answer. 2.7 → 0.4 µs per status read (SQLite, in process).
@functools.lru_cache(maxsize=4096)
def summary_from_driver(row: Sequence[Any]) -> TaskSummary:
    created_at = _driver_datetime(row[4])
    assert created_at is not None
    return TaskSummary(
        row[0],
        row[1],
        row[2],
        row[3],
        created_at,
        _driver_datetime(row[5]),
        TaskState(row[6]),
        RunnerState(row[7]),
        row[8],
        row[9],
        row[10],
        row[11],
        row[12],
        row[13],
        bool(row[14]),
    )


@dataclass(frozen=True)
class NewTask:
    """Everything the store needs to insert a submitted task."""

    task_id: str
    type: str
    group_id: str
    datasource: str
    created_at: dt.datetime
    payload: str
    priority: int
    parent_task_id: str | None
    request_headers: str | None
    runner_status: RunnerState = RunnerState.WAITING


@dataclass(frozen=True)
class NewAuditEntry:
    """The audit row written with a submitted task (``store.audit``'s columns)."""

    key: str
    kind: str
    payload: str
    author: str | None
    comment: str | None
    identity: str | None
    ip: str | None


def insert_task(
    session: Session | Connection,
    new: NewTask,
    audit: NewAuditEntry | None = None,
    *,
    notify: bool = False,
) -> int:
    """Insert an active task and return its numeric surrogate key; with ``audit``,
    its audit row too, and with ``notify`` wake the workers (PostgreSQL's NOTIFY,
    delivered at commit; workers elsewhere poll).

    On PostgreSQL all of it is ONE statement, so a caller may run it in
    autocommit mode (``Database.write(..., one_statement=True)``): the statement
    is its own transaction, committed when it returns.

    Raises:
        TaskAlreadyExists: a task with that id is already stored (the unique key
            decides, so concurrent submits of one id store exactly one row; no
            audit row is written then).
    """
    connection = session if isinstance(session, Connection) else session.connection()
    values = _task_values(new)
    dialect = connection.dialect.name
    if dialect == "postgresql":
        # INSERT … ON CONFLICT DO NOTHING RETURNING, the audit INSERT … SELECT
        # from its returned row and pg_notify in one statement: one round trip
        # where BEGIN, INSERT, SELECT pg_notify, INSERT audit and COMMIT took five
        # (see _insert_task_statement for the figures).
        if audit is not None:
            values.update(_audit_values(audit, new.created_at))
        statement = _INSERT_TASK_PG[audit is not None, notify]
        surrogate = connection.execute(statement, values).scalar_one_or_none()
        if surrogate is None:
            raise TaskAlreadyExists(new.task_id)
        return int(surrogate)
    if dialect == "sqlite":
        # INSERT … ON CONFLICT DO NOTHING RETURNING: no row back means the id is
        # taken, and the transaction stays usable without a savepoint. Two
        # statements fewer per submit (SAVEPOINT, RELEASE): CPU per submit in
        # process, SQLite 1.72 → 1.48 ms, PostgreSQL 2.61 → 2.26 ms.
        found = connection.execute(_INSERT_TASK_IF_ABSENT, values)
        surrogate = found.scalar_one_or_none()
        if surrogate is None:
            raise TaskAlreadyExists(new.task_id)
    else:
        # MariaDB has no ON CONFLICT (INSERT IGNORE would also hide bad data). A
        # duplicate key rolls back only the failed statement in InnoDB, so the
        # transaction stays usable without a savepoint (two round trips fewer).
        try:
            surrogate = connection.execute(_INSERT_TASK, values).scalar_one()
        except IntegrityError as error:
            raise TaskAlreadyExists(new.task_id) from error
    if audit is not None:
        connection.execute(_INSERT_AUDIT, _audit_values(audit, new.created_at))
    return int(surrogate)


Submitted = tuple[NewTask, NewAuditEntry | None]


def submit_grouped(database: Database, item: Submitted) -> int:
    """Insert one submitted task (and its audit row, and wake the workers)
    through the process's group commit (``Database.batch_writer``): concurrent
    submits share one transaction, ``submit_batches``. Returns its surrogate key
    once that transaction has committed.

    PostgreSQL: the batch's one statement straight on the driver, on a
    connection the group commit keeps (``HeldConnection.execute_alone``): CPU
    per submit (3000 noop POSTs in process, one thread, 4 alternating runs)
    535-635 → 411-544 µs with a pooled connection per batch; then, pooled →
    held, 373-399 → 288-376 µs.

    Raises:
        TaskAlreadyExists: the id is taken (nothing of this task is written).
    """
    writer = database.batch_writer("submit", lambda: submit_batches(database))
    return int(writer.submit(item))


def submit_batches(
    database: Database,
) -> Callable[[Sequence[Submitted]], list[int | TaskAlreadyExists]]:
    """The batch step of ``submit_grouped`` for the database's dialect: each
    item's surrogate key, or ``TaskAlreadyExists`` for an item whose id is taken
    (by a stored task or by an earlier item of the batch; nothing of it is
    written); it raises only when the batch as a whole failed."""
    if database.dialect == "postgresql":
        return _pg_batches(database)
    if database.dialect == "sqlite":
        return _sqlite_batches(database)
    return _mariadb_batches(database)


def _pg_batches(
    database: Database,
) -> Callable[[Sequence[Submitted]], list[int | TaskAlreadyExists]]:
    """The PostgreSQL submit batch: its one statement on a connection the group
    commit keeps (its batches run one at a time)."""
    held = database.held_connection()

    def insert_unique(unique: Sequence[Submitted]) -> dict[str, int]:
        rows = held.execute_alone(_INSERT_TASKS_PG_NOTIFY, {"batch": _pg_batch(unique)})
        return {row[1]: int(row[0]) for row in rows}

    return lambda items: _each_outcome(items, insert_unique)


def _sqlite_batches(
    database: Database,
) -> Callable[[Sequence[Submitted]], list[int | TaskAlreadyExists]]:
    """The SQLite submit batch: two statements (tasks, then the audit rows of
    those that went in), each taking the batch as one JSON text, in one
    transaction on a connection the group commit keeps (its batches run one at
    a time). Instead of the Core connection and SQLAlchemy's multi-row INSERT:
    CPU per submit (3000 noop POSTs in process, one thread, 3 alternating runs)
    614-684 → 483-506 µs; the stored rows are the same, types included."""
    held = database.held_connection()

    def write(cursor: Any, unique: Sequence[Submitted]) -> dict[str, int]:
        cursor.execute(_INSERT_TASKS_SQLITE, (_sqlite_tasks(unique),))
        found = {task_id: int(key) for key, task_id in cursor.fetchall()}
        audits = _sqlite_audits(unique, found)
        if audits is not None:
            cursor.execute(_INSERT_AUDITS_SQLITE, (audits,))
        return found

    def insert_unique(unique: Sequence[Submitted]) -> dict[str, int]:
        return held.write(lambda cursor: write(cursor, unique))

    return lambda items: _each_outcome(items, insert_unique)


def _mariadb_batches(
    database: Database,
) -> Callable[[Sequence[Submitted]], list[int | TaskAlreadyExists]]:
    """The MariaDB submit batch on a connection the group commit keeps: one
    multi-row INSERT … RETURNING of the tasks (a taken id fails that statement
    alone, as InnoDB rolls back only the statement, and then the batch goes in
    row by row to find which), then the audit rows of those that went in, in
    one transaction. Instead of the Core connection: CPU per submit (3000 noop
    POSTs in process, one thread, 3 alternating runs) 565-582 → 449-489 µs."""
    held = database.held_connection()
    taken = held.engine.dialect.loaded_dbapi.IntegrityError

    def insert(cursor: Any, rows: Sequence[Sequence[Any]]) -> dict[str, int]:
        cursor.execute(_insert_tasks_mariadb_sql(len(rows)), list(chain(*rows)))
        return {task_id: int(key) for key, task_id in cursor.fetchall()}

    def write(cursor: Any, unique: Sequence[Submitted]) -> dict[str, int]:
        rows = [_task_row(new, _naive_utc(new.created_at)) for new, _ in unique]
        try:
            found = insert(cursor, rows)
        except taken:
            found = {}
            for row in rows:
                with contextlib.suppress(taken):
                    found.update(insert(cursor, [row]))
        audits = [
            _audit_row(audit, _naive_utc(new.created_at))
            for new, audit in _audited(unique, found)
        ]
        if audits:
            cursor.executemany(_INSERT_AUDIT_MARIADB, audits)
        return found

    def insert_unique(unique: Sequence[Submitted]) -> dict[str, int]:
        return held.write(lambda cursor: write(cursor, unique))

    return lambda items: _each_outcome(items, insert_unique)


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _task_row(new: NewTask, created_at: Any) -> tuple[Any, ...]:
    """A task's values for the SQLite and MariaDB batch statements, in their
    column order, with ``created_at`` as the dialect's driver stores it."""
    return (
        new.task_id,
        new.type,
        new.group_id,
        new.datasource,
        created_at,
        new.runner_status.value,
        new.payload,
        new.priority,
        new.parent_task_id,
        new.request_headers,
    )


def _audit_row(audit: NewAuditEntry, created_at: Any) -> tuple[Any, ...]:
    """An audit row's values for the SQLite and MariaDB batch statements."""
    return (
        audit.key,
        audit.kind,
        audit.author,
        (audit.comment or "")[:2048] or None,
        audit.identity,
        audit.ip,
        created_at,
        audit.payload,
    )


@functools.lru_cache(maxsize=MAX_BATCH)
def _insert_tasks_mariadb_sql(count: int) -> str:
    """MariaDB's multi-row INSERT of ``count`` tasks (pymysql's %s style)."""
    values = (
        f"(%s, %s, %s, %s, %s, '{TaskState.RUNNING.value}', %s, -1, -1, -1, %s, %s, "
        "1, %s, %s)"
    )
    return (
        f"INSERT INTO tasks ({_BATCH_TASK_COLUMNS}) VALUES "  # noqa: S608
        + ", ".join([values] * count)
        + " RETURNING id, task_id"
    )


def _sqlite_time(value: dt.datetime) -> str:
    """A UTCDateTime as SQLite stores it (SQLAlchemy's fixed-width text,
    ``%04d-%02d-%02d %02d:%02d:%02d.%06d``)."""
    return _naive_utc(value).isoformat(" ", "microseconds")


def _sqlite_tasks(items: Sequence[Submitted]) -> str:
    rows = [_task_row(new, _sqlite_time(new.created_at)) for new, _ in items]
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"))


def _sqlite_audits(items: Sequence[Submitted], found: dict[str, int]) -> str | None:
    rows = [
        _audit_row(audit, _sqlite_time(new.created_at))
        for new, audit in _audited(items, found)
    ]
    if not rows:
        return None
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"))


def _audited(
    items: Sequence[Submitted], found: dict[str, int]
) -> Iterator[tuple[NewTask, NewAuditEntry]]:
    """The items that went in (``found``) and carry an audit row."""
    for new, audit in items:
        if audit is not None and new.task_id in found:
            yield new, audit


def _each_outcome(
    items: Sequence[Submitted],
    insert_unique: Callable[[Sequence[Submitted]], dict[str, int]],
) -> list[int | TaskAlreadyExists]:
    """Each item's surrogate key, or ``TaskAlreadyExists`` for an id taken by a
    stored task (``insert_unique`` found no key for it) or by an earlier item of
    the batch (never given to ``insert_unique``)."""
    outcomes: list[int | TaskAlreadyExists | None] = [None] * len(items)
    first: dict[str, int] = {}
    for index, (new, _audit) in enumerate(items):
        if new.task_id in first:
            outcomes[index] = TaskAlreadyExists(new.task_id)
        else:
            first[new.task_id] = index
    found = insert_unique([items[index] for index in first.values()])
    for task_id, index in first.items():
        key = found.get(task_id)
        outcomes[index] = TaskAlreadyExists(task_id) if key is None else key
    return cast(list[int | TaskAlreadyExists], outcomes)


def _pg_batch(items: Sequence[Submitted]) -> str:
    """The one JSON parameter of ``_INSERT_TASKS_PG_NOTIFY``: each item's task and audit
    values, as json_to_recordset reads them."""
    rows: list[dict[str, Any]] = []
    for new, audit in items:
        row = {
            "task_id": new.task_id,
            "type": new.type,
            "group_id": new.group_id,
            "datasource": new.datasource,
            "created_at": new.created_at.astimezone(dt.UTC)
            .replace(tzinfo=None)
            .isoformat(sep=" "),
            "runner_status": new.runner_status.value,
            "payload": new.payload,
            "priority": new.priority,
            "parent_task_id": new.parent_task_id,
            "request_headers": new.request_headers,
            "has_audit": audit is not None,
        }
        if audit is not None:
            values = _audit_values(audit, new.created_at)
            for key in _PG_AUDIT_KEYS:
                row[key] = values[key]
        rows.append(row)
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"))


def _task_values(new: NewTask) -> dict[str, Any]:
    return {
        "task_id": new.task_id,
        "type": new.type,
        "group_id": new.group_id,
        "datasource": new.datasource,
        "created_at": new.created_at,
        "queue_inserted_at": None,
        "status": TaskState.RUNNING,
        "runner_status": new.runner_status,
        "duration_ms": -1,
        "error_msg": None,
        "location_host": None,
        "location_port": -1,
        "location_tls_port": -1,
        "payload": new.payload,
        "priority": new.priority,
        "active": True,
        "parent_task_id": new.parent_task_id,
        "request_headers": new.request_headers,
    }


def _audit_values(audit: NewAuditEntry, now: dt.datetime) -> dict[str, Any]:
    return {
        "audit_key": audit.key,
        "audit_type": audit.kind,
        "author": audit.author,
        "comment": (audit.comment or "")[:2048] or None,
        "identity": audit.identity,
        "ip": audit.ip,
        "created_date": now,
        "audit_payload": audit.payload,
    }


def get_task(
    session: Session, task_id: str, *, for_update: bool = False
) -> Task | None:
    """The whole task row (payload included), or None. ``for_update`` locks it
    until the transaction ends, so the task cannot end meanwhile (a no-op on
    SQLite, whose writers are serial)."""
    statement = select(Task).where(Task.task_id == task_id)
    if for_update:
        statement = statement.with_for_update()
    return session.scalars(statement).one_or_none()


# Point reads are the hot path of every status poll: their statements are built
# once (SQLAlchemy then reuses the compiled form) and run through the session's
# connection without the ORM's per-statement machinery.
_SUMMARY_BY_ID = select(*SUMMARY_COLUMNS).where(Task.task_id == bindparam("task_id"))
_EXISTS_BY_ID = select(Task.id).where(Task.task_id == bindparam("task_id"))
_INSERT_TASK = insert(Task).returning(Task.id)
_INSERT_TASK_IF_ABSENT = (
    sqlite.insert(Task)
    .on_conflict_do_nothing(index_elements=[Task.task_id])
    .returning(Task.id)
)
_AUDIT_COLUMNS = (
    ("audit_key", "audit_key"),
    ("type", "audit_type"),
    ("author", "author"),
    ("comment", "comment"),
    ("identity", "identity"),
    ("ip", "ip"),
    ("created_date", "created_date"),
    ("payload", "audit_payload"),
)
# The columns every batch submit statement writes, in this order (the rest start
# NULL): a task's, with status/duration/ports/active as constants, and an audit row's.
_BATCH_TASK_COLUMNS = (
    "task_id, type, group_id, datasource, created_at, status, runner_status, "
    "duration_ms, location_port, location_tls_port, payload, priority, active, "
    "parent_task_id, request_headers"
)
_BATCH_AUDIT_COLUMNS = ", ".join(column for column, _ in _AUDIT_COLUMNS)
_INSERT_AUDIT = insert(AuditEntry).values(
    {
        column: bindparam(key, type_=AuditEntry.__table__.c[column].type)
        for column, key in _AUDIT_COLUMNS
    }
)


# What a submit sets; the other columns start NULL.
_TASK_COLUMNS = (
    "task_id",
    "type",
    "group_id",
    "datasource",
    "created_at",
    "queue_inserted_at",
    "status",
    "runner_status",
    "duration_ms",
    "error_msg",
    "location_host",
    "location_port",
    "location_tls_port",
    "payload",
    "priority",
    "active",
    "parent_task_id",
    "request_headers",
)


def _insert_task_statement(*, audit: bool, notify: bool) -> Any:
    """PostgreSQL's submit in one statement::

        WITH inserted AS (INSERT INTO tasks … ON CONFLICT (task_id) DO NOTHING
                          RETURNING id),
             audited AS (INSERT INTO audit_log (…) SELECT :audit_key, … FROM inserted)
        SELECT inserted.id, pg_notify('overlord_tasks', '') FROM inserted

    A data-modifying CTE always runs, but only once the task row went in does
    ``inserted`` hold a row: a taken id writes no audit row and sends no NOTIFY.
    Five round trips → one per submit; CPU per POST /task in process (Flask
    test client, one thread, 3 runs of 1000 submits, interleaved runs on a loaded
    2-core machine): 4.2-5.1 → 2.2-2.8 ms.
    """
    table: Any = Task.__table__
    inserted = (
        postgresql.insert(Task)
        .values(
            {name: bindparam(name, type_=table.c[name].type) for name in _TASK_COLUMNS}
        )
        .on_conflict_do_nothing(index_elements=[Task.task_id])
        .returning(Task.id)
        .cte("inserted")
    )
    columns: list[Any] = [inserted.c.id]
    if notify:
        columns.append(func.pg_notify(NOTIFY_CHANNEL, ""))
    statement = select(*columns).select_from(inserted)
    if audit:
        audit_table: Any = AuditEntry.__table__
        audited = (
            insert(AuditEntry)
            .from_select(
                [column for column, _ in _AUDIT_COLUMNS],
                select(
                    *(
                        bindparam(key, type_=audit_table.c[column].type)
                        for column, key in _AUDIT_COLUMNS
                    )
                ).select_from(inserted),
            )
            .cte("audited")
        )
        statement = statement.add_cte(audited)
    return statement


_INSERT_TASK_PG = {
    (audit, notify): _insert_task_statement(audit=audit, notify=notify)
    for audit in (False, True)
    for notify in (False, True)
}


# PostgreSQL's batch: one JSON array of row objects, read by json_to_recordset.
_PG_BATCH_COLUMNS = (
    ("task_id", "TEXT"),
    ("type", "TEXT"),
    ("group_id", "TEXT"),
    ("datasource", "TEXT"),
    ("created_at", "TIMESTAMP"),
    ("runner_status", "TEXT"),
    ("payload", "TEXT"),
    ("priority", "INTEGER"),
    ("parent_task_id", "TEXT"),
    ("request_headers", "TEXT"),
    ("has_audit", "BOOLEAN"),
    ("audit_key", "TEXT"),
    ("audit_type", "TEXT"),
    ("author", "TEXT"),
    ("comment", "TEXT"),
    ("identity", "TEXT"),
    ("ip", "TEXT"),
    ("audit_payload", "TEXT"),
)
_PG_AUDIT_KEYS = tuple(key for _, key in _AUDIT_COLUMNS if key != "created_date")


def _insert_tasks_pg_statement() -> Any:
    """PostgreSQL's batch submit in one statement, whatever the batch size (one
    JSON parameter)::

        WITH batch AS (SELECT * FROM json_to_recordset(:batch) AS b(task_id TEXT, …)),
             inserted AS (INSERT INTO tasks … SELECT … FROM batch
                          ON CONFLICT (task_id) DO NOTHING RETURNING id, task_id),
             audited AS (INSERT INTO audit_log … SELECT … FROM batch JOIN inserted …)
        SELECT inserted.id, inserted.task_id, pg_notify(…) FROM inserted

    As ``_insert_task_statement``: a taken id writes no audit row; PostgreSQL
    folds the identical NOTIFYs of a transaction into one. One JSON text rather
    than an array per column: psycopg inspects every element of every array it
    dumps; CPU per POST /task in process (Flask test client, one thread, 1000
    submits, 3 alternating runs, load 7.5): 2.23, 2.47, 2.35 → 1.71, 2.06, 1.92
    ms.
    """
    names = ", ".join(f"{name} {kind}" for name, kind in _PG_BATCH_COLUMNS)
    audit_values = ", ".join(
        "b.created_at" if key == "created_date" else f"b.{key}"
        for _, key in _AUDIT_COLUMNS
    )
    # Built from this module's constants only.
    return text(
        "WITH batch AS (SELECT * FROM json_to_recordset(CAST(:batch AS JSON)) "  # noqa: S608
        f"AS b({names})), "
        f"inserted AS (INSERT INTO tasks ({_BATCH_TASK_COLUMNS}) "
        "SELECT task_id, type, group_id, datasource, created_at, "
        f"'{TaskState.RUNNING.value}', runner_status, -1, -1, -1, payload, priority, "
        "true, parent_task_id, request_headers FROM batch "
        "ON CONFLICT (task_id) DO NOTHING RETURNING id, task_id), "
        f"audited AS (INSERT INTO audit_log ({_BATCH_AUDIT_COLUMNS}) "
        f"SELECT {audit_values} FROM batch b JOIN inserted i "
        "ON i.task_id = b.task_id WHERE b.has_audit) "
        f"SELECT id, task_id, pg_notify('{NOTIFY_CHANNEL}', '') FROM inserted"
    )


# SQLite's batch submit: the rows as one JSON array of arrays, read by json_each
# (``->>`` gives SQL text, integers and NULL as stored): two statements compiled
# once whatever the batch size, on the driver (``_sqlite_batches``).
_INSERT_TASKS_SQLITE = (  # built from this module's constants only
    f"INSERT INTO tasks ({_BATCH_TASK_COLUMNS}) "  # noqa: S608
    "SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, "
    f"'{TaskState.RUNNING.value}', value ->> 5, -1, -1, -1, value ->> 6, "
    "value ->> 7, 1, value ->> 8, value ->> 9 FROM json_each(?) WHERE true "
    "ON CONFLICT (task_id) DO NOTHING RETURNING id, task_id"
)
_INSERT_AUDITS_SQLITE = (
    f"INSERT INTO audit_log ({_BATCH_AUDIT_COLUMNS}) SELECT value ->> 0, "  # noqa: S608
    "value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, "
    "value ->> 7 FROM json_each(?)"
)
_INSERT_AUDIT_MARIADB = (
    f"INSERT INTO audit_log ({_BATCH_AUDIT_COLUMNS}) "  # noqa: S608
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)
# The batch submit always wakes the workers (one NOTIFY per statement).
_INSERT_TASKS_PG_NOTIFY = _insert_tasks_pg_statement()


def get_task_summary(session: Session | Connection, task_id: str) -> Any:
    """The status columns of one task (no payload), or None."""
    connection = session if isinstance(session, Connection) else session.connection()
    return connection.execute(_SUMMARY_BY_ID, {"task_id": task_id}).one_or_none()


def read_task_summary(database: Database, task_id: str) -> TaskSummary | None:
    """``get_task_summary`` on a pooled DB-API connection (``Database.fetch_one``):
    the status poll's read, shared with the other threads of this process that
    ask while a read is in flight (``overlord.dbread``; never a row read before
    this call)."""
    row = dbread.coalescer(database, "task_summary", _summaries_by_id).get(task_id)
    return None if row is None else summary_from_driver(row)


# Coalesced status reads (``overlord.dbread``): every id queued while the previous
# read was in flight, in one ``IN`` list. Under wrk c=16 (serve's 2 HTTP processes)
# most reads find one in flight and wait for the next, often alone (the GIL lets
# few threads reach the read during one round trip): each process keeps one
# status query at the database, which shares the 2 cores. Status rps ÷ health
# rps, coalescing off → on, 2 alternating rounds, load 7-11: PostgreSQL 0.38,
# 0.41 → 0.55, 0.45; MariaDB 0.23, 0.30 → 0.40, 0.53; SQLite 0.57, 0.58 → 0.65,
# 0.60. In process, 8 threads on SQLite: 42 % of queries read 2 to 8 ids.
_IN_LIST_MAX = 64
_SUMMARIES_BY_IDS: dict[tuple[Any, ...], tuple[str, bool]] = {}


def _summaries_by_id(
    database: HeldConnection, task_ids: Sequence[str]
) -> dict[str, Sequence[Any]]:
    """The driver's rows of ``SUMMARY_COLUMNS`` of the ids that exist, by id."""
    if len(task_ids) == 1:
        # A lone read (no concurrency): the point query, as before coalescing.
        row = database.fetch_one(_SUMMARY_BY_ID, {"task_id": task_ids[0]})
        return {} if row is None else {task_ids[0]: row}
    found: dict[str, Sequence[Any]] = {}
    for first in range(0, len(task_ids), _IN_LIST_MAX):
        ids = task_ids[first : first + _IN_LIST_MAX]
        sql, positional = _summaries_sql(database.engine.dialect, len(ids))
        args: Any = (
            tuple(ids) if positional else {f"id{n}": id_ for n, id_ in enumerate(ids)}
        )
        for row in database.fetch_all(sql, args):
            found[row[1]] = row
    return found


def _summaries_sql(dialect: Dialect, count: int) -> tuple[str, bool]:
    """Driver SQL of ``SUMMARY_COLUMNS`` for ``count`` ids (``id0`` …), and
    whether its parameters are positional; compiled once per dialect and count."""
    key = (type(dialect), dialect.paramstyle, count)
    found = _SUMMARIES_BY_IDS.get(key)
    if found is None:
        statement = select(*SUMMARY_COLUMNS).where(
            Task.task_id.in_([bindparam(f"id{n}") for n in range(count)])
        )
        compiled = statement.compile(dialect=dialect)
        found = _SUMMARIES_BY_IDS[key] = (str(compiled), bool(compiled.positional))
    return found


def get_task_summaries(session: Session, task_ids: Sequence[str]) -> list[Row[Any]]:
    """Status columns of the given ids that exist (any order)."""
    rows: list[Row[Any]] = []
    for start in range(0, len(task_ids), LIST_BATCH):
        chunk = task_ids[start : start + LIST_BATCH]
        rows.extend(
            session.execute(select(*SUMMARY_COLUMNS).where(Task.task_id.in_(chunk)))
        )
    return rows


def active_sub_tasks(session: Session) -> list[tuple[str, str]]:
    """(id, supervisor id) of every active task that has a supervisor, oldest
    first: few rows (sub-tasks of running supervisors), read through the active
    index."""
    rows = session.execute(
        select(Task.task_id, Task.parent_task_id)
        .where(Task.active == true(), Task.parent_task_id.is_not(None))
        .order_by(Task.id)
    )
    return [(task_id, parent) for task_id, parent in rows if parent is not None]


def is_active(session: Session, task_id: str) -> bool:
    return bool(
        session.scalar(select(Task.active).where(Task.task_id == task_id)) or False
    )


_DATASOURCE_BY_ID = select(Task.datasource).where(Task.task_id == bindparam("task_id"))


def get_task_datasource(session: Session, task_id: str) -> str | None:
    """The task's datasource, or None when there is no such task."""
    found = session.connection().execute(_DATASOURCE_BY_ID, {"task_id": task_id})
    row = found.first()
    return None if row is None else str(row[0])


def task_exists(session: Session, task_id: str) -> bool:
    found = session.connection().execute(_EXISTS_BY_ID, {"task_id": task_id})
    return found.first() is not None


class TaskListRow(NamedTuple):
    """The status columns of one listed task, as ``GET /tasks`` reads them."""

    task_id: str
    group_id: str | None
    type: str | None
    created_at: dt.datetime
    queue_inserted_at: dt.datetime | None
    status: TaskState
    runner_status: RunnerState
    duration_ms: int
    location_host: str | None
    location_port: int
    location_tls_port: int
    datasource: str | None
    error_msg: str | None
    active: bool


LIST_COLUMNS = (
    Task.task_id,
    Task.group_id,
    Task.type,
    Task.created_at,
    Task.queue_inserted_at,
    Task.status,
    Task.runner_status,
    Task.duration_ms,
    Task.location_host,
    Task.location_port,
    Task.location_tls_port,
    Task.datasource,
    Task.error_msg,
    Task.active,
)


@dataclass(frozen=True)
class _PreparedList:
    """A list query compiled once per dialect and filter combination, and how to
    turn its bound values into the driver's parameters and its rows into
    ``TaskListRow``s."""

    sql: str
    compiled: Compiled
    bind_created_at: Callable[[Any], Any] | None
    read_time: Callable[[Any], dt.datetime | None]

    def parameters(self, values: dict[str, Any]) -> Any:
        if self.bind_created_at is not None and "since" in values:
            values["since"] = self.bind_created_at(values["since"])
        # construct_params adds the values SQLAlchemy bound itself (SQLite's
        # OFFSET 0 after a bound LIMIT).
        bound = self.compiled.construct_params(values) or {}
        positions = getattr(self.compiled, "positiontup", None)
        if positions:
            return tuple(bound[name] for name in positions)
        return bound

    def rows(self, raw_rows: Iterable[Sequence[Any]]) -> list[TaskListRow]:
        read_time = self.read_time
        states = _TASK_STATES
        runner_states = _RUNNER_STATES
        # tuple.__new__ skips the named tuple's own __new__ (a Python function).
        new = tuple.__new__
        return [
            new(
                TaskListRow,
                (
                    task_id,
                    group_id,
                    type_,
                    read_time(created),
                    read_time(queued),
                    states[status],
                    runner_states[runner],
                    duration,
                    host,
                    port,
                    tls_port,
                    datasource,
                    error_msg,
                    bool(active),
                ),
            )
            for (
                task_id,
                group_id,
                type_,
                created,
                queued,
                status,
                runner,
                duration,
                host,
                port,
                tls_port,
                datasource,
                error_msg,
                active,
            ) in raw_rows
        ]


_TASK_STATES: dict[str, TaskState] = {state.value: state for state in TaskState}
_RUNNER_STATES: dict[str, RunnerState] = {state.value: state for state in RunnerState}
_PREPARED_LISTS: dict[tuple[Any, ...], _PreparedList] = {}


def _prepared_list(
    dialect: Dialect,
    *,
    complete: bool,
    datasource: bool,
    task_type: bool,
    runner_state: bool,
    limit: bool,
) -> _PreparedList:
    # The dialect's class and parameter style decide the SQL text.
    flags = (complete, datasource, task_type, runner_state, limit)
    key = (type(dialect), dialect.paramstyle, *flags)
    prepared = _PREPARED_LISTS.get(key)
    if prepared is not None:
        return prepared
    statement: Any = select(*LIST_COLUMNS)
    if complete:
        statement = statement.where(
            Task.active == false(), Task.created_at >= bindparam("since")
        ).order_by(Task.created_at.desc(), Task.id.desc())
    else:
        statement = statement.where(Task.active == true()).order_by(
            Task.created_at, Task.id
        )
    if datasource:
        statement = statement.where(Task.datasource == bindparam("datasource"))
    if task_type:
        statement = statement.where(Task.type == bindparam("task_type"))
    if runner_state:
        statement = statement.where(Task.runner_status == bindparam("runner_state"))
    if limit:
        statement = statement.limit(bindparam("limit"))
    compiled = statement.compile(dialect=dialect)
    created_type = Task.created_at.type
    prepared = _PreparedList(
        sql=str(compiled),
        compiled=compiled,
        bind_created_at=created_type.bind_processor(dialect),
        read_time=cast(UTCDateTime, created_type).plain_result_processor(dialect),
    )
    _PREPARED_LISTS[key] = prepared
    return prepared


def _fetch_list(
    connection: Connection,
    prepared: _PreparedList,
    values: dict[str, Any],
    *,
    many: bool,
) -> Iterable[TaskListRow]:
    """Run a prepared list query and read its rows straight from the driver.

    The SQL is compiled once and sent as driver SQL: no statement build, cache key
    or result-type pass per request, and the rows are converted in one loop
    instead of through SQLAlchemy's per-column processors (a 100-row list's CPU,
    SQLite in process: 2.2 ms as a built Core select in a Session, 0.65 ms this
    way; the statement still goes through the engine's events and error wrapping).
    """
    options = {"yield_per": LIST_BATCH} if many else None
    result = connection.exec_driver_sql(
        prepared.sql, prepared.parameters(values), execution_options=options
    )
    if many:
        # A server-side cursor when the rows may be many: read and converted a
        # batch at a time, as the caller consumes them (in its transaction).
        return chain.from_iterable(map(prepared.rows, result.partitions()))
    # A plain cursor holds every row already: take them as the driver's tuples.
    try:
        return prepared.rows(result.cursor.fetchall())
    finally:
        result.close()


def _connection(session: Session | Connection) -> Connection:
    return session if isinstance(session, Connection) else session.connection()


def list_complete_tasks(
    session: Session | Connection,
    *,
    created_since: dt.datetime,
    datasource: str | None,
    task_type: str | None,
    limit: int | None,
) -> Iterable[TaskListRow]:
    """Completed tasks created since ``created_since``, newest first; to be
    consumed before the transaction or connection ends."""
    connection = _connection(session)
    prepared = _prepared_list(
        connection.dialect,
        complete=True,
        datasource=datasource is not None,
        task_type=task_type is not None,
        runner_state=False,
        limit=limit is not None,
    )
    values = {
        "since": created_since,
        "datasource": datasource,
        "task_type": task_type,
        "limit": limit,
    }
    # A server-side cursor only when the rows may be many: for `max=100` its
    # DECLARE/FETCH/CLOSE round trips cost more than the rows.
    many = limit is None or limit > LIST_BATCH
    return _fetch_list(connection, prepared, _given(values), many=many)


def read_complete_tasks(
    database: Database,
    *,
    created_since: dt.datetime,
    datasource: str | None,
    task_type: str | None,
    limit: int,
) -> list[TaskListRow]:
    """``list_complete_tasks`` for at most ``LIST_BATCH`` rows, on a pooled DB-API
    connection (``Database.fetch_all``): one statement, no transaction, no Core
    Connection or result (``?state=complete&max=100``, a console's poll).
    Per 100-row list, CPU in process: see ``services.tasks.read_short_list``."""
    assert limit <= LIST_BATCH
    prepared = _prepared_list(
        database.engine.dialect,
        complete=True,
        datasource=datasource is not None,
        task_type=task_type is not None,
        runner_state=False,
        limit=True,
    )
    values = {
        "since": created_since,
        "datasource": datasource,
        "task_type": task_type,
        "limit": limit,
    }
    rows = database.fetch_all(prepared.sql, prepared.parameters(_given(values)))
    return prepared.rows(rows)


def list_active_tasks(
    session: Session | Connection,
    *,
    datasource: str | None,
    task_type: str | None,
    runner_state: RunnerState | None,
) -> Iterable[TaskListRow]:
    """Active tasks, oldest created first; to be consumed before the transaction
    or connection ends."""
    connection = _connection(session)
    prepared = _prepared_list(
        connection.dialect,
        complete=False,
        datasource=datasource is not None,
        task_type=task_type is not None,
        runner_state=runner_state is not None,
        limit=False,
    )
    values = {
        "datasource": datasource,
        "task_type": task_type,
        "runner_state": None if runner_state is None else runner_state.value,
    }
    return _fetch_list(connection, prepared, _given(values), many=True)


def _given(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def earliest_active_task(
    session: Session, datasource: str
) -> tuple[str, dt.datetime] | None:
    """Id and creation time of the oldest active task of a datasource."""
    row = session.execute(
        select(Task.task_id, Task.created_at)
        .where(Task.datasource == datasource, Task.active == true())
        .order_by(Task.created_at, Task.id)
        .limit(1)
    ).one_or_none()
    return None if row is None else (row.task_id, row.created_at)


def count_tasks(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Task)) or 0)


def earliest_active_created(session: Session) -> dt.datetime | None:
    return session.scalar(
        select(Task.created_at)
        .where(Task.active == true())
        .order_by(Task.created_at, Task.id)
        .limit(1)
    )


def latest_complete_created(session: Session) -> dt.datetime | None:
    return session.scalar(
        select(Task.created_at)
        .where(Task.active == false())
        .order_by(Task.created_at.desc(), Task.id.desc())
        .limit(1)
    )


def active_task_counts(session: Session) -> dict[tuple[str, str, str], int]:
    """Active tasks by (runner state, datasource, type), one grouped read: GET
    /metrics' ``overlord_tasks`` and Druid's task count metrics."""
    rows = session.execute(
        select(Task.runner_status, Task.datasource, Task.type, func.count())
        .where(Task.active == true())
        .group_by(Task.runner_status, Task.datasource, Task.type)
    )
    return {
        (state.value, datasource, task_type): int(count)
        for state, datasource, task_type, count in rows
    }
