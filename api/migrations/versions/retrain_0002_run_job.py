"""Retrain: tie each pipeline run to its worker job, so a run whose worker died is released.

Revision ID: retrain_0002
Revises: retrain_0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "retrain_0002"
down_revision: str | Sequence[str] | None = "retrain_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ("runtime_0001",)


def upgrade() -> None:
    with op.batch_alter_table("retrain_pipeline_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("job_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_retrain_pipeline_run_job_id_retrain_job"),
            "retrain_job",
            ["job_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("retrain_pipeline_run", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_retrain_pipeline_run_job_id_retrain_job"), type_="foreignkey"
        )
        batch_op.drop_column("job_id")
