"""``dbgroup.GroupWriter``: the combining of concurrent writes, without a database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from overlord.dbgroup import GroupWriter


def _poll(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.002)


class _Batches:
    """A batch step that records its batches; the first waits for ``release``."""

    def __init__(self, fail_with: str | None = None) -> None:
        self.release = threading.Event()
        self.seen: list[list[str]] = []
        self.fail_with = fail_with

    def __call__(self, items: Sequence[str]) -> list[Any]:
        if not self.seen:
            self.seen.append(list(items))
            assert self.release.wait(10)
        else:
            self.seen.append(list(items))
        if self.fail_with in items and len(items) > 1:
            raise RuntimeError("batch failed")
        return [
            KeyError(item) if item.startswith("dup") else item.upper() for item in items
        ]


def _run(
    writer: GroupWriter[str, str], batches: _Batches, items: list[str]
) -> dict[str, Any]:
    outcomes: dict[str, Any] = {}

    def submit(item: str) -> None:
        try:
            outcomes[item] = writer.submit(item)
        except BaseException as error:
            outcomes[item] = error

    threads = [threading.Thread(target=submit, args=(items[0],))]
    threads[0].start()
    _poll(lambda: len(batches.seen) == 1)
    for item in items[1:]:
        threads.append(threading.Thread(target=submit, args=(item,)))
        threads[-1].start()
    _poll(lambda: writer.queued() == len(items) - 1)
    batches.release.set()
    for thread in threads:
        thread.join(10)
    return outcomes


def test_writes_queued_items_in_one_batch_and_hands_each_its_outcome() -> None:
    batches = _Batches()
    writer: GroupWriter[str, str] = GroupWriter(batches)

    outcomes = _run(writer, batches, ["a", "b", "dup1", "c"])

    assert batches.seen[0] == ["a"]
    assert sorted(batches.seen[1]) == ["b", "c", "dup1"]
    assert (writer.batches, writer.items) == (2, 4)
    assert {k: v for k, v in outcomes.items() if k != "dup1"} == {
        "a": "A",
        "b": "B",
        "c": "C",
    }
    assert isinstance(outcomes["dup1"], KeyError)


def test_a_failed_batch_is_written_again_item_by_item() -> None:
    batches = _Batches(fail_with="bad")
    writer: GroupWriter[str, str] = GroupWriter(batches)

    outcomes = _run(writer, batches, ["a", "b", "bad", "c"])

    assert sorted(sorted(batch) for batch in batches.seen[2:]) == [
        ["b"],
        ["bad"],
        ["c"],
    ]
    assert {k: v for k, v in outcomes.items() if k != "bad"} == {
        "a": "A",
        "b": "B",
        "c": "C",
    }
    assert outcomes["bad"] == "BAD"  # alone it went in


def test_batches_are_capped() -> None:
    batches = _Batches()
    writer: GroupWriter[str, str] = GroupWriter(batches, max_batch=2)

    outcomes = _run(writer, batches, ["a", "b", "c", "d", "e"])

    assert [len(batch) for batch in batches.seen] == [1, 2, 2]
    assert outcomes == {item: item.upper() for item in "abcde"}


def test_a_lone_failure_is_its_items_error_and_the_writer_goes_on() -> None:
    def step(items: Sequence[str]) -> list[str]:
        if "bad" in items:
            raise RuntimeError("no")
        return [item.upper() for item in items]

    writer: GroupWriter[str, str] = GroupWriter(step)
    with pytest.raises(RuntimeError, match="no"):
        writer.submit("bad")
    assert writer.submit("ok") == "OK"


def test_an_error_of_the_database_fails_the_batch_without_retries() -> None:
    batches = _Batches(fail_with="b")
    writer: GroupWriter[str, str] = GroupWriter(
        batches, shared=lambda error: isinstance(error, RuntimeError)
    )

    outcomes = _run(writer, batches, ["a", "b", "c"])

    assert len(batches.seen) == 2  # no item written again alone
    assert outcomes["a"] == "A"
    assert all(isinstance(outcomes[item], RuntimeError) for item in "bc")
