"""Inbox retries: when a failed event is due again, whether it was given up, and a pending index to match.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 (written by hand, checked by tests/store/test_schema.py)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    # Existing rows: nothing scheduled (due at once, as before) and nothing given up.
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("gave_up", sa.Boolean(), nullable=False, server_default=sa.false()))
    # The old (processed_at, received_at) index is replaced by a partial one that also covers the due check.
    op.drop_index("ix_inbox_processed_received", table_name="inbox")
    op.create_index(
        "ix_inbox_pending",
        "inbox",
        ["received_at", "id", "next_attempt_at"],
        unique=False,
        sqlite_where=sa.text("processed_at IS NULL"),
        postgresql_where=sa.text("processed_at IS NULL"),
    )
    op.create_index(
        "ix_inbox_gave_up",
        "inbox",
        ["processed_at", "id"],
        unique=False,
        sqlite_where=sa.text("gave_up = 1"),
        postgresql_where=sa.text("gave_up"),
    )


def downgrade() -> None:
    """Revert this revision (given-up events stay processed: 0001 has no way to say they were not)."""
    op.drop_index("ix_inbox_gave_up", table_name="inbox")
    op.drop_index("ix_inbox_pending", table_name="inbox")
    op.create_index("ix_inbox_processed_received", "inbox", ["processed_at", "received_at"], unique=False)
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("gave_up")
        batch.drop_column("next_attempt_at")
