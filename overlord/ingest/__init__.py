"""Batch ingestion engine (issue 9): no Flask, no SQL, no task runtime."""

from __future__ import annotations
