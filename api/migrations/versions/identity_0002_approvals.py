"""Identity: approval requests, decisions and per-project approver counts.

Revision ID: identity_0002
Revises: identity_0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "identity_0002"
down_revision: str | Sequence[str] | None = "identity_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "governance_approval_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target_kind", sa.String(length=64), nullable=False),
        sa.Column("target_id", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by_id", sa.Uuid(), nullable=True),
        sa.Column("requested_by_name", sa.String(length=64), nullable=False),
        sa.Column("barred_principal_ids", sa.JSON(), nullable=False),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_at", AwareDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_governance_approval_request_project_id_lineage_project"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["governance_principal.id"],
            name=op.f("fk_governance_approval_request_requested_by_id_governance_principal"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_approval_request")),
    )
    with op.batch_alter_table("governance_approval_request") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_approval_request_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_governance_approval_request_status"), ["status"], unique=False
        )
    op.create_table(
        "governance_approval_decision",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("principal_name", sa.String(length=64), nullable=False),
        sa.Column("approve", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["governance_principal.id"],
            name=op.f("fk_governance_approval_decision_principal_id_governance_principal"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["governance_approval_request.id"],
            name=op.f("fk_governance_approval_decision_request_id_governance_approval_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_approval_decision")),
        sa.UniqueConstraint(
            "request_id",
            "principal_id",
            name=op.f("uq_governance_approval_decision_request_id_principal_id"),
        ),
    )
    with op.batch_alter_table("governance_approval_decision") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_approval_decision_request_id"), ["request_id"], unique=False
        )
    op.create_table(
        "governance_approval_rule",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("required_approvers", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_governance_approval_rule_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_approval_rule")),
        sa.UniqueConstraint(
            "project_id", "action", name=op.f("uq_governance_approval_rule_project_id_action")
        ),
    )


def downgrade() -> None:
    op.drop_table("governance_approval_rule")
    op.drop_table("governance_approval_decision")
    op.drop_table("governance_approval_request")
