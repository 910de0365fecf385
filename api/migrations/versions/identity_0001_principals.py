"""Identity: principals, API keys, failed-authentication counts and per-project role grants.

Revision ID: identity_0001
Revises: 0001_kernel
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "identity_0001"
down_revision: str | Sequence[str] | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = ("identity",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "governance_principal",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("disabled_at", AwareDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_principal")),
        sa.UniqueConstraint("name", name=op.f("uq_governance_principal_name")),
    )
    op.create_table(
        "governance_api_key",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("expires_at", AwareDateTime(), nullable=True),
        sa.Column("revoked_at", AwareDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["governance_principal.id"],
            name=op.f("fk_governance_api_key_principal_id_governance_principal"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_api_key")),
        sa.UniqueConstraint("prefix", name=op.f("uq_governance_api_key_prefix")),
    )
    with op.batch_alter_table("governance_api_key") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_api_key_principal_id"), ["principal_id"], unique=False
        )
    op.create_table(
        "governance_auth_failure",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_auth_failure")),
    )
    with op.batch_alter_table("governance_auth_failure") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_auth_failure_source"), ["source"], unique=False
        )
    op.create_table(
        "governance_role_grant",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("granted_by_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["governance_principal.id"],
            name=op.f("fk_governance_role_grant_principal_id_governance_principal"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_governance_role_grant_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_role_grant")),
        sa.UniqueConstraint(
            "project_id",
            "principal_id",
            "role",
            name=op.f("uq_governance_role_grant_project_id_principal_id_role"),
        ),
    )
    with op.batch_alter_table("governance_role_grant") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_role_grant_principal_id"), ["principal_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_governance_role_grant_project_id"), ["project_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("governance_role_grant")
    op.drop_table("governance_auth_failure")
    op.drop_table("governance_api_key")
    op.drop_table("governance_principal")
