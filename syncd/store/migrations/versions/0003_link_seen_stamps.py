"""Links remember each side's modification stamp as last seen, so a record re-read unchanged costs nothing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 (written by hand, checked by tests/store/test_schema.py)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    # Existing links: stamps unknown, so each record is compared once more the next time it is read.
    with op.batch_alter_table("link") as batch:
        batch.add_column(sa.Column("crm_seen_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("acc_seen_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("link") as batch:
        batch.drop_column("acc_seen_at")
        batch.drop_column("crm_seen_at")
