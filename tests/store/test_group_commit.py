"""Group commit of submits (``store.tasks.submit_grouped``, ``submit_batches``,
``Database.batch_writer``):
concurrent submits of one process share a transaction, each gets its own outcome,
and none returns before its batch has committed."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import func, select

from overlord.db import Database
from overlord.errors import TaskAlreadyExists
from overlord.services import tasks as task_service
from overlord.store import tasks as task_store
from overlord.store.audit import AuditInfo
from overlord.store.models import AuditEntry, Task
from overlord.timeutil import utcnow


def _prepared(task_id: str) -> task_service.PreparedSubmission:
    return task_service.prepare_submission(
        {"type": "noop", "id": task_id},
        now=utcnow(),
        audit=AuditInfo(author="alice", ip="10.0.0.1"),
    )


def _item(task_id: str) -> task_store.Submitted:
    prepared = _prepared(task_id)
    return (prepared.task, prepared.audit)


def _stored(db: Database) -> tuple[dict[str, int], list[str]]:
    with db.transaction() as session:
        tasks = {row.task_id: row.id for row in session.scalars(select(Task))}
        audits = sorted(
            json.loads(row.payload)["id"] for row in session.scalars(select(AuditEntry))
        )
    return tasks, audits


def _poll(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def _grouped_step(
    db: Database, release: threading.Event, failing: str | None = None
) -> Callable[[Sequence[task_store.Submitted]], Any]:
    """The submit batch (``submit_batches``) whose first batch waits for
    ``release``; a batch of several items holding ``failing`` raises before
    writing anything."""
    first = threading.Event()
    run_batch = task_store.submit_batches(db)

    def step(items: Sequence[task_store.Submitted]) -> Any:
        if not first.is_set():
            first.set()
            assert release.wait(10)
        if failing is not None and any(new.task_id == failing for new, _ in items):
            raise RuntimeError(f"bad item {failing}")
        return run_batch(items)

    return step


def _submit_concurrently(
    db: Database, step: Any, task_ids: list[str], release: threading.Event
) -> tuple[dict[str, Any], dict[str, bool]]:
    """Submit ``task_ids[0]`` (whose batch waits for ``release``), then the others
    while it waits, so they queue up for one batch; each thread records its
    outcome and whether its row was visible to another connection on return."""
    writer = db.batch_writer("test", lambda: step)
    outcomes: dict[str, Any] = {}
    visible: dict[str, bool] = {}

    def submit(task_id: str) -> None:
        try:
            outcomes[task_id] = writer.submit(_item(task_id))
        except Exception as error:
            outcomes[task_id] = error
        with db.engine.connect() as connection:
            count = connection.execute(
                select(func.count()).where(Task.task_id == task_id)
            ).scalar_one()
        visible[task_id] = count == 1

    threads = [threading.Thread(target=submit, args=(task_ids[0],))]
    threads[0].start()
    _poll(lambda: writer.batches == 0 and writer.queued() == 0)
    for task_id in task_ids[1:]:
        thread = threading.Thread(target=submit, args=(task_id,))
        thread.start()
        threads.append(thread)
    _poll(lambda: writer.queued() == len(task_ids) - 1)
    release.set()
    for thread in threads:
        thread.join(30)
    assert writer.batches == 2  # the first submit, then all the others at once
    return outcomes, visible


def test_concurrent_submits_share_a_transaction_and_return_committed(
    db: Database,
) -> None:
    release = threading.Event()
    task_ids = ["first", *(f"t{n}" for n in range(8)), "first"]

    outcomes, visible = _submit_concurrently(
        db, _grouped_step(db, release), task_ids, release
    )

    tasks, audits = _stored(db)
    assert sorted(tasks) == sorted(set(task_ids))
    assert audits == sorted(set(task_ids))
    duplicate = [v for v in outcomes.values() if isinstance(v, TaskAlreadyExists)]
    assert [str(error) for error in duplicate] == ["Task[first] already exists"]
    for task_id in set(task_ids) - {"first"}:
        assert outcomes[task_id] == tasks[task_id]
    # Each submit saw its own row from another connection when it returned.
    assert all(visible[task_id] for task_id in tasks)


def test_a_failing_item_is_retried_alone_and_fails_only_itself(db: Database) -> None:
    release = threading.Event()
    task_ids = ["first", "a", "bad", "b"]

    outcomes, _ = _submit_concurrently(
        db, _grouped_step(db, release, failing="bad"), task_ids, release
    )

    tasks, audits = _stored(db)
    assert sorted(tasks) == ["a", "b", "first"]
    assert audits == ["a", "b", "first"]
    assert isinstance(outcomes["bad"], RuntimeError)
    assert {task_id: outcomes[task_id] for task_id in tasks} == tasks


@pytest.mark.parametrize("threads", [16])
def test_many_threads_submit_through_the_service(db: Database, threads: int) -> None:
    barrier = threading.Barrier(threads)
    results: dict[int, Any] = {}

    def submit(n: int) -> None:
        barrier.wait()
        results[n] = task_service.store_submission_grouped(db, _prepared(f"s{n}"))

    workers = [threading.Thread(target=submit, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)

    tasks, _ = _stored(db)
    assert {f"s{n}": results[n].surrogate_id for n in range(threads)} == tasks


def test_a_taken_id_fails_only_its_own_grouped_submit(db: Database) -> None:
    first = task_store.submit_grouped(db, _item("taken"))

    with pytest.raises(TaskAlreadyExists) as raised:
        task_store.submit_grouped(db, _item("taken"))
    other = task_store.submit_grouped(db, _item("other"))

    assert str(raised.value) == "Task[taken] already exists"
    tasks, audits = _stored(db)
    assert tasks == {"taken": first, "other": other}
    assert audits == ["other", "taken"]  # the refused submit wrote no audit row


def test_a_batch_on_the_driver_gives_each_item_its_outcome(db: Database) -> None:
    # What submit_grouped's batch writer does with one batch: the dialect's own
    # driver statements on a connection the group commit keeps.
    run_batch = task_store.submit_batches(db)
    run_batch([_item("taken")])
    first = _item("a")
    items = [first, _item("taken"), _item("b"), _item("a")]

    outcomes = run_batch(items)

    tasks, audits = _stored(db)
    assert outcomes[0] == tasks["a"]
    assert outcomes[2] == tasks["b"]
    assert [str(outcome) for outcome in outcomes[1::2]] == [
        "Task[taken] already exists",
        "Task[a] already exists",
    ]
    assert sorted(tasks) == ["a", "b", "taken"]
    assert audits == ["a", "b", "taken"]
    # The same rows as the Core statement stores (types included).
    core = _item("core")
    db.write(lambda c: task_store.insert_task(c, *core))
    with db.transaction() as session:
        stored = {
            row.task_id: (
                row.type,
                row.group_id,
                row.datasource,
                row.created_at,
                row.status,
                row.runner_status,
                row.duration_ms,
                row.location_port,
                row.location_tls_port,
                row.priority,
                row.active,
                row.parent_task_id,
                row.request_headers,
                row.queue_inserted_at,
                row.error_msg,
                row.location_host,
            )
            for row in session.scalars(select(Task))
        }
    assert stored["a"][4:] == stored["core"][4:]
    assert stored["a"][3] == first[0].created_at
