"""Mapping activation: when each mapping was first used, the default `sync_from` before which records are history.

Revision ID: 0003_mapping_activation
Revises: 0003
Create Date: 2026-12-05 (written by hand, checked by tests/store/test_schema.py)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_mapping_activation"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    # No rows for existing mappings: a store upgraded with links in it records its activation on the next
    # pass, and everything already linked keeps syncing; only unlinked records dated before then are history.
    op.create_table(
        "mapping_activation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mapping", sa.String(), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mapping", name="uq_mapping_activation_mapping"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("mapping_activation")
