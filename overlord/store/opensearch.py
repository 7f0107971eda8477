"""SQL behind the OpenSearch ``_tasks`` façade: the installation's node id and the
task rows the façade shows. Functions take a session and never commit.

Rows carry the parent's numeric surrogate (``tasks.parent_task_id`` holds the Druid
id of the supervisor task; the façade shows ``<node>:<surrogate>``), found with one
LEFT JOIN on the unique ``task_id`` index, never a query per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Row, select, true
from sqlalchemy.orm import Session, aliased

from overlord.store.models import Cluster, Task

# Rows the façade reads: never the payload (as the Druid lists, spec PR #12404).
_parent = aliased(Task, name="parent")
_COLUMNS = (
    Task.id,
    Task.task_id,
    Task.type,
    Task.group_id,
    Task.datasource,
    Task.created_at,
    Task.queue_inserted_at,
    Task.status,
    Task.runner_status,
    Task.duration_ms,
    Task.location_host,
    Task.location_port,
    Task.location_tls_port,
    Task.error_msg,
    Task.active,
    Task.shutdown_requested_at,
    Task.finished_at,
    Task.request_headers,
    _parent.id.label("parent_surrogate"),
)
BATCH = 500


def get_node_id(session: Session) -> str:
    """The installation's node id (``cluster`` row 1, written by the migration)."""
    value = session.scalar(select(Cluster.node_id).where(Cluster.id == 1))
    if value is None:  # pragma: no cover - the migration inserts the row
        raise LookupError("the cluster row is missing; run `overlord db upgrade`")
    return str(value)


def _rows() -> Any:
    return select(*_COLUMNS).outerjoin(_parent, _parent.task_id == Task.parent_task_id)


def iter_active_task_rows(
    session: Session, *, parent_surrogate: int | None = None
) -> Iterator[Row[Any]]:
    """Active tasks by surrogate (= submit order), streamed in batches.

    ``parent_surrogate`` keeps only the children of that task.
    """
    statement = _rows().where(Task.active == true())
    if parent_surrogate is not None:
        statement = statement.where(_parent.id == parent_surrogate)
    statement = statement.order_by(Task.id).execution_options(yield_per=BATCH)
    yield from session.execute(statement)


def get_task_row(session: Session, surrogate: int) -> Row[Any] | None:
    """One task by its numeric surrogate, active or not."""
    row: Row[Any] | None = session.execute(
        _rows().where(Task.id == surrogate)
    ).one_or_none()
    return row


def active_surrogates(session: Session, surrogates: Iterable[int]) -> set[int]:
    """The given tasks that are still active."""
    wanted = list(surrogates)
    found: set[int] = set()
    for start in range(0, len(wanted), BATCH):
        chunk = wanted[start : start + BATCH]
        found.update(
            session.scalars(
                select(Task.id).where(Task.id.in_(chunk), Task.active == true())
            )
        )
    return found


def active_children(session: Session, parents: Sequence[str]) -> list[str]:
    """Druid ids of the active tasks whose supervisor is one of ``parents``."""
    children: list[str] = []
    for start in range(0, len(parents), BATCH):
        chunk = list(parents[start : start + BATCH])
        children.extend(
            session.scalars(
                select(Task.task_id)
                .where(Task.parent_task_id.in_(chunk), Task.active == true())
                .order_by(Task.id)
            )
        )
    return children
