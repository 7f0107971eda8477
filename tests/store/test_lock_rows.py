"""Lock reads hand services frozen ``LockRow`` values, equal to what was granted."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from overlord.db import Database
from overlord.services import lockbox
from overlord.store import locks as lock_store
from overlord.timeutil import Interval, format_druid, utcnow
from tests.factories import make_task

DAY = Interval(
    dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
)


def test_a_granted_lock_reads_back_as_an_equal_frozen_row(db: Database) -> None:
    now = utcnow()
    with db.transaction() as session:
        make_task(session, task_id="a", group_id="g")
        make_task(session, task_id="b", group_id="g")
    request = lockbox.LockRequest(
        task_id="a",
        group_id="g",
        datasource="wiki",
        interval=DAY,
        lock_type="SHARED",
        priority=50,
    )

    with db.transaction() as session:
        granted = lockbox.try_acquire(session, request, now)
        joined = lockbox.try_acquire(
            session, dataclasses.replace(request, task_id="b"), now
        )
    with db.transaction() as session:
        read = lock_store.locks_of_group(session, "g", "wiki")

    expected = lock_store.LockRow(
        task_id="a",
        group_id="g",
        datasource="wiki",
        granularity="timeChunk",
        lock_type="SHARED",
        start=DAY.start,
        end=DAY.end,
        version=format_druid(now),
        priority=50,
        partition_id=None,
        revoked=False,
    )
    assert granted == expected
    assert joined == dataclasses.replace(expected, task_id="b")
    assert read == [expected, dataclasses.replace(expected, task_id="b")]
    with pytest.raises(dataclasses.FrozenInstanceError):
        read[0].revoked = True  # type: ignore[misc]
