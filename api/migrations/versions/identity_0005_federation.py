"""Identity: people and services from the OpenID Connect provider, and roles from its groups.

Revision ID: identity_0005
Revises: identity_0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "identity_0005"
down_revision: str | Sequence[str] | None = "identity_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "governance_external_identity",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("last_seen_at", AwareDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["governance_principal.id"],
            name=op.f("fk_governance_external_identity_principal_id_governance_principal"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_external_identity")),
        sa.UniqueConstraint(
            "issuer", "subject", name=op.f("uq_governance_external_identity_issuer_subject")
        ),
        sa.UniqueConstraint(
            "principal_id", name=op.f("uq_governance_external_identity_principal_id")
        ),
    )
    op.create_table(
        "governance_group_mapping",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("group_name", sa.String(length=256), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=True),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_governance_group_mapping_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_group_mapping")),
    )
    with op.batch_alter_table("governance_group_mapping") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_group_mapping_project_id"), ["project_id"], unique=False
        )
    op.create_table(
        "governance_oidc_login",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("state_digest", sa.String(length=64), nullable=False),
        sa.Column("binder_digest", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("next_url", sa.String(length=2000), nullable=False),
        sa.Column("expires_at", AwareDateTime(), nullable=False),
        sa.Column("used_at", AwareDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_oidc_login")),
        sa.UniqueConstraint("state_digest", name=op.f("uq_governance_oidc_login_state_digest")),
    )
    with op.batch_alter_table("governance_role_grant") as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=16), server_default="direct", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("governance_role_grant") as batch_op:
        batch_op.drop_column("source")
    op.drop_table("governance_oidc_login")
    op.drop_table("governance_group_mapping")
    op.drop_table("governance_external_identity")
