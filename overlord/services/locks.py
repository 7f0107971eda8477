"""Lock queries: ``POST /lockedIntervals/v2`` and ``POST /activeLocks`` (spec §1.14)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from overlord.store import locks as lock_store
from overlord.store.locks import LockRow
from overlord.timeutil import MAX_DATETIME, MIN_DATETIME, Interval, format_druid


@dataclass(frozen=True)
class LockFilterPolicy:
    """Druid's LockFilterPolicy: ``datasource`` (lower-case key), ``priority``,
    optional ``intervals``, ``context``."""

    datasource: str
    priority: int = 0
    intervals: list[Interval] | None = None
    context: dict[str, Any] = field(default_factory=dict)


def _locks_by_datasource(
    session: Session, policies: list[LockFilterPolicy]
) -> dict[str, list[LockRow]]:
    datasources = list(dict.fromkeys(policy.datasource for policy in policies))
    grouped: dict[str, list[LockRow]] = {}
    for lock in lock_store.list_unrevoked_locks(session, datasources):
        grouped.setdefault(lock.datasource, []).append(lock)
    return grouped


def locked_intervals(
    session: Session, policies: list[LockFilterPolicy]
) -> dict[str, list[str]]:
    """Distinct intervals of unrevoked locks at or above each policy's priority.

    APPEND locks are skipped for REPLACE or concurrent-lock policies, and KILL locks
    are never reported; the policy's ``intervals`` are not applied here (Druid).
    """
    grouped = _locks_by_datasource(session, policies)
    result: dict[str, list[str]] = {}
    for policy in policies:
        skip_append = policy.context.get("taskLockType") == "REPLACE" or (
            policy.context.get("useConcurrentLocks") is True
        )
        for lock in grouped.get(policy.datasource, []):
            if lock.priority < policy.priority or lock.lock_type == "KILL":
                continue
            if skip_append and lock.lock_type == "APPEND":
                continue
            text = str(Interval(lock.start, lock.end))
            intervals = result.setdefault(policy.datasource, [])
            if text not in intervals:
                intervals.append(text)
    return result


def active_locks(
    session: Session, policies: list[LockFilterPolicy]
) -> dict[str, list[dict[str, Any]]]:
    """Unrevoked locks per datasource matching each policy (TaskLock JSON)."""
    grouped = _locks_by_datasource(session, policies)
    result: dict[str, list[dict[str, Any]]] = {}
    for policy in policies:
        concurrent = policy.context.get("useConcurrentLocks")
        skip_append = concurrent is True or (
            concurrent is None and policy.context.get("taskLockType") == "APPEND"
        )
        windows = policy.intervals or [Interval(MIN_DATETIME, MAX_DATETIME)]
        for lock in grouped.get(policy.datasource, []):
            if lock.priority < policy.priority:
                continue
            if skip_append and lock.lock_type == "APPEND":
                continue
            span = Interval(lock.start, lock.end)
            if not any(span.overlaps(window) for window in windows):
                continue
            document = lock_json(lock)
            reported = result.setdefault(policy.datasource, [])
            # Tasks of one group share a posse (one row per task here, one lock in
            # Druid's lockbox): report it once.
            if document not in reported:
                reported.append(document)
    return result


def lock_json(lock: LockRow) -> dict[str, Any]:
    """Druid's TaskLock JSON, discriminator first."""
    document: dict[str, Any] = {
        "granularity": lock.granularity,
        "type": lock.lock_type,
        "groupId": lock.group_id,
        "dataSource": lock.datasource,
        "interval": f"{format_druid(lock.start)}/{format_druid(lock.end)}",
        "version": lock.version,
    }
    if lock.granularity == "segment":
        document["partitionId"] = lock.partition_id
    document["priority"] = lock.priority
    document["revoked"] = lock.revoked
    return document
