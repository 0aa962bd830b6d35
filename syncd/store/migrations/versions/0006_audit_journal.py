"""The audit log doubles as a write journal: a row is written `pending` before its write is sent and completed
at commit, so a pass after a crash knows what its predecessor wrote (`recovered` / `unconfirmed`).

Revision ID: 0006_audit_journal
Revises: 0005_dead_letter_reasons
Create Date: 2026-12-06 (written by hand, checked by tests/store/test_schema.py)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_audit_journal"
down_revision: str | None = "0005_dead_letter_reasons"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    # Existing rows were all written after their writes were committed: `done`.
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("status", sa.String(), nullable=False, server_default="done"))
        batch.add_column(sa.Column("link_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("base_change", sa.JSON(), nullable=True))
        batch.create_check_constraint(
            "ck_audit_status", "status IN ('pending', 'done', 'recovered', 'unconfirmed')"
        )
    op.create_index("ix_audit_status", "audit", ["status"], unique=False)


def downgrade() -> None:
    """Revert this revision (rows still pending are dropped with their status: they read as done)."""
    op.drop_index("ix_audit_status", table_name="audit")
    with op.batch_alter_table("audit") as batch:
        batch.drop_constraint("ck_audit_status", type_="check")
        batch.drop_column("base_change")
        batch.drop_column("link_id")
        batch.drop_column("status")
