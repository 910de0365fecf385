"""Identity: server-side dashboard sessions, so signing out ends a session at once.

Revision ID: identity_0003
Revises: identity_0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "identity_0003"
down_revision: str | Sequence[str] | None = "identity_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "governance_dashboard_session",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("nonce_digest", sa.String(length=64), nullable=False),
        sa.Column("expires_at", AwareDateTime(), nullable=False),
        sa.Column("ended_at", AwareDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["governance_principal.id"],
            name=op.f("fk_governance_dashboard_session_principal_id_governance_principal"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_dashboard_session")),
        sa.UniqueConstraint(
            "nonce_digest", name=op.f("uq_governance_dashboard_session_nonce_digest")
        ),
    )
    with op.batch_alter_table("governance_dashboard_session") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_dashboard_session_principal_id"),
            ["principal_id"],
            unique=False,
        )


def downgrade() -> None:
    op.drop_table("governance_dashboard_session")
