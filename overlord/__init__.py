"""overlord: Apache Druid's Overlord task API and OpenSearch's ``_tasks`` API over one SQL store.

Importing this package has no side effects.
"""

from __future__ import annotations

__version__ = "0.1.0"
