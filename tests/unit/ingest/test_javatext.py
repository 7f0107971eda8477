"""Values printed as Druid's Java code prints them."""

from __future__ import annotations

import pytest

from overlord.ingest.javatext import java_double, java_map, java_string


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1.0"),
        (0.5, "0.5"),
        (0.001, "0.001"),
        (1234567.0, "1234567.0"),
        (1e7, "1.0E7"),
        (12345678.9, "1.23456789E7"),
        (1e20, "1.0E20"),
        (1.5e-05, "1.5E-5"),
        (-2.5e-4, "-2.5E-4"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (float("inf"), "Infinity"),
        (float("nan"), "NaN"),
    ],
)
def test_java_double(value: float, text: str) -> None:
    assert java_double(value) == text


def test_java_string_and_map() -> None:
    assert java_string([1, 2.0, None, True, "x"]) == "[1, 2.0, null, true, x]"
    assert java_map({"a": 1, "b": 1e20, "c": None, "d": {"e": False}}) == (
        "{a=1, b=1.0E20, d={e=false}}"
    )
