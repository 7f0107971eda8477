"""Who asked for a change, as Druid's audit log records it.

The record type lives with its SQL in ``store.audit``; views reach it through this
module, so ``api/`` never imports ``store/`` (an import-linter contract).
"""

from __future__ import annotations

from overlord.store.audit import AuditInfo

__all__ = ["AuditInfo"]
