"""Audit: chain the checkpoints (``prev_hash``) and record the interval each one kept (``every``).

Revision ID: audit_0002
Revises: audit_0001
Create Date: 2026-12-06

Both columns are nullable: checkpoints signed before this revision (``v1``) have neither and are
still verified with their original message. Adding a column does not rebuild the table, so the
append-only triggers stay; the downgrade drops the columns with SQLite's native ``DROP COLUMN``
(3.35+), which does not rebuild the table either.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "audit_0002"
down_revision: str | Sequence[str] | None = "audit_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "governance_audit_checkpoint"


def upgrade() -> None:
    op.add_column(_TABLE, sa.Column("prev_hash", sa.String(length=64), nullable=True))
    op.add_column(_TABLE, sa.Column("every", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column(_TABLE, "every")
    op.drop_column(_TABLE, "prev_hash")
