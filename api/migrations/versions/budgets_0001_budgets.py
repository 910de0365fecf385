"""Budgets: LLM spend limits per UTC window and the levels each window reached.

Revision ID: budgets_0001
Revises: 0001_kernel
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "budgets_0001"
down_revision: str | Sequence[str] | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = ("budgets",)
depends_on: str | Sequence[str] | None = "lineage_0001"


def upgrade() -> None:
    op.create_table(
        "governance_budget",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("deployment", sa.String(length=64), nullable=True),
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("prompt", sa.String(length=256), nullable=True),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("limit_nano_usd", sa.BigInteger(), nullable=False),
        sa.Column("warn_at", sa.JSON(), nullable=False),
        sa.Column("updated_at", AwareDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_governance_budget_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_budget")),
        sa.UniqueConstraint(
            "project_id", "name", name=op.f("uq_governance_budget_project_id_name")
        ),
    )
    with op.batch_alter_table("governance_budget", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_budget_project_id"), ["project_id"], unique=False
        )
    op.create_table(
        "governance_budget_alert",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("budget_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("window_start", AwareDateTime(), nullable=False),
        sa.Column("window_end", AwareDateTime(), nullable=False),
        sa.Column("level", sa.Float(), nullable=False),
        sa.Column("spend_nano_usd", sa.BigInteger(), nullable=False),
        sa.Column("limit_nano_usd", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["budget_id"],
            ["governance_budget.id"],
            name=op.f("fk_governance_budget_alert_budget_id_governance_budget"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_governance_budget_alert_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_budget_alert")),
        sa.UniqueConstraint(
            "budget_id",
            "window_start",
            "level",
            name=op.f("uq_governance_budget_alert_budget_id_window_start_level"),
        ),
    )
    with op.batch_alter_table("governance_budget_alert", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_budget_alert_budget_id"), ["budget_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_governance_budget_alert_project_id"), ["project_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("governance_budget_alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_governance_budget_alert_project_id"))
        batch_op.drop_index(batch_op.f("ix_governance_budget_alert_budget_id"))
    op.drop_table("governance_budget_alert")
    with op.batch_alter_table("governance_budget", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_governance_budget_project_id"))
    op.drop_table("governance_budget")
