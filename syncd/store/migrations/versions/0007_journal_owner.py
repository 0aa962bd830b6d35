"""A pending audit row names its owner: the writer (one batch or action in flight) that journalled it, whose
liveness the store can test (a lock file beside a SQLite store, an advisory lock on PostgreSQL), so that the
next pass resolves only rows whose writer is gone, never another live process's writes in flight.

Revision ID: 0007_journal_owner
Revises: 0006_audit_journal
Create Date: 2026-12-06 (written by hand, checked by tests/store/test_schema.py)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_journal_owner"
down_revision: str | None = "0006_audit_journal"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    # Rows already pending have no owner: they were left by a syncd that ran before this one, gone by now.
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("owner", sa.String(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("audit") as batch:
        batch.drop_column("owner")
