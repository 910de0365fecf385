"""Reports: the hand-filled fields of a model card (intended use, limitations, …).

Revision ID: reports_0001
Revises: 0001_kernel
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "reports_0001"
down_revision: str | Sequence[str] | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = ("reports",)
depends_on: str | Sequence[str] | None = ("lineage_0001",)


def upgrade() -> None:
    op.create_table(
        "retrain_model_card",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("model_version_id", sa.Uuid(), nullable=False),
        sa.Column("intended_use", sa.Text(), nullable=False),
        sa.Column("out_of_scope_use", sa.Text(), nullable=False),
        sa.Column("limitations", sa.Text(), nullable=False),
        sa.Column("ethical_considerations", sa.Text(), nullable=False),
        sa.Column("updated_at", AwareDateTime(), nullable=False),
        sa.Column("updated_by_id", sa.Uuid(), nullable=True),
        sa.Column("updated_by_name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["lineage_model_version.id"],
            name=op.f("fk_retrain_model_card_model_version_id_lineage_model_version"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_retrain_model_card_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_model_card")),
        sa.UniqueConstraint(
            "model_version_id", name=op.f("uq_retrain_model_card_model_version_id")
        ),
    )
    with op.batch_alter_table("retrain_model_card", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retrain_model_card_project_id"), ["project_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("retrain_model_card")
