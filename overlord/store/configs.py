"""SQL for dynamic configurations (``configs``, Druid's ``druid_config``) and the audit
history of their changes (``audit_log`` rows whose key and type are the config's name).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from overlord.store.models import AuditEntry, ConfigEntry


@dataclass(frozen=True)
class AuditRecord:
    """One audit row as Druid's AuditEntry needs it."""

    key: str
    type: str
    author: str | None
    identity: str | None
    comment: str | None
    ip: str | None
    created_date: dt.datetime
    payload: str


def get_config(session: Session, name: str) -> str | None:
    """The stored JSON text of a config, or None when none was ever set."""
    return session.scalars(
        select(ConfigEntry.payload).where(ConfigEntry.name == name)
    ).one_or_none()


def set_config(session: Session, name: str, payload: str, now: dt.datetime) -> None:
    """Insert or replace a config: update the row, else insert it in a savepoint; a
    concurrent first insert (IntegrityError) turns into the update."""
    values = {"payload": payload, "updated_at": now}
    statement = update(ConfigEntry).where(ConfigEntry.name == name).values(values)
    if session.connection().execute(statement).rowcount:
        return
    try:
        with session.begin_nested():
            session.execute(insert(ConfigEntry).values(name=name, **values))
    except IntegrityError:
        session.execute(statement)


_AUDIT_COLUMNS = (
    AuditEntry.audit_key,
    AuditEntry.type,
    AuditEntry.author,
    AuditEntry.identity,
    AuditEntry.comment,
    AuditEntry.ip,
    AuditEntry.created_date,
    AuditEntry.payload,
)


def audit_history(
    session: Session, key: str, kind: str, start: dt.datetime, end: dt.datetime
) -> list[AuditRecord]:
    """Audit rows of ``key``/``kind`` created within ``[start, end]``, oldest first
    (Druid's ``SQLAuditManager.fetchAuditHistory`` with an interval: BETWEEN)."""
    rows = session.execute(
        select(*_AUDIT_COLUMNS)
        .where(
            AuditEntry.audit_key == key,
            AuditEntry.type == kind,
            AuditEntry.created_date.between(start, end),
        )
        .order_by(AuditEntry.created_date, AuditEntry.id)
    )
    return [AuditRecord(*row) for row in rows]


def latest_audits(
    session: Session, key: str, kind: str, limit: int
) -> list[AuditRecord]:
    """The ``limit`` newest audit rows of ``key``/``kind``, newest first."""
    rows = session.execute(
        select(*_AUDIT_COLUMNS)
        .where(AuditEntry.audit_key == key, AuditEntry.type == kind)
        .order_by(AuditEntry.created_date.desc(), AuditEntry.id.desc())
        .limit(limit)
    )
    return [AuditRecord(*row) for row in rows]
