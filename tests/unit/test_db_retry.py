"""The one retry/backoff helper (``db.retry``): what it retries, how long it waits,
when it gives up. No database."""

from __future__ import annotations

import threading
import time

import pytest

from overlord import db


class Flaky:
    """Fails ``failures`` times with ``error``, then returns "done"."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or ConnectionError("store unreachable")
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits retry asks time.sleep for (none really taken)."""
    asked: list[float] = []
    monkeypatch.setattr(db.time, "sleep", asked.append)
    return asked


def _retryable(error: BaseException) -> bool:
    return isinstance(error, ConnectionError)


def test_retry_doubles_the_wait_up_to_the_cap_within_the_jitter(
    waits: list[float],
) -> None:
    step = Flaky(5)

    result = db.retry(step, retryable=_retryable, delay=0.5, max_delay=2.0, jitter=0.2)

    assert (result, step.calls) == ("done", 6)
    bases = [0.5, 1.0, 2.0, 2.0, 2.0]
    assert len(waits) == len(bases)
    for wait, base in zip(waits, bases, strict=True):
        assert 0.8 * base <= wait <= 1.2 * base


def test_retry_lets_an_error_it_does_not_retry_through_at_once(
    waits: list[float],
) -> None:
    step = Flaky(1, ValueError("bad input"))

    with pytest.raises(ValueError, match="bad input"):
        db.retry(step, retryable=_retryable, delay=0.5, max_delay=2.0)

    assert (step.calls, waits) == (1, [])


def test_retry_gives_up_after_its_attempts_with_the_last_error(
    waits: list[float],
) -> None:
    step = Flaky(10)

    with pytest.raises(ConnectionError):
        db.retry(step, retryable=_retryable, delay=0.1, max_delay=1.0, attempts=3)

    assert (step.calls, len(waits)) == (3, 2)


def test_retry_gives_up_when_the_next_wait_would_pass_the_deadline(
    waits: list[float],
) -> None:
    step = Flaky(10)

    with pytest.raises(ConnectionError):
        db.retry(
            step,
            retryable=_retryable,
            delay=1.0,
            max_delay=8.0,
            jitter=0.0,
            deadline=time.monotonic() + 3.5,
        )

    # Waits of 1 and 2 s fit in 3.5 s (the fake sleep takes no time); 4 does not.
    assert (step.calls, waits) == (3, [1.0, 2.0])


def test_retry_stops_once_its_stop_event_is_set() -> None:
    stop = threading.Event()
    step = Flaky(10)

    def failing_then_stopping() -> str:
        if step.calls == 2:
            stop.set()
        return step()

    started = time.monotonic()
    with pytest.raises(ConnectionError):
        db.retry(
            failing_then_stopping,
            retryable=_retryable,
            delay=0.01,
            max_delay=0.01,
            stop=stop,
        )

    assert step.calls == 3
    assert time.monotonic() - started < 1.0


def test_retry_stop_cuts_a_wait_short() -> None:
    stop = threading.Event()
    step = Flaky(10)
    setter = threading.Timer(0.05, stop.set)
    setter.start()

    started = time.monotonic()
    with pytest.raises(ConnectionError):
        db.retry(step, retryable=_retryable, delay=30.0, max_delay=30.0, stop=stop)

    setter.join()
    assert step.calls == 2
    assert time.monotonic() - started < 5.0
