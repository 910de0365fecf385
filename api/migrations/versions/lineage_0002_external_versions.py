"""Lineage: external model versions, context and output schemas.

``lineage_model_version`` gains ``external`` (a version Warden never loads: any URI or none, no
hash), ``context_schema`` (columns that are not model inputs, with their role) and
``output_schema`` (from an MLflow signature); ``artifact_uri`` and ``artifact_sha256`` become
nullable. Downgrading deletes nothing: an external version without URI or hash gets an empty one.

Revision ID: lineage_0002
Revises: lineage_0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "lineage_0002"
down_revision: str | Sequence[str] | None = "lineage_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lineage_model_version", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("external", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("context_schema", sa.JSON(), nullable=False, server_default="{}")
        )
        batch_op.add_column(
            sa.Column("output_schema", sa.JSON(), nullable=False, server_default="{}")
        )
        batch_op.alter_column("artifact_uri", existing_type=sa.String(length=2048), nullable=True)
        batch_op.alter_column("artifact_sha256", existing_type=sa.String(length=64), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE lineage_model_version SET artifact_uri = '' WHERE artifact_uri IS NULL")
    op.execute(
        "UPDATE lineage_model_version SET artifact_sha256 = '' WHERE artifact_sha256 IS NULL"
    )
    with op.batch_alter_table("lineage_model_version", schema=None) as batch_op:
        batch_op.alter_column("artifact_sha256", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("artifact_uri", existing_type=sa.String(length=2048), nullable=False)
        batch_op.drop_column("output_schema")
        batch_op.drop_column("context_schema")
        batch_op.drop_column("external")
