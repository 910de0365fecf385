"""Lineage: deployments imported from another system's history are marked as such.

Revision ID: lineage_0003
Revises: lineage_0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "lineage_0003"
down_revision: str | Sequence[str] | None = "lineage_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lineage_deployment") as batch_op:
        batch_op.add_column(
            sa.Column("imported", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("lineage_deployment") as batch_op:
        batch_op.drop_column("imported")
