"""Identity: who carries out an approved rollback or redeploy, and what came of it.

Revision ID: identity_0004
Revises: identity_0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "identity_0004"
down_revision: str | Sequence[str] | None = "identity_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("governance_approval_rule") as batch_op:
        batch_op.add_column(
            sa.Column(
                "carry_out", sa.String(length=16), server_default="by_requester", nullable=False
            )
        )
    with op.batch_alter_table("governance_approval_request") as batch_op:
        batch_op.add_column(
            sa.Column(
                "carry_out", sa.String(length=16), server_default="by_requester", nullable=False
            )
        )
        batch_op.add_column(sa.Column("carried_out_at", AwareDateTime(), nullable=True))
        batch_op.add_column(sa.Column("outcome", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("governance_approval_request") as batch_op:
        batch_op.drop_column("outcome")
        batch_op.drop_column("carried_out_at")
        batch_op.drop_column("carry_out")
    with op.batch_alter_table("governance_approval_rule") as batch_op:
        batch_op.drop_column("carry_out")
