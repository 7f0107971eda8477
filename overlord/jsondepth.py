"""How deep a JSON document may nest, and the recursion headroom to handle one.

Leaf module: imports nothing from overlord. The API refuses deeper documents
(``overlord.api.parsing``); every process that decodes, walks or encodes stored
payloads (HTTP server, worker, task processes) calls ``allow_max_nesting_depth``.
"""

from __future__ import annotations

import sys

# Jackson's StreamReadConstraints.DEFAULT_MAX_DEPTH (2.15+): Druid refuses deeper
# documents while parsing, before any task class sees them.
MAX_NESTING_DEPTH = 1000
# Frames a nesting level may cost downstream (json's C decoder and encoder count
# against the limit; recursive walks such as password masking take two a level with
# a comprehension), plus what the server, worker and Flask stacks already use.
_RECURSION_LIMIT = 4 * MAX_NESTING_DEPTH + 1000


def allow_max_nesting_depth() -> None:
    """Raise the interpreter's recursion limit so that a document Jackson accepts
    (nesting up to ``MAX_NESTING_DEPTH``) can be decoded, stored, masked and dumped.

    Python's default limit (1000) is below Jackson's depth once a server's own frames
    are counted: a 1000-deep payload would fail the scheduler on every pass. Deeper
    documents never get stored: the API scans for depth without recursing."""
    if sys.getrecursionlimit() < _RECURSION_LIMIT:
        sys.setrecursionlimit(_RECURSION_LIMIT)
