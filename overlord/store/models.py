"""The tables, as SQLAlchemy 2 typed models. Every change here needs an Alembic revision.

Timestamps are aware UTC (``UTCDateTime``). Ids, datasources and group ids compare
exactly (binary no-pad collation on MariaDB). Documents the API returns as posted
are stored as text, never JSON/JSONB, so their key order survives.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from overlord.states import RunnerState, TaskState
from overlord.store.types import (
    TYPE_ANNOTATION_MAP,
    DruidId,
    LongBytes,
    LongStr,
    surrogate_pk,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _enum(kind: type[TaskState] | type[RunnerState], name: str) -> Enum:
    return Enum(
        kind,
        name=name,
        native_enum=False,
        length=16,
        create_constraint=True,
        values_callable=lambda members: [m.value for m in members],
    )


def _task_fk() -> ForeignKey:
    return ForeignKey("tasks.task_id", ondelete="CASCADE")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = TYPE_ANNOTATION_MAP


class Task(Base):
    """One Druid task: Druid's ``druid_tasks`` row plus runner and lease state."""

    __tablename__ = "tasks"
    __table_args__ = (
        # GET /tasks: active oldest-first, complete newest-first, ties by surrogate.
        Index(None, "active", "created_at", "id"),
        Index(None, "datasource", "active", "created_at"),
        # Claim order: ready tasks by priority, then age.
        Index(None, "active", "runner_status", "priority", "created_at"),
        Index(None, "group_id"),
        Index(None, "parent_task_id"),
        Index(None, "worker_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[surrogate_pk]
    task_id: Mapped[DruidId] = mapped_column(unique=True)
    type: Mapped[DruidId]
    group_id: Mapped[DruidId]
    datasource: Mapped[DruidId]
    created_at: Mapped[dt.datetime]
    # When the task became ready (PENDING); Druid's runner work-item insertion time.
    queue_inserted_at: Mapped[dt.datetime | None]
    status: Mapped[TaskState] = mapped_column(_enum(TaskState, "task_state"))
    runner_status: Mapped[RunnerState] = mapped_column(
        _enum(RunnerState, "runner_state")
    )
    duration_ms: Mapped[int] = mapped_column(BigInteger)
    error_msg: Mapped[str | None] = mapped_column(Text)
    location_host: Mapped[str | None]
    location_port: Mapped[int]
    location_tls_port: Mapped[int]
    payload: Mapped[LongStr]
    priority: Mapped[int]
    active: Mapped[bool] = mapped_column(Boolean)
    shutdown_requested_at: Mapped[dt.datetime | None]
    # From the payload's supervisorTaskId: the façade's parent_task_id.
    parent_task_id: Mapped[DruidId | None]
    # JSON object of the request headers kept with the task (X-Opaque-Id).
    request_headers: Mapped[str | None] = mapped_column(Text)
    worker_id: Mapped[str | None]
    lease_expires_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]


class TaskReport(Base):
    """The report document of a task, as ``GET /task/{id}/reports`` streams it."""

    __tablename__ = "task_reports"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[surrogate_pk]
    task_id: Mapped[DruidId] = mapped_column(_task_fk(), unique=True)
    report: Mapped[LongStr]
    created_at: Mapped[dt.datetime]


class PushedSegmentsReport(Base):
    """What a ``single_phase_sub_task`` hands its supervisor: Druid's
    PushedSegmentsReport (the segments it pushed, not published, and its own task
    report). Druid posts it to the supervisor's chat handler and keeps it in memory;
    here it is a row, so the supervisor reads it wherever either task runs."""

    __tablename__ = "pushed_segments_reports"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[surrogate_pk]
    supervisor_task_id: Mapped[DruidId] = mapped_column(_task_fk(), index=True)
    task_id: Mapped[DruidId] = mapped_column(_task_fk(), unique=True)
    report: Mapped[LongStr]
    created_at: Mapped[dt.datetime]


class TaskLogChunk(Base):
    """A task's log as appended chunks; ``byte_offset`` makes offset reads one query."""

    __tablename__ = "task_logs"
    __table_args__ = (
        Index(None, "task_id", "byte_offset", unique=True),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[surrogate_pk]
    task_id: Mapped[DruidId] = mapped_column(_task_fk())
    byte_offset: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[LongBytes]
    created_at: Mapped[dt.datetime]


class TaskLock(Base):
    """A time-chunk or segment lock held by a task (Druid's ``druid_tasklocks``)."""

    __tablename__ = "task_locks"
    __table_args__ = (
        Index(None, "datasource", "start", "end"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[surrogate_pk]
    task_id: Mapped[DruidId] = mapped_column(_task_fk(), index=True)
    group_id: Mapped[DruidId]
    datasource: Mapped[DruidId]
    granularity: Mapped[str] = mapped_column(String(16))
    lock_type: Mapped[str] = mapped_column(String(16))
    start: Mapped[dt.datetime]
    end: Mapped[dt.datetime]
    version: Mapped[str]
    priority: Mapped[int]
    partition_id: Mapped[int | None]
    revoked: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime]


class PendingSegment(Base):
    """Druid's ``druid_pendingSegments``, with Druid's column names."""

    __tablename__ = "pending_segments"
    __table_args__ = (
        Index(None, "dataSource", "end"),
        Index(None, "dataSource", "sequence_name"),
        Index(None, "dataSource", "task_allocator_id"),
        Index(None, "dataSource", "created_date"),
    )

    id: Mapped[DruidId] = mapped_column(primary_key=True)
    dataSource: Mapped[DruidId]
    created_date: Mapped[dt.datetime]
    start: Mapped[dt.datetime]
    end: Mapped[dt.datetime]
    sequence_name: Mapped[DruidId]
    sequence_prev_id: Mapped[DruidId]
    sequence_name_prev_id_sha1: Mapped[str] = mapped_column(String(40), unique=True)
    upgraded_from_segment_id: Mapped[DruidId | None]
    task_allocator_id: Mapped[DruidId | None]
    payload: Mapped[LongStr]


class Segment(Base):
    """A published segment (Druid's ``druid_segments``)."""

    __tablename__ = "segments"
    __table_args__ = (
        Index(None, "used"),
        Index(None, "dataSource", "used", "end", "start"),
        Index(None, "dataSource", "upgraded_from_segment_id"),
    )

    id: Mapped[DruidId] = mapped_column(primary_key=True)
    dataSource: Mapped[DruidId]
    created_date: Mapped[dt.datetime]
    start: Mapped[dt.datetime]
    end: Mapped[dt.datetime]
    partitioned: Mapped[bool] = mapped_column(Boolean)
    version: Mapped[str]
    used: Mapped[bool] = mapped_column(Boolean)
    payload: Mapped[LongStr]
    used_status_last_updated: Mapped[dt.datetime]
    upgraded_from_segment_id: Mapped[DruidId | None]


class AuditEntry(Base):
    """Who did what: submits, shutdowns and pending-segment deletes (``druid_audit``)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index(None, "audit_key", "created_date"),
        Index(None, "type", "created_date"),
        Index(None, "created_date"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[surrogate_pk]
    audit_key: Mapped[DruidId]
    type: Mapped[str]
    author: Mapped[str | None]
    comment: Mapped[str | None] = mapped_column(String(2048))
    identity: Mapped[str | None]
    ip: Mapped[str | None] = mapped_column(String(64))
    created_date: Mapped[dt.datetime]
    payload: Mapped[LongStr]


class Worker(Base):
    """A live worker process (``overlord worker`` or the embedded slots of ``serve``);
    its heartbeat is stamped from the database's clock."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(primary_key=True)
    host: Mapped[str]
    port: Mapped[int]
    capacity: Mapped[int]
    version: Mapped[str]
    category: Mapped[str]
    enabled: Mapped[bool] = mapped_column(Boolean)
    started_at: Mapped[dt.datetime]
    last_heartbeat_at: Mapped[dt.datetime]
    last_completed_task_at: Mapped[dt.datetime | None]


class Cluster(Base):
    """The one row every server shares: the installation's stable node id (the
    ``_tasks`` façade's node) and the row the scheduler locks to grant time-chunk
    locks one writer at a time."""

    __tablename__ = "cluster"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    node_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]


class ConfigEntry(Base):
    """A dynamic configuration by name (Druid's ``druid_config``), e.g. the worker
    behaviour config ``worker.config``; its changes are audited in ``audit_log``."""

    __tablename__ = "configs"

    name: Mapped[str] = mapped_column(primary_key=True)
    payload: Mapped[LongStr]
    updated_at: Mapped[dt.datetime]
