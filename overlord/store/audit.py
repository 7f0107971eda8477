"""SQL for the audit log: who submitted, shut down or deleted what."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import insert
from sqlalchemy.orm import Session

from overlord.store.models import AuditEntry


@dataclass(frozen=True)
class AuditInfo:
    """Who asked, as Druid records it (X-Druid-Author, X-Druid-Comment, remote ip)."""

    author: str | None = None
    comment: str | None = None
    identity: str | None = None
    ip: str | None = None


def insert_audit(
    session: Session,
    *,
    key: str,
    kind: str,
    payload: str,
    info: AuditInfo,
    now: dt.datetime,
) -> None:
    session.connection().execute(
        _INSERT_AUDIT,
        {
            "audit_key": key,
            "type": kind,
            "author": info.author,
            "comment": (info.comment or "")[:2048] or None,
            "identity": info.identity,
            "ip": info.ip,
            "created_date": now,
            "payload": payload,
        },
    )


_INSERT_AUDIT = insert(AuditEntry)
