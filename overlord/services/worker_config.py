"""The worker behaviour config (``GET/POST /worker``, ``GET /worker/history``):
Druid's ``JacksonConfigManager`` over the store, shared by every server.

Setting it writes the config row and an audit entry (key and type ``worker.config``,
payload the config's JSON) in one transaction; Druid writes them in two.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy.orm import Session

from overlord.errors import InvalidInput
from overlord.store import audit as audit_store
from overlord.store import configs as config_store
from overlord.store.audit import AuditInfo
from overlord.store.configs import AuditRecord
from overlord.timeutil import Interval, format_druid

WORKER_CONFIG_KEY = "worker.config"
# druid.audit.manager.auditHistoryMillis: the history's window without an interval.
AUDIT_HISTORY = dt.timedelta(days=7)


def _dumps(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def get_worker_config(session: Session, default: dict[str, Any]) -> str:
    """The stored config's JSON text, or ``default``'s when none was ever posted."""
    stored = config_store.get_config(session, WORKER_CONFIG_KEY)
    return stored if stored is not None else _dumps(default)


def set_worker_config(
    session: Session, config: dict[str, Any], *, audit: AuditInfo, now: dt.datetime
) -> None:
    """Store ``config`` (already in Druid's serialised form) and audit the change."""
    payload = _dumps(config)
    audit_store.insert_audit(
        session,
        key=WORKER_CONFIG_KEY,
        kind=WORKER_CONFIG_KEY,
        payload=payload,
        info=audit,
        now=now,
    )
    config_store.set_config(session, WORKER_CONFIG_KEY, payload, now)


def worker_config_history(
    session: Session,
    *,
    interval: Interval | None,
    count: int | None,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """Druid's ``getWorkerConfigHistory``: with ``count`` and no ``interval``, the
    ``count`` newest entries (newest first); otherwise the entries created within
    ``interval`` (default: the last 7 days), oldest first.

    Raises:
        InvalidInput: ``count`` below 1 (``SQLAuditManager``'s argument check).
    """
    if interval is None and count is not None:
        if count < 1:
            raise InvalidInput("Limit must be greater than zero!")
        rows = config_store.latest_audits(
            session, WORKER_CONFIG_KEY, WORKER_CONFIG_KEY, count
        )
    else:
        window = interval or Interval(now - AUDIT_HISTORY, now)
        rows = config_store.audit_history(
            session, WORKER_CONFIG_KEY, WORKER_CONFIG_KEY, window.start, window.end
        )
    return [_audit_entry(row) for row in rows]


def _audit_entry(row: AuditRecord) -> dict[str, Any]:
    """Druid's AuditEntry JSON: the payload is the config's JSON as a string; a config
    change carries no request info (``JacksonConfigManager.set``)."""
    return {
        "key": row.key,
        "type": row.type,
        "auditInfo": {
            "author": row.author,
            "identity": row.identity,
            "comment": row.comment,
            "ip": row.ip,
        },
        "request": None,
        "payload": row.payload,
        "auditTime": format_druid(row.created_date),
    }
