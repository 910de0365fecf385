"""LLM governance: the versioned price table, redaction rules and retention settings per project.

Revision ID: llmgov_0001
Revises: 0001_kernel
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "llmgov_0001"
down_revision: str | Sequence[str] | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = ("llmgov",)
depends_on: str | Sequence[str] | None = "lineage_0001"


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project_id"],
        ["lineage_project.id"],
        name=op.f(f"fk_{table}_project_id_lineage_project"),
    )


def upgrade() -> None:
    op.create_table(
        "monitors_trace_price",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=128), nullable=False),
        sa.Column("model_pattern", sa.String(length=256), nullable=False),
        sa.Column("input_nano_usd_per_mtok", sa.BigInteger(), nullable=False),
        sa.Column("output_nano_usd_per_mtok", sa.BigInteger(), nullable=False),
        sa.Column("cached_input_nano_usd_per_mtok", sa.BigInteger(), nullable=True),
        sa.Column("valid_from", AwareDateTime(), nullable=False),
        sa.Column("valid_to", AwareDateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        _project_fk("monitors_trace_price"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitors_trace_price")),
    )
    with op.batch_alter_table("monitors_trace_price", schema=None) as batch_op:
        batch_op.create_index(
            "ix_monitors_trace_price_lookup",
            ["project_id", "provider", "valid_from"],
            unique=False,
        )
    op.create_table(
        "monitors_trace_redaction",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("disabled", sa.JSON(), nullable=False),
        sa.Column("patterns", sa.JSON(), nullable=False),
        sa.Column("sealed_key", sa.Text(), nullable=True),
        sa.Column("updated_at", AwareDateTime(), nullable=False),
        _project_fk("monitors_trace_redaction"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitors_trace_redaction")),
        sa.UniqueConstraint("project_id", name=op.f("uq_monitors_trace_redaction_project_id")),
    )
    op.create_table(
        "monitors_trace_retention",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("content_days", sa.Integer(), nullable=False),
        sa.Column("metrics_days", sa.Integer(), nullable=False),
        sa.Column("legal_hold", sa.Boolean(), nullable=False),
        sa.Column("legal_hold_reason", sa.String(length=500), nullable=False),
        sa.Column("last_purge_at", AwareDateTime(), nullable=True),
        sa.Column("updated_at", AwareDateTime(), nullable=False),
        _project_fk("monitors_trace_retention"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitors_trace_retention")),
        sa.UniqueConstraint("project_id", name=op.f("uq_monitors_trace_retention_project_id")),
    )


def downgrade() -> None:
    op.drop_table("monitors_trace_retention")
    op.drop_table("monitors_trace_redaction")
    with op.batch_alter_table("monitors_trace_price", schema=None) as batch_op:
        batch_op.drop_index("ix_monitors_trace_price_lookup")
    op.drop_table("monitors_trace_price")
