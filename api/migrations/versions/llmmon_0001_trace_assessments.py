"""LLM monitors: the assessments a sampled judge attaches to traced calls.

Revision ID: llmmon_0001
Revises: 0001_kernel
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "llmmon_0001"
down_revision: str | Sequence[str] | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = ("llmmon",)
depends_on: str | Sequence[str] | None = ("lineage_0001", "runtime_0004")


def upgrade() -> None:
    op.create_table(
        "monitors_trace_assessment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("monitor_run_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["monitor_run_id"],
            ["monitors_monitor_run.id"],
            name=op.f("fk_monitors_trace_assessment_monitor_run_id_monitors_monitor_run"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_monitors_trace_assessment_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitors_trace_assessment")),
    )
    with op.batch_alter_table("monitors_trace_assessment", schema=None) as batch_op:
        batch_op.create_index(
            "ix_monitors_trace_assessment_trace", ["project_id", "trace_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_monitors_trace_assessment_monitor_run_id"),
            ["monitor_run_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("monitors_trace_assessment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitors_trace_assessment_monitor_run_id"))
        batch_op.drop_index("ix_monitors_trace_assessment_trace")
    op.drop_table("monitors_trace_assessment")
