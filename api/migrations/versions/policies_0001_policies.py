"""Policies: versioned policy documents, findings history, decisions and promotion blocks.

Revision ID: policies_0001
Revises: 0001_kernel
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "policies_0001"
down_revision: str | Sequence[str] | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = ("policies",)
depends_on: str | Sequence[str] | None = None


def _base() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
    ]


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project_id"], ["lineage_project.id"], name=op.f(f"fk_{table}_project_id_lineage_project")
    )


def _index(table: str, column: str) -> None:
    with op.batch_alter_table(table) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)


def upgrade() -> None:
    op.create_table(
        "governance_policy",
        *_base(),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("active_version", sa.Integer(), nullable=True),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        _project_fk("governance_policy"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_policy")),
        sa.UniqueConstraint(
            "project_id", "name", name=op.f("uq_governance_policy_project_id_name")
        ),
    )
    _index("governance_policy", "project_id")
    op.create_table(
        "governance_policy_version",
        *_base(),
        sa.Column("policy_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("approval_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["governance_policy.id"],
            name=op.f("fk_governance_policy_version_policy_id_governance_policy"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_policy_version")),
        sa.UniqueConstraint(
            "policy_id", "version", name=op.f("uq_governance_policy_version_policy_id_version")
        ),
    )
    _index("governance_policy_version", "policy_id")
    op.create_table(
        "governance_finding_batch",
        *_base(),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.String(length=100), nullable=False),
        sa.Column("run_id", sa.String(length=100), nullable=False),
        sa.Column("observed_at", AwareDateTime(), nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=True),
        sa.Column("deployment", sa.String(length=64), nullable=True),
        sa.Column("environment", sa.String(length=64), nullable=True),
        sa.Column("findings", sa.JSON(), nullable=False),
        _project_fk("governance_finding_batch"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_finding_batch")),
        sa.UniqueConstraint(
            "project_id",
            "source_id",
            "run_id",
            name=op.f("uq_governance_finding_batch_project_id_source_id_run_id"),
        ),
    )
    _index("governance_finding_batch", "project_id")
    op.create_table(
        "governance_policy_decision",
        *_base(),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("policy_id", sa.Uuid(), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=63), nullable=False),
        sa.Column("scope_key", sa.String(length=400), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_at", AwareDateTime(), nullable=False),
        sa.Column("source_id", sa.String(length=100), nullable=False),
        sa.Column("run_ids", sa.JSON(), nullable=False),
        sa.Column("finding_ids", sa.JSON(), nullable=False),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["governance_policy.id"],
            name=op.f("fk_governance_policy_decision_policy_id_governance_policy"),
        ),
        _project_fk("governance_policy_decision"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_policy_decision")),
    )
    _index("governance_policy_decision", "policy_id")
    _index("governance_policy_decision", "project_id")
    op.create_table(
        "governance_promotion_block",
        *_base(),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("until", AwareDateTime(), nullable=False),
        sa.Column("decision_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["governance_policy_decision.id"],
            name=op.f("fk_governance_promotion_block_decision_id_governance_policy_decision"),
        ),
        _project_fk("governance_promotion_block"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_promotion_block")),
    )
    _index("governance_promotion_block", "project_id")


def downgrade() -> None:
    for table, columns in (
        ("governance_promotion_block", ["project_id"]),
        ("governance_policy_decision", ["project_id", "policy_id"]),
        ("governance_finding_batch", ["project_id"]),
        ("governance_policy_version", ["policy_id"]),
        ("governance_policy", ["project_id"]),
    ):
        with op.batch_alter_table(table) as batch_op:
            for column in columns:
                batch_op.drop_index(batch_op.f(f"ix_{table}_{column}"))
        op.drop_table(table)
