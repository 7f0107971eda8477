"""add partial index of active tasks

Revision ID: 46a00650e46d
Revises: 196cb05733f4
Create Date: 2026-12-02 16:40:19.614064

A migration must work with the code of the previous release still running: split a
breaking change into an expand revision (add) and a later contract revision (drop).
MariaDB commits every DDL statement on its own, so keep each revision small.

Expand only: one index for ``GET /_tasks`` (active tasks by surrogate), partial
(``WHERE active``) on PostgreSQL and SQLite, plain on MariaDB.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "46a00650e46d"
down_revision: str | Sequence[str] | None = "196cb05733f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tasks_active_id"),
            ["active", "id"],
            unique=False,
            postgresql_where=sa.text("active"),
            sqlite_where=sa.text("active = 1"),
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_tasks_active_id"),
            postgresql_where=sa.text("active"),
            sqlite_where=sa.text("active = 1"),
        )
