"""Druid granularities for the services: the pure code lives in the leaf module
:mod:`overlord.granularity` (ingestion uses it too); these names stay importable here."""

from __future__ import annotations

from overlord.granularity import (
    STANDARD,
    bucket,
    finer_or_equal,
    parse_granularity,
)

__all__ = ["STANDARD", "bucket", "finer_or_equal", "parse_granularity"]
