"""``overlord.dbread.ReadCoalescer``: concurrent point reads share one query, never a
row read before they asked; and the coalesced status read on every backend."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

import pytest

from overlord.db import Database
from overlord.dbread import ReadCoalescer
from overlord.store import tasks as task_store
from tests.factories import make_task

WAIT = 10.0


class GatedFetch:
    """A fetch that records each query's keys, takes its snapshot (``answer``)
    when it starts, as a database does, and holds the first query until
    ``release`` is set, so the test decides what is in flight."""

    def __init__(self, answer: Callable[[Sequence[str]], Mapping[str, str]]) -> None:
        self.answer = answer
        self.queries: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, keys: Sequence[str]) -> Mapping[str, str]:
        with self.lock:
            self.queries.append(list(keys))
            first = len(self.queries) == 1
        rows = self.answer(keys)
        if first:
            self.started.set()
            assert self.release.wait(WAIT)
        return rows


def run_get(coalescer: ReadCoalescer[str, str], key: str) -> threading.Thread:
    results: dict[str, object] = {}

    def get() -> None:
        try:
            results["value"] = coalescer.get(key)
        except BaseException as error:  # handed to the test below
            results["error"] = error

    thread = threading.Thread(target=get, name=key)
    thread.results = results  # type: ignore[attr-defined]
    thread.start()
    return thread


def wait_queued(coalescer: ReadCoalescer[str, str], count: int) -> None:
    """Until ``count`` keys wait for the next query (a poll on the coalescer's own
    state, under its lock)."""

    def queued() -> int:
        batch = coalescer._queued
        return 0 if batch is None else len(batch.keys)

    with coalescer._turn:
        assert coalescer._turn.wait_for(lambda: queued() >= count, WAIT)


def test_a_lone_read_is_its_own_query() -> None:
    queries: list[list[str]] = []

    def fetch(keys: Sequence[str]) -> Mapping[str, str]:
        queries.append(list(keys))
        return {key: key.upper() for key in keys if key != "absent"}

    coalescer: ReadCoalescer[str, str] = ReadCoalescer(fetch)
    assert coalescer.get("a") == "A"
    assert coalescer.get("absent") is None
    assert queries == [["a"], ["absent"]]


def test_reads_queued_during_a_query_share_the_next_one() -> None:
    fetch = GatedFetch(lambda keys: {key: key.upper() for key in keys})
    coalescer: ReadCoalescer[str, str] = ReadCoalescer(fetch)
    first = run_get(coalescer, "first")
    assert fetch.started.wait(WAIT)
    # Asked while "first"'s query is in flight: they must not ride on it (it
    # started before they asked), and they all share the next one.
    others = [run_get(coalescer, key) for key in ("b", "c", "d")]
    wait_queued(coalescer, 3)
    fetch.release.set()
    for thread in (first, *others):
        thread.join(WAIT)
    assert fetch.queries[0] == ["first"]
    assert sorted(fetch.queries[1]) == ["b", "c", "d"]
    assert len(fetch.queries) == 2
    assert [t.results for t in (first, *others)] == [  # type: ignore[attr-defined]
        {"value": key.upper()} for key in ("first", "b", "c", "d")
    ]


def test_a_read_queued_after_a_query_started_sees_what_committed_before_it() -> None:
    # The store changes while the first query is in flight: a read asked after
    # the change (as a status asked after a shutdown's 200) must see it, though a
    # query for the same key is running.
    store = {"t": "RUNNING"}

    def answer(keys: Sequence[str]) -> Mapping[str, str]:
        return {key: store[key] for key in keys if key in store}

    fetch = GatedFetch(answer)
    coalescer: ReadCoalescer[str, str] = ReadCoalescer(fetch)
    early = run_get(coalescer, "t")
    assert fetch.started.wait(WAIT)
    store["t"] = "FAILED"  # committed after the first query's snapshot
    late = run_get(coalescer, "t")
    wait_queued(coalescer, 1)
    fetch.release.set()
    early.join(WAIT)
    late.join(WAIT)
    assert early.results == {"value": "RUNNING"}  # type: ignore[attr-defined]
    assert late.results == {"value": "FAILED"}  # type: ignore[attr-defined]
    assert fetch.queries == [["t"], ["t"]]


def test_an_error_reaches_every_waiter_of_its_query() -> None:
    failing = RuntimeError("database gone")

    def answer(keys: Sequence[str]) -> Mapping[str, str]:
        if "second-batch" in keys or "x" in keys:
            raise failing
        return {key: key for key in keys}

    fetch = GatedFetch(answer)
    coalescer: ReadCoalescer[str, str] = ReadCoalescer(fetch)
    first = run_get(coalescer, "first")
    assert fetch.started.wait(WAIT)
    waiters = [run_get(coalescer, key) for key in ("second-batch", "y", "z")]
    wait_queued(coalescer, 3)
    fetch.release.set()
    for thread in (first, *waiters):
        thread.join(WAIT)
    assert first.results == {"value": "first"}  # type: ignore[attr-defined]
    assert [t.results for t in waiters] == [{"error": failing}] * 3  # type: ignore[attr-defined]
    # The coalescer is usable after an error.
    assert coalescer.get("ok") == "ok"
    with pytest.raises(RuntimeError):
        coalescer.get("x")


def test_many_threads_read_their_own_rows(db: Database) -> None:
    """On every backend: concurrent status reads each get their own row (or None),
    and they shared queries (the IN list)."""
    ids = [f"task-{n}" for n in range(40)]
    with db.transaction(write=True) as session:
        for task_id in ids:
            make_task(session, task_id=task_id, error_msg=f"msg {task_id} ✓")
    expected = {}
    with db.transaction() as session:
        for task_id in ids:
            expected[task_id] = tuple(task_store.get_task_summary(session, task_id))
    wanted = [*ids, "absent-1", "absent-2"] * 3
    results: dict[int, object] = {}
    barrier = threading.Barrier(8)

    def reader(offset: int) -> None:
        barrier.wait(WAIT)
        for index in range(offset, len(wanted), 8):
            summary = task_store.read_task_summary(db, wanted[index])
            results[index] = None if summary is None else tuple(summary)

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == {
        index: expected.get(task_id) for index, task_id in enumerate(wanted)
    }


@pytest.mark.parametrize("count", [2, 64, 65, 130])
def test_the_in_list_reads_every_id_asked(db: Database, count: int) -> None:
    ids = [f"t{n}" for n in range(count)]
    with db.transaction(write=True) as session:
        for task_id in ids[::2]:
            make_task(session, task_id=task_id)
    rows = task_store._summaries_by_id(db, ids)
    assert sorted(rows) == sorted(ids[::2])
    assert all(row[1] == task_id for task_id, row in rows.items())


def test_ids_differing_only_in_case_or_trailing_space_are_distinct(
    db: Database,
) -> None:
    # MariaDB's default collations would fold these (the column is nopad_bin).
    with db.transaction(write=True) as session:
        make_task(session, task_id="Case")
    rows = task_store._summaries_by_id(db, ["Case", "case", "Case "])
    assert list(rows) == ["Case"]
