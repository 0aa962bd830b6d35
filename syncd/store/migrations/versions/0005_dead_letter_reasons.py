"""Dead letters say what kind of failure holds a record (validation, transient, authorisation...), the system's
own error code and message, the fingerprint of the mapping rules it failed under, and a refused pair's other
record.

Revision ID: 0005_dead_letter_reasons
Revises: 0003_mapping_activation
Create Date: 2026-12-05 (written by hand, checked by tests/store/test_schema.py)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_dead_letter_reasons"
down_revision: str | None = "0003_mapping_activation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    # Existing rows keep NULLs: their class is unknown and they are retried (or held) as before.
    with op.batch_alter_table("dead_letter") as batch:
        batch.add_column(sa.Column("error_class", sa.String(), nullable=True))
        batch.add_column(sa.Column("error_code", sa.String(), nullable=True))
        batch.add_column(sa.Column("error_message", sa.Text(), nullable=True))
        batch.add_column(sa.Column("mapping_fingerprint", sa.String(), nullable=True))
        batch.add_column(sa.Column("counterpart_id", sa.String(), nullable=True))
    op.create_index(
        "ix_dead_letter_counterpart", "dead_letter", ["mapping", "object", "counterpart_id"], unique=False
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_dead_letter_counterpart", table_name="dead_letter")
    with op.batch_alter_table("dead_letter") as batch:
        batch.drop_column("counterpart_id")
        batch.drop_column("mapping_fingerprint")
        batch.drop_column("error_message")
        batch.drop_column("error_code")
        batch.drop_column("error_class")
