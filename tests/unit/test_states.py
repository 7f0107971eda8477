"""Druid's task states and its errorMsg truncation (newest TaskStatus rule)."""

from __future__ import annotations

import pytest

from overlord.states import (
    ListState,
    TaskState,
    truncate_error_msg,
)


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("boom", id="short"),
        pytest.param("x" * 1023, id="limit-minus-1"),
        pytest.param("é" * 1024, id="limit-exactly-non-ascii"),
    ],
)
def test_truncate_error_msg_up_to_1024_characters_unchanged(
    message: str | None,
) -> None:
    assert truncate_error_msg(message) is message


@pytest.mark.parametrize(
    ("length", "omitted"),
    [
        pytest.param(1025, 1, id="limit-plus-1"),
        pytest.param(1200, 176, id="1200"),
        pytest.param(100_000, 98_976, id="100k"),
    ],
)
def test_truncate_error_msg_longer_keeps_both_ends_and_counts_the_rest(
    length: int, omitted: int
) -> None:
    # Distinct head, middle and tail show exactly which characters are kept.
    message = "h" * 512 + "m" * (length - 1024) + "t" * 512

    shown = truncate_error_msg(message)

    assert shown == "h" * 512 + f"...{omitted} characters omitted..." + "t" * 512


def test_truncate_error_msg_keeps_first_and_last_512_characters_exactly() -> None:
    message = "".join(chr(0x4E00 + i) for i in range(2000))  # every character differs

    shown = truncate_error_msg(message)

    assert shown is not None
    assert shown.startswith(message[:512] + "...976 characters omitted...")
    assert shown.endswith("..." + message[-512:])
    assert len(shown) == 1024 + len("...976 characters omitted...")


def test_task_state_is_complete_false_only_for_running() -> None:
    assert [state.value for state in TaskState] == ["RUNNING", "SUCCESS", "FAILED"]
    assert [state.is_complete for state in TaskState] == [False, True, True]


def test_list_state_iteration_follows_druid_error_order() -> None:
    assert [state.value for state in ListState] == [
        "pending",
        "waiting",
        "running",
        "complete",
    ]
